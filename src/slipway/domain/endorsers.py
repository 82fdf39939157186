"""Endorsers: who signs an image list, named by X.509 distinguished names.

Image lists name their endorser in OpenSSL's slash form
(``/DC=org/DC=example/CN=Some One``), most significant RDN first. Names are
compared as sequences of (attribute, value) pairs, never as strings: the
attribute names have aliases (``E``, ``Email``, ``emailAddress``) and RFC 4514
strings run in the other order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DistinguishedName", "Endorser"]

# OpenSSL's short names, keyed by an upper-cased spelling seen in lists.
_ALIASES = {
    "E": "emailAddress",
    "EMAIL": "emailAddress",
    "EMAILADDRESS": "emailAddress",
    "USERID": "UID",
    "UID": "UID",
    "COMMONNAME": "CN",
    "COUNTRYNAME": "C",
    "ORGANIZATIONNAME": "O",
    "ORGANIZATIONALUNITNAME": "OU",
    "LOCALITYNAME": "L",
    "STATEORPROVINCENAME": "ST",
    "S": "ST",
    "DOMAINCOMPONENT": "DC",
    "SERIALNUMBER": "serialNumber",
}
_ATTRIBUTE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)=")


def _attribute_name(name: str) -> str:
    alias = _ALIASES.get(name.upper())
    if alias is not None:
        return alias
    return name.upper() if name.isalpha() and len(name) <= 2 else name


@dataclass(frozen=True)
class DistinguishedName:
    """An X.509 name: RDNs most significant first, each a tuple of
    (attribute, value) pairs (more than one only for multi-valued RDNs)."""

    rdns: tuple[tuple[tuple[str, str], ...], ...]

    @classmethod
    def from_slash(cls, text: str) -> DistinguishedName:
        """Parse OpenSSL's slash form. A ``/`` inside a value (``CN=host/x.org``)
        stays in the value: a new RDN starts only where ``/`` is followed by
        ``attribute=``. Raises ``ValueError`` for text that is not a DN."""
        if not text.startswith("/") or len(text) < 4:
            raise ValueError(f"not a DN in slash form (/C=../O=../CN=..): {text!r}")
        pieces: list[str] = []
        for chunk in text[1:].split("/"):
            if pieces and not _ATTRIBUTE.match(chunk):
                pieces[-1] += "/" + chunk
            else:
                pieces.append(chunk)
        rdns = []
        for piece in pieces:
            pairs = []
            for part in _split_multi(piece):
                match = _ATTRIBUTE.match(part)
                if match is None:
                    raise ValueError(f"not a DN in slash form: {piece!r} has no attribute=")
                pairs.append((_attribute_name(match.group(1)), part[match.end() :]))
            rdns.append(tuple(pairs))
        return cls(tuple(rdns))

    def slash(self) -> str:
        """OpenSSL's slash form, as ``hv:dn`` and ``hv:ca`` hold it."""
        return "".join("/" + "+".join(f"{a}={v}" for a, v in rdn) for rdn in self.rdns)

    def __str__(self) -> str:
        return self.slash()


def _split_multi(piece: str) -> list[str]:
    """``CN=a+UID=b`` → two pairs; a ``+`` not followed by ``attribute=`` is text."""
    parts: list[str] = []
    for chunk in piece.split("+"):
        if parts and not _ATTRIBUTE.match(chunk):
            parts[-1] += "+" + chunk
        else:
            parts.append(chunk)
    return parts


@dataclass(frozen=True)
class Endorser:
    """The ``hv:endorser``/``hv:x509`` of a list: the signer's subject (``hv:dn``)
    and issuer (``hv:ca``), a display name (``dc:creator``) and an e-mail."""

    dn: DistinguishedName
    ca: DistinguishedName
    name: str = ""
    email: str = ""
