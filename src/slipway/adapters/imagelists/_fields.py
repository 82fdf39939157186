"""The JSON keys of a HEPiX list in the order AppDB writes them, with the
attribute of the domain value each one fills and how its value is read."""

from __future__ import annotations

from typing import Literal

__all__ = ["IMAGE_FIELDS", "LIST_FIELDS", "FieldKind"]

FieldKind = Literal["text", "count", "date", "sha512"]
"""text: a string (an integer is taken as its digits); count: a whole number,
string or integer; date: ``%Y-%m-%dT%H:%M:%SZ``; sha512: 128 hex digits."""

# (JSON key, attribute, kind, required). hv:endorser and hv:images are handled apart.
LIST_FIELDS: tuple[tuple[str, str, FieldKind, bool], ...] = (
    ("dc:date:created", "created", "date", True),
    ("dc:date:expires", "expires", "date", True),
    ("dc:description", "description", "text", False),
    ("dc:identifier", "identifier", "text", True),
    ("dc:source", "source", "text", False),
    ("dc:title", "title", "text", False),
    ("ad:vo", "vo", "text", False),
    ("hv:uri", "uri", "text", False),
    ("hv:version", "version", "text", True),
)

IMAGE_FIELDS: tuple[tuple[str, str, FieldKind, bool], ...] = (
    ("dc:description", "description", "text", False),
    ("dc:identifier", "identifier", "text", True),
    ("ad:mpuri", "mpuri", "text", False),
    ("dc:title", "title", "text", False),
    ("ad:group", "group", "text", False),
    ("hv:hypervisor", "hypervisor", "text", False),
    ("hv:format", "format", "text", False),
    ("hv:ram_minimum", "ram_minimum", "count", False),
    ("ad:ram_recommended", "ram_recommended", "count", False),
    ("hv:core_minimum", "core_minimum", "count", False),
    ("ad:core_recommended", "core_recommended", "count", False),
    ("hv:size", "size", "count", True),
    ("hv:uri", "uri", "text", True),
    ("hv:version", "version", "text", False),
    ("dc:date:expires", "expires", "date", False),
    ("sl:arch", "arch", "text", False),
    ("sl:checksum:sha512", "sha512", "sha512", True),
    ("sl:comments", "comments", "text", False),
    ("sl:os", "os", "text", False),
    ("sl:osname", "os_name", "text", False),
    ("sl:osversion", "os_version", "text", False),
    ("ad:user:fullname", "user_fullname", "text", False),
    ("ad:user:guid", "user_guid", "text", False),
    ("ad:user:uri", "user_uri", "text", False),
    ("ad:base_mpuri", "base_mpuri", "text", False),
    ("ad:appid", "appid", "text", False),
)
