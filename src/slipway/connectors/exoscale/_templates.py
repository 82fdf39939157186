"""Templates as images: how Slipway's properties and the hidden flag live on
an Exoscale template, which has neither labels nor a deprecation flag.

- **Properties** are kept in the template's ``description`` as ``slipway:``
  followed by the properties as compact JSON (ASCII, insertion order), e.g.
  ``slipway:{"slipway-image":"debian-12","version":"2025.06"}``. The
  description is the only free-form field the API keeps and returns
  (``register-template`` and ``update-template`` take at most 255
  characters), so properties that do not fit are refused before anything is
  sent. Properties named as a template field (``version``, ``build``,
  ``default-user``, ``boot-mode``, ``maintainer``) are also given to that
  field, so Exoscale's portal and tools show them; the description stays the
  copy that is read back.
- **Hidden** (deprecated) is ``[deprecated] `` before both the name and the
  description (``update-template``): the name warns whoever sees the template
  in Exoscale's portal, the description is what Slipway reads. The room for
  the mark is kept free when a template is registered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from slipway.domain.machines import CloudImage, ImageSource
from slipway.errors import InputError, PropertiesDoNotFit

__all__ = [
    "HIDDEN_MARK",
    "PROPERTIES_MARK",
    "hidden_update",
    "is_hidden",
    "register_body",
    "to_cloud_image",
]

TEXT_LIMIT = 255
"""Characters register-template and update-template take in a name or a description."""
PROPERTIES_MARK = "slipway:"
HIDDEN_MARK = "[deprecated] "
_FIELDS = ("version", "build", "default-user", "boot-mode", "maintainer")
"""Template fields register-template sets, each at most 255 characters."""
_BOOT_MODES = ("legacy", "uefi")
_LISTED = ("family", "version", "build", "default-user", "boot-mode")
"""Template fields every listed image shows as properties."""


def _block(properties: Mapping[str, str]) -> str:
    return PROPERTIES_MARK + json.dumps(dict(properties), separators=(",", ":"))


def description_of(name: str, properties: Mapping[str, str]) -> str:
    """The description carrying ``properties``, with room left for the
    hidden mark; an ``InputError`` naming the first property that does not fit."""
    room = TEXT_LIMIT - len(HIDDEN_MARK)
    kept: dict[str, str] = {}
    for key, value in properties.items():
        kept[key] = str(value)
        length = len(_block(kept))
        if length > room:
            raise PropertiesDoNotFit(
                f"image {name}: property {key} does not fit: Exoscale keeps a template's "
                f"properties in its description, at most {room} characters here, "
                f"and the properties up to {key} need {length}",
                hint="shorten the property's name or value, or leave it out for Exoscale",
            )
    return _block(kept)


def register_body(source: ImageSource, name: str, properties: Mapping[str, str]) -> dict[str, Any]:
    """The arguments of the SDK's ``register_template``; ``InputError`` for
    what Exoscale would refuse or what could not be read back."""
    room = TEXT_LIMIT - len(HIDDEN_MARK)
    if not name:
        raise InputError("an Exoscale template needs a name")
    if len(name) > room:
        raise InputError(
            f"image name {name[:40]}… is {len(name)} characters; Exoscale takes "
            f"{TEXT_LIMIT}, less {len(HIDDEN_MARK)} kept for the mark of a hidden image"
        )
    if not source.md5:
        raise InputError(f"image {name}: Exoscale checks a template by its MD5; none was given")
    body: dict[str, Any] = {
        "name": name,
        "url": source.url,
        "checksum": source.md5.lower(),
        "description": description_of(name, properties),
        "ssh_key_enabled": True,
        "password_enabled": False,
    }
    # No ``size``: the document does not say whether it is the file's or the
    # disk's, Exoscale's own CLI never sends it, and a listed template's
    # ``size`` is its disk's (see ``_disk_gb``), which the file's would contradict.
    for field in _FIELDS:
        value = properties.get(field)
        if not value:  # a value too long was refused with the description
            continue
        if field == "boot-mode" and value not in _BOOT_MODES:
            raise InputError(
                f"image {name}: property boot-mode is {value!r}; Exoscale boots "
                f"{' or '.join(_BOOT_MODES)}"
            )
        body[field.replace("-", "_")] = value
    return body


def is_hidden(template: Mapping[str, Any]) -> bool:
    return str(template.get("description") or "").startswith(HIDDEN_MARK)


def stored_properties(template: Mapping[str, Any]) -> dict[str, str]:
    """The properties Slipway wrote in the description; none when it holds
    something else."""
    text = str(template.get("description") or "").removeprefix(HIDDEN_MARK)
    if not text.startswith(PROPERTIES_MARK):
        return {}
    try:
        found = json.loads(text.removeprefix(PROPERTIES_MARK))
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items()}


def to_cloud_image(template: Mapping[str, Any], visibility: str) -> CloudImage:
    """A listed template: Exoscale only lists a template once it holds all
    of its bytes, so every one is ``ready``."""
    properties = {k: str(template[k]) for k in _LISTED if template.get(k) is not None}
    properties.update(stored_properties(template))
    properties["visibility"] = visibility
    return CloudImage(
        str(template["id"]),
        str(template.get("name") or template["id"]),
        properties,
        ready=True,
        hidden=is_hidden(template),
    )


def hidden_update(template: Mapping[str, Any]) -> tuple[str, str]:
    """The name and description marking the template hidden. A
    description Slipway did not write is cut at its end if the mark would
    not otherwise fit; a name likewise."""
    name = str(template.get("name") or template["id"])
    description = str(template.get("description") or "")
    return (HIDDEN_MARK + name)[:TEXT_LIMIT], (HIDDEN_MARK + description)[:TEXT_LIMIT]
