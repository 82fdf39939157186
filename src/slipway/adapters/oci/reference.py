"""Artifact references: ``oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]``.

The repository and tag grammars are the OCI distribution specification's;
only sha256 digests are accepted, the one algorithm every registry serves.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from slipway.errors import InputError

__all__ = [
    "DEFAULT_TAG",
    "OciReference",
    "is_loopback",
    "is_tag",
    "parse_reference",
    "registry_url",
    "tag_given",
]

SCHEME = "oci://"
DEFAULT_TAG = "latest"
MAX_REPOSITORY_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class OciReference:
    """One artifact in one registry. ``host`` keeps its port (``host:5000``,
    ``[::1]:5000``); ``tag`` is ``None`` only when a ``digest`` names the
    artifact instead."""

    host: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{SCHEME}{self.host}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def manifest_key(self) -> str:
        """What the manifest is fetched by: the digest when known, else the tag."""
        key = self.digest or self.tag
        assert key is not None  # parse_reference gives one or the other
        return key

    def with_digest(self, digest: str) -> OciReference:
        """The same reference pinned to ``digest`` (``sha256:…``)."""
        return replace(self, digest=_checked_digest(digest, str(self)))


def parse_reference(text: str) -> OciReference:
    """``text`` as a reference; an :class:`InputError` names the part at fault.

    The tag defaults to ``latest`` when neither a tag nor a digest is given."""
    if not text.lower().startswith(SCHEME):
        raise _bad(text, f"a reference starts with {SCHEME}")
    rest = text[len(SCHEME) :]
    host, slash, path = rest.partition("/")
    if not slash or not path:
        raise _bad(text, "no repository after the host")
    _check_host(host, text)
    path, at, digest = path.partition("@")
    name, tag = _split_tag(path)
    _check_repository(name, text)
    if tag is not None and not _TAG.fullmatch(tag):
        raise _bad(text, f"the tag {tag!r} is not one: letters, digits, '_', '.', '-', ≤ 128")
    if at:
        digest = _checked_digest(digest, text)
    elif tag is None:
        tag = DEFAULT_TAG
    return OciReference(host=host, repository=name, tag=tag, digest=digest or None)


def is_tag(text: str) -> bool:
    """Whether ``text`` is a tag by the distribution specification's grammar."""
    return _TAG.fullmatch(text) is not None


def tag_given(text: str) -> bool:
    """Whether the reference ``text`` spells a tag (``parse_reference``
    otherwise gives ``latest``, or none beside a digest)."""
    path = text[len(SCHEME) :].partition("/")[2].partition("@")[0]
    return _split_tag(path)[1] is not None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (with or without its port) names this machine."""
    name = _host_name(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def registry_url(reference: OciReference, *, plain_http: bool | None = None) -> str:
    """``http://`` or ``https://`` and the host: plain HTTP for a loopback
    host, HTTPS otherwise, unless ``plain_http`` says which."""
    plain = is_loopback(reference.host) if plain_http is None else plain_http
    return f"{'http' if plain else 'https'}://{reference.host}"


def _split_tag(path: str) -> tuple[str, str | None]:
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        return path[:colon], path[colon + 1 :]
    return path, None


def _check_host(host: str, text: str) -> None:
    name, port = _host_and_port(host)
    if port is not None:
        if not (port.isascii() and port.isdigit()):
            raise _bad(text, f"the host {host!r} has a port that is not a number")
        if not 0 < int(port) < 65536:
            raise _bad(text, f"the port {port} is not between 1 and 65535")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise _bad(text, f"the host {host!r} is not an IPv6 address") from None
    elif not _HOSTNAME.fullmatch(name):
        raise _bad(text, f"the host {host!r} is not a host name or address")


def _host_name(host: str) -> str:
    """The host without its port; an IPv6 address without its brackets."""
    return _host_and_port(host)[0]


def _host_and_port(host: str) -> tuple[str, str | None]:
    """``host`` split into name and port text; the port is ``None`` when absent.
    Anything between ``]`` and the port is kept in the port, to be refused."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, None
        name, after = host[1:end], host[end + 1 :]
        if not after:
            return name, None
        return name, after[1:] if after.startswith(":") else after
    name, colon, port = host.partition(":")
    return name, port if colon else None


def _check_repository(name: str, text: str) -> None:
    if not _REPOSITORY.fullmatch(name):
        raise _bad(
            text,
            f"the repository {name!r} is not a valid name: lowercase letters and digits, "
            "parts separated by '.', '_', '__' or dashes, path components by '/'",
        )
    if len(name) > MAX_REPOSITORY_LENGTH:
        raise _bad(text, f"the repository name is over {MAX_REPOSITORY_LENGTH} characters")


def _checked_digest(digest: str, text: str) -> str:
    if not _DIGEST.fullmatch(digest):
        algorithm = digest.partition(":")[0]
        if ":" in digest and algorithm != "sha256":
            raise _bad(text, f"the digest algorithm {algorithm!r} is not sha256")
        raise _bad(text, f"the digest {digest!r} is not sha256: and 64 lowercase hex digits")
    return digest


def _bad(text: str, why: str) -> InputError:
    return InputError(f"{text}: {why}", field="REFERENCE")
