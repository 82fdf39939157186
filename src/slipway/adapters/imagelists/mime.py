"""S/MIME ``multipart/signed`` messages, split on the exact bytes.

The signature covers the first body part exactly as it stands between the
boundaries, in canonical form (every line ending CRLF, RFC 5751 §3.1.1), so
the part is cut out of the raw bytes and never re-serialised through
:mod:`email`; only the outer header block is parsed by it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

from slipway.domain.imagelists import RejectionReason
from slipway.errors import ImageListRejected

__all__ = ["SignedMessage", "canonical_lines", "is_signed_message", "split_signed_message"]

# Only the first CR of a run may start a match: "\r*\n" alone rescans a long
# run of CRs from every position, quadratic time on a hostile message.
_LINE_END = re.compile(rb"(?<!\r)\r*\n")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_PART_HEADER = re.compile(rb"^[A-Za-z0-9-]+:")
_SIGNATURE_TYPES = ("application/x-pkcs7-signature", "application/pkcs7-signature")
_MAX_SIGNATURE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SignedMessage:
    """A ``multipart/signed`` message: the signed bytes (canonical, headers of
    the part included), the JSON they carry, the DER signature and the
    outer ``protocol`` and ``micalg`` parameters (lower case)."""

    signed: bytes
    payload: bytes
    signature: bytes
    protocol: str
    micalg: str


def _malformed(message: str) -> ImageListRejected:
    return ImageListRejected(str(RejectionReason.MALFORMED), message, field="MIME")


def canonical_lines(data: bytes) -> bytes:
    """``data`` with every line ending CRLF, as S/MIME signs it; a run of CRs
    before a LF is one line end, as OpenSSL reads it."""
    return _LINE_END.sub(b"\r\n", data)


def is_signed_message(data: bytes) -> bool:
    """Whether ``data`` starts like a MIME message rather than JSON."""
    return data.lstrip()[:1] not in (b"{", b"[")


def split_signed_message(data: bytes) -> SignedMessage:
    """Split a ``multipart/signed`` message. Raises :class:`ImageListRejected`
    (``unsigned``) for a message of another type, (``malformed``) for one
    that cannot be split into exactly a content part and a signature part."""
    head = _HEADER_END.search(data)
    if head is None:
        raise _malformed("no MIME header block")
    headers: Message = BytesHeaderParser().parsebytes(data[: head.start()])
    if headers.get_content_type() != "multipart/signed":
        raise ImageListRejected(
            str(RejectionReason.UNSIGNED),
            f"the list is {headers.get_content_type()}, not S/MIME multipart/signed",
        )
    boundary = headers.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
        raise _malformed("multipart/signed without a usable boundary")
    protocol = str(headers.get_param("protocol") or "").lower()
    micalg = str(headers.get_param("micalg") or "").lower()
    parts = _parts(data[head.end() :], boundary.encode("ascii", "replace"))
    if len(parts) != 2:
        raise _malformed(f"multipart/signed has {len(parts)} parts, not 2")
    signed = canonical_lines(parts[0])
    return SignedMessage(
        signed=signed,
        payload=_content_body(signed),
        signature=_signature(parts[1]),
        protocol=protocol,
        micalg=micalg,
    )


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The body parts between ``--boundary`` lines; the line end before each
    delimiter belongs to the delimiter (RFC 2046 §5.1.1)."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    parts: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start : match.start()])
        if match.group(1):
            return parts
        start = match.end()
    raise _malformed("multipart/signed without its closing boundary")


def _content_body(signed: bytes) -> bytes:
    """The JSON of the signed part: the part itself, or what follows its headers."""
    if not _PART_HEADER.match(signed):
        return signed
    end = signed.find(b"\r\n\r\n")
    if end < 0:
        raise _malformed("the signed part has headers but no body")
    part = BytesHeaderParser().parsebytes(signed[:end])
    encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if encoding not in ("7bit", "8bit", "binary"):
        raise _malformed(f"the signed part is {encoding}-encoded; lists are sent as they are")
    return signed[end + 4 :]


def _signature(part: bytes) -> bytes:
    head = _HEADER_END.search(part)
    if head is None:
        raise _malformed("the signature part has no headers")
    headers = BytesHeaderParser().parsebytes(part[: head.start()])
    if headers.get_content_type() not in _SIGNATURE_TYPES:
        raise _malformed(f"the second part is {headers.get_content_type()}, not a PKCS#7 signature")
    encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
    body = part[head.end() :]
    if encoding != "base64":
        raise _malformed("the signature part is not base64")
    if len(body) > _MAX_SIGNATURE_BYTES:
        raise _malformed(f"the signature part is over {_MAX_SIGNATURE_BYTES} bytes")
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("the signature part is not valid base64") from None
