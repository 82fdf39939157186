"""Writing a list as AppDB does: its keys in AppDB's order, numbers as
strings, dates as ``%Y-%m-%dT%H:%M:%SZ``, the endorser's names in slash form,
three-space indents and CRLF line ends (the bytes AppDB signs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from slipway.adapters.imagelists._fields import IMAGE_FIELDS, LIST_FIELDS, FieldKind
from slipway.domain.imagelists import ImageList, ListedImage

__all__ = ["image_list_document", "render_image_list"]


def render_image_list(image_list: ImageList) -> bytes:
    """The JSON bytes of ``image_list`` as AppDB writes them (UTF-8, CRLF)."""
    text = json.dumps(image_list_document(image_list), indent=3, ensure_ascii=False)
    return (text + "\n").replace("\n", "\r\n").encode()


def image_list_document(image_list: ImageList) -> dict[str, Any]:
    """``{"hv:imagelist": {…}}`` with AppDB's keys, order and value types."""
    fields = _fields(image_list, LIST_FIELDS)
    body: dict[str, Any] = {}
    for key, _attribute, _kind, _required in LIST_FIELDS:
        if key == "hv:uri":  # AppDB puts the endorser and the images before hv:uri
            body["hv:endorser"] = {
                "hv:x509": {
                    "dc:creator": image_list.endorser.name,
                    "hv:ca": image_list.endorser.ca.slash(),
                    "hv:dn": image_list.endorser.dn.slash(),
                    "hv:email": image_list.endorser.email,
                }
            }
            body["hv:images"] = [{"hv:image": _image(i)} for i in image_list.images]
        if key in fields:
            body[key] = fields[key]
    body.update(image_list.extras)
    return {"hv:imagelist": body}


def _image(image: ListedImage) -> dict[str, Any]:
    body: dict[str, Any] = _fields(image, IMAGE_FIELDS)
    body.update(image.extras)
    return body


def _fields(
    value: ImageList | ListedImage, fields: tuple[tuple[str, str, FieldKind, bool], ...]
) -> dict[str, Any]:
    written: dict[str, Any] = {}
    for key, attribute, kind, _required in fields:
        item = getattr(value, attribute)
        if item is None:
            continue
        if kind == "date":
            written[key] = _date(item)
        elif kind == "count":
            written[key] = str(item)
        else:
            written[key] = item
    return written


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
