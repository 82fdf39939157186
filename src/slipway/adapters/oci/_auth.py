"""Registry credentials and the challenges a registry answers 401 with.

A registry says how it wants to be asked in ``WWW-Authenticate``: ``Basic``
(the user name and password on every request) or ``Bearer`` with a realm,
a service and a scope (Docker's token protocol, which Harbor speaks): the
credentials go to the realm once, for a token the registry then accepts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Challenge", "RegistryCredentials", "parse_challenge", "usable_token"]

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
_PARAM = re.compile(rf'({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,\s*|$)')
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
MAX_TOKEN_CHARS = 64 * 1024


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and a password (or a robot account's secret) for a
    registry. The password is never shown: not in ``repr``, not in errors."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        """The ``Authorization`` value of HTTP Basic authentication."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """The first challenge of a ``WWW-Authenticate`` header: its scheme in
    lower case and its parameters (``realm``, ``service``, ``scope`` …)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of ``header``; ``None`` when it has none."""
    match = _SCHEME.match(header)
    if match is None:
        return None
    params: dict[str, str] = {}
    position = match.end()
    while position < len(header):
        param = _PARAM.match(header, position)
        if param is None:
            break  # a further challenge, or noise: the first one is complete
        name, value = param.group(1).lower(), param.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(name, value)
        position = param.end()
    return Challenge(match.group(1).lower(), MappingProxyType(params))


def usable_token(document: object) -> str | None:
    """The bearer token of a token server's JSON answer (``token``, or OAuth's
    ``access_token``) when it is one a header can carry, else ``None``."""
    if not isinstance(document, dict):
        return None
    for key in ("token", "access_token"):
        value = document.get(key)
        if (
            isinstance(value, str)
            and len(value) <= MAX_TOKEN_CHARS
            and _BEARER_TOKEN.fullmatch(value)
        ):
            return value
    return None
