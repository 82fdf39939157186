"""Reading a list's JSON payload into domain values, leniently but bounded.

Accepts what real lists hold (``hv:size`` as a string or an integer, unknown
keys kept as extras when their values are plain) and refuses, cheaply and
before decoding, a payload over :data:`MAX_LIST_BYTES` or naming more than
:data:`MAX_IMAGES` images. Every refusal is an :class:`ImageListRejected`
whose ``field`` names the key at fault (``hv:images[3].hv:size``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from slipway.adapters.imagelists._fields import IMAGE_FIELDS, LIST_FIELDS, FieldKind
from slipway.domain.endorsers import DistinguishedName, Endorser
from slipway.domain.imagelists import ExtraValue, ImageList, ListedImage, RejectionReason
from slipway.errors import ImageListRejected

__all__ = ["MAX_IMAGES", "MAX_LIST_BYTES", "parse_image_list", "rejected"]

MAX_LIST_BYTES = 16 * 1024 * 1024
"""The largest list read, in bytes (AppDB's largest VO lists are well under 1 MiB)."""

MAX_IMAGES = 10_000
"""The most images one list may name."""

_MAX_COUNT = 2**63 - 1
_SHA512 = re.compile(r"[0-9a-fA-F]{128}")
_KNOWN_LIST_KEYS = {key for key, *_ in LIST_FIELDS} | {"hv:endorser", "hv:images"}
_KNOWN_IMAGE_KEYS = {key for key, *_ in IMAGE_FIELDS}


def rejected(
    reason: RejectionReason, message: str, *, field: str | None = None
) -> ImageListRejected:
    """An :class:`ImageListRejected` for one problem."""
    return ImageListRejected(str(reason), message, field=field)


def _malformed(field: str, message: str) -> ImageListRejected:
    return rejected(RejectionReason.MALFORMED, f"{field}: {message}", field=field)


def parse_image_list(payload: bytes) -> ImageList:
    """The list in ``payload`` (the JSON bytes of ``{"hv:imagelist": {…}}``)."""
    if len(payload) > MAX_LIST_BYTES:
        raise rejected(
            RejectionReason.TOO_LARGE,
            f"the list is {len(payload)} bytes; at most {MAX_LIST_BYTES} are read",
        )
    if payload.count(b'"hv:image"') > MAX_IMAGES:
        raise rejected(RejectionReason.TOO_LARGE, f"the list names more than {MAX_IMAGES} images")
    try:
        document = json.loads(payload, parse_constant=_refuse_constant)
    except RecursionError:
        raise _malformed("hv:imagelist", "JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise rejected(RejectionReason.MALFORMED, f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("hv:imagelist"), dict):
        raise _malformed("hv:imagelist", 'the document must be {"hv:imagelist": {…}}')
    body: dict[str, Any] = document["hv:imagelist"]
    values = _read_fields(body, LIST_FIELDS, "")
    images = body.get("hv:images")
    if not isinstance(images, list):
        raise _malformed("hv:images", 'must be a list of {"hv:image": {…}}')
    if len(images) > MAX_IMAGES:
        raise rejected(RejectionReason.TOO_LARGE, f"the list names more than {MAX_IMAGES} images")
    return ImageList(
        endorser=_endorser(body.get("hv:endorser")),
        images=tuple(_image(entry, n) for n, entry in enumerate(images)),
        extras=_extras(body, _KNOWN_LIST_KEYS),
        **values,
    )


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _endorser(value: object) -> Endorser:
    x509 = value.get("hv:x509") if isinstance(value, dict) else None
    if not isinstance(x509, dict):
        raise _malformed("hv:endorser", 'must be {"hv:x509": {…}}')
    names = {}
    for key in ("hv:dn", "hv:ca"):
        text = x509.get(key)
        if not isinstance(text, str):
            raise _malformed(f"hv:endorser.hv:x509.{key}", "missing, or not a string")
        try:
            names[key] = DistinguishedName.from_slash(text)
        except ValueError as exc:
            raise _malformed(f"hv:endorser.hv:x509.{key}", str(exc)) from None
    return Endorser(
        dn=names["hv:dn"],
        ca=names["hv:ca"],
        name=_text(x509.get("dc:creator", ""), "hv:endorser.hv:x509.dc:creator"),
        email=_text(x509.get("hv:email", ""), "hv:endorser.hv:x509.hv:email"),
    )


def _image(entry: object, index: int) -> ListedImage:
    where = f"hv:images[{index}].hv:image"
    image = entry.get("hv:image") if isinstance(entry, dict) else None
    if not isinstance(image, dict):
        raise _malformed(f"hv:images[{index}]", 'must be {"hv:image": {…}}')
    values = _read_fields(image, IMAGE_FIELDS, where + ".")
    return ListedImage(extras=_extras(image, _KNOWN_IMAGE_KEYS), **values)


def _read_fields(
    body: dict[str, Any], fields: tuple[tuple[str, str, FieldKind, bool], ...], prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, attribute, kind, required in fields:
        name = prefix + key
        if key not in body or body[key] is None:
            if required:
                raise _malformed(name, "missing")
            continue
        value = body[key]
        if kind == "count":
            values[attribute] = _count(value, name, required)
        elif kind == "date":
            values[attribute] = _date(value, name)
        elif kind == "sha512":
            text = _text(value, name)
            if not _SHA512.fullmatch(text):
                raise _malformed(name, "must be 128 hexadecimal digits")
            values[attribute] = text.lower()
        else:
            values[attribute] = _text(value, name)
    return values


def _text(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _malformed(name, f"must be a string, not {type(value).__name__}")


def _count(value: object, name: str, required: bool) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        if not text and not required:
            return None
        if not text.isdigit() or not text.isascii():
            raise _malformed(name, f"must be a whole number, not {value[:40]!r}")
        number = int(text[:20]) if len(text) <= 19 else _MAX_COUNT + 1
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise _malformed(name, f"must be a whole number, not {type(value).__name__}")
    if not 0 <= number <= _MAX_COUNT:
        raise _malformed(name, "out of range")
    return number


def _date(value: object, name: str) -> datetime:
    text = _text(value, name)
    try:
        moment = datetime.fromisoformat(text) if len(text) <= 40 else None
    except ValueError:
        moment = None
    if moment is None:
        raise _malformed(name, f"must be a date like 2025-01-31T12:00:00Z, not {text[:40]!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _extras(body: dict[str, Any], known: set[str]) -> tuple[tuple[str, ExtraValue], ...]:
    """Keys the format does not name, kept in their order when their values are
    plain (string, number, boolean, null); nested ones are left out."""
    return tuple(
        (key, value)
        for key, value in body.items()
        if key not in known and (value is None or isinstance(value, str | int | float | bool))
    )
