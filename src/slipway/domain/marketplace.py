"""The marketplace: appliances, their versions and image files, and the VOs
that endorse them in VO-wide image lists (DESIGN.md §2, §9).

An appliance is an image product (``alice/debian-12``) with owner / group /
public rights as a module has. Each version (``2026.11.29``) is immutable and
holds one or more image files. A VO keeps a draft of the appliance versions
it endorses — one version per appliance — and publishes it as a numbered,
immutable list version; everyone may read what is published.

An image's ``dc:identifier`` in a list stays the same from one version of
its appliance to the next (it is derived from the appliance and the file's
architecture, hypervisor and format), so a subscriber sees a new version of
the same image, not a new image; ``hv:version`` says which version it is.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from slipway.domain.modules import MAX_NAME_CHARS, Access, Right, Rights
from slipway.domain.text import control_character

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_FILES_PER_VERSION",
    "MAX_TITLE_CHARS",
    "Appliance",
    "ApplianceQuery",
    "ApplianceVersion",
    "Endorsement",
    "ImageFile",
    "ListPublication",
    "Vo",
    "VoRole",
    "appliance_name_problem",
    "image_identifier",
    "new_appliance_identifier",
    "text_problem",
    "version_label_problem",
    "vo_name_problem",
]

MAX_FILES_PER_VERSION = 16
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 4000
_APPLIANCE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)+$")
_VERSION_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$")
# VO names are DNS-like (vo.example.org, fedcloud.egi.eu): they appear in URLs.
_VO_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_VO_NAME = re.compile(rf"^{_VO_LABEL}(\.{_VO_LABEL})*$")
_IDENTIFIERS = uuid.UUID("6f3b7c8e-2a51-4d0e-9a57-4b1d2c7e0a19")
"""Namespace of the name-based UUIDs Slipway gives appliances and images."""


class VoRole(StrEnum):
    MEMBER = "member"
    MANAGER = "manager"


@dataclass(frozen=True)
class ImageFile:
    """One image file of an appliance version. ``size`` in bytes, RAM in MiB.

    ``sha512`` and ``size`` are ``verified`` when Slipway computed them from
    the bytes; a file registered by URL with a checksum taken on trust is not.
    A store-backed file (``stored`` names the local image store entry it came
    from) is served by Slipway at a URL of its own; otherwise ``url`` is where
    it lives."""

    format: str
    size: int
    sha512: str
    verified: bool
    url: str | None = None
    stored: str | None = None
    os_name: str = ""
    os_version: str = ""
    arch: str = "x86_64"
    hypervisor: str = "QEMU,KVM"
    core_minimum: int | None = None
    core_recommended: int | None = None
    ram_minimum: int | None = None
    ram_recommended: int | None = None
    artifacts: tuple[str, ...] = ()  # oci://…@sha256:… it was pushed as, oldest first

    @property
    def slot(self) -> str:
        """What stays the same across versions: one file per slot and version."""
        return f"{self.arch}/{self.hypervisor}/{self.format}"


@dataclass(frozen=True)
class Appliance:
    """A marketplace entry. ``identifier`` (a UUID) never changes."""

    name: str
    identifier: str
    title: str
    description: str
    os: str
    arch: str
    rights: Rights
    created_at: datetime

    def may(self, access: Access, right: Right) -> bool:
        return access.can(right, self.rights)

    @property
    def is_public(self) -> bool:
        return bool(self.rights.public_rights)  # any right granted implies view


@dataclass(frozen=True)
class ApplianceVersion:
    """One immutable version of an appliance. ``checks`` says what was
    checked before it was registered: check name → outcome in words."""

    appliance: str
    version: str
    files: tuple[ImageFile, ...]
    author: str
    created_at: datetime
    notes: str = ""
    expires: datetime | None = None
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.appliance}@{self.version}"

    def is_expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now


@dataclass(frozen=True)
class ApplianceQuery:
    """A filtered list of appliances, by name. ``viewer`` limits it to what
    that user may view (None: only public ones)."""

    viewer: Access | None
    text: str | None = None
    os: str | None = None
    arch: str | None = None
    vo: str | None = None  # endorsed in the VO's newest published list
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Vo:
    """A virtual organisation. ``list_identifier`` is its list's
    ``dc:identifier``, the same in every version it publishes."""

    name: str
    title: str
    description: str
    list_identifier: str
    created_at: datetime
    obsoleted_at: datetime | None = None


@dataclass(frozen=True)
class Endorsement:
    """An appliance version in a VO's draft list."""

    appliance: str
    version: str
    added_by: str
    added_at: datetime


@dataclass(frozen=True)
class ListPublication:
    """One published, immutable version of a VO's list: ``number`` is its
    ``hv:version``; ``signed`` the S/MIME bytes served; ``document`` the JSON
    bytes they sign; ``etag`` a strong validator of ``signed``."""

    vo: str
    number: int
    author: str
    published_at: datetime
    expires: datetime
    entries: tuple[tuple[str, str], ...]  # (appliance, version)
    signed: bytes
    document: bytes
    etag: str
    comment: str = ""


def image_identifier(appliance_identifier: str, image: ImageFile) -> str:
    """The ``dc:identifier`` of ``image`` in a list: the same for every
    version of the appliance that has a file in the same slot."""
    return str(uuid.uuid5(uuid.UUID(appliance_identifier), image.slot))


def new_appliance_identifier(name: str, created_at: datetime) -> str:
    """A fresh UUID for a new appliance (name and time keep it unique even
    if a name is reused after a removal)."""
    return str(uuid.uuid5(_IDENTIFIERS, f"{name}\n{created_at.isoformat()}"))


def appliance_name_problem(name: str) -> str | None:
    """What is wrong with an appliance name (``NAMESPACE/NAME``), or None."""
    if (
        len(name) > MAX_NAME_CHARS
        or not _APPLIANCE_NAME.match(name)
        or ".." in name.split("/")
        or "/" not in name
    ):
        return (
            f"appliance name {name!r} is not valid: NAMESPACE/NAME of letters, digits, "
            f". _ - and /, at most {MAX_NAME_CHARS} characters"
        )
    return None


def version_label_problem(label: str) -> str | None:
    """What is wrong with an appliance version label, or None."""
    if not _VERSION_LABEL.match(label):
        return (
            f"version {label!r} is not valid: letters, digits and . _ + ~ -, "
            "starting with a letter or digit, at most 64 characters"
        )
    return None


def vo_name_problem(name: str) -> str | None:
    """What is wrong with a VO name (DNS-like, lower case), or None."""
    if len(name) > 200 or not _VO_NAME.match(name):
        return (
            f"VO name {name!r} is not valid: lower-case DNS-like labels "
            "(letters, digits, '-') joined by '.', e.g. vo.example.org"
        )
    return None


def text_problem(field: str, text: str, limit: int, *, multi_line: bool = False) -> str | None:
    """What is wrong with a title or description, or None."""
    if len(text) > limit:
        return f"{field} is over {limit} characters"
    found = control_character(text, multi_line=multi_line)
    if found is not None:
        return f"{field} contains the control character {found}"
    return None
