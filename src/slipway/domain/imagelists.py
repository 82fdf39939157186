"""HEPiX image lists: the values a list holds and the rules that use them.

A list (``hv:imagelist``) is published by an endorser, names the images it
endorses and says until when (``dc:date:expires``). Its identifier
(``dc:identifier``) stays the same across its versions (``hv:version``); a
subscriber must see the identifier unchanged and the version never go down.

Numbers are normalised here: sizes in bytes, RAM in MiB (AppDB's unit), cores
as counts; AppDB writes them as strings, older lists as integers. Dates are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from slipway.domain.endorsers import Endorser

__all__ = [
    "ExtraValue",
    "ImageList",
    "ListedImage",
    "PreviousAcceptance",
    "Problem",
    "RejectionReason",
    "drop_expired_images",
    "glance_os_distro",
    "succession_problems",
    "version_key",
]

ExtraValue = str | int | float | bool | None
"""A field the format does not name (``ad:*`` and others), kept as it came."""


class RejectionReason(StrEnum):
    """Why a list is not used; stable codes, in the order they are reported."""

    TOO_LARGE = "too-large"
    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    LEGACY_ALGORITHM = "legacy-algorithm"
    DIGEST_MISMATCH = "digest-mismatch"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    UNTRUSTED_CHAIN = "untrusted-chain"
    REVOKED = "revoked"
    ENDORSER_MISMATCH = "endorser-mismatch"
    IDENTIFIER_CHANGED = "identifier-changed"
    VERSION_DOWNGRADE = "version-downgrade"


@dataclass(frozen=True)
class Problem:
    """One reason a list is refused, with a one-line explanation."""

    reason: RejectionReason
    detail: str


@dataclass(frozen=True)
class ListedImage:
    """One ``hv:image`` of a list. ``size`` in bytes; ``ram_*`` in MiB;
    ``core_*`` in cores; ``sha512`` in lower-case hex. ``None`` means the list
    does not have the field (AppDB then leaves it out).

    An image of an OCI repository (a subscription's other kind of source)
    has the ``digest`` of its file (``sha256:…``) instead of a ``sha512``
    (empty until the file is downloaded), and ``uri`` is the artifact's
    reference pinned to its manifest's digest."""

    identifier: str
    uri: str
    size: int
    sha512: str
    title: str = ""
    description: str = ""
    version: str = ""
    format: str | None = None
    hypervisor: str | None = None
    arch: str | None = None
    os: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    comments: str | None = None
    ram_minimum: int | None = None
    ram_recommended: int | None = None
    core_minimum: int | None = None
    core_recommended: int | None = None
    expires: datetime | None = None
    mpuri: str | None = None
    base_mpuri: str | None = None
    appid: str | None = None
    group: str | None = None
    user_fullname: str | None = None
    user_guid: str | None = None
    user_uri: str | None = None
    extras: tuple[tuple[str, ExtraValue], ...] = ()
    digest: str | None = None


@dataclass(frozen=True)
class ImageList:
    """One version of an image list (``hv:imagelist``)."""

    identifier: str
    version: str
    created: datetime
    expires: datetime
    endorser: Endorser
    images: tuple[ListedImage, ...]
    title: str = ""
    description: str = ""
    source: str | None = None
    uri: str | None = None
    vo: str | None = None
    extras: tuple[tuple[str, ExtraValue], ...] = field(default=())

    def is_expired(self, now: datetime) -> bool:
        """Whether the list's ``dc:date:expires`` has passed at ``now`` (UTC)."""
        return self.expires <= now


@dataclass(frozen=True)
class PreviousAcceptance:
    """What was last accepted from the same place: identifier and version."""

    identifier: str
    version: str


_VERSION_PART = re.compile(r"\d+|[^\d]+")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for ``hv:version``: runs of digits compare as numbers, other
    runs as text (``20150618211400`` > ``9``, ``3.10.0`` > ``3.9.1``); a digit
    run sorts after a text run at the same place."""
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part)
        for part in _VERSION_PART.findall(version.strip())
    )


def succession_problems(previous: PreviousAcceptance | None, current: ImageList) -> list[Problem]:
    """What is wrong with ``current`` following ``previous``: the identifier
    must stay and the version must not go down (the same version again is
    the same list fetched again)."""
    if previous is None:
        return []
    problems = []
    if current.identifier != previous.identifier:
        problems.append(
            Problem(
                RejectionReason.IDENTIFIER_CHANGED,
                f"dc:identifier is {current.identifier}, "
                f"but {previous.identifier} was accepted before",
            )
        )
    if version_key(current.version) < version_key(previous.version):
        problems.append(
            Problem(
                RejectionReason.VERSION_DOWNGRADE,
                f"hv:version {current.version} is older than {previous.version}, "
                "which was accepted before",
            )
        )
    return problems


def drop_expired_images(
    image_list: ImageList, now: datetime
) -> tuple[ImageList, tuple[ListedImage, ...]]:
    """The list without the images whose own ``dc:date:expires`` has passed
    at ``now``, and those images."""
    kept: list[ListedImage] = []
    dropped: list[ListedImage] = []
    for image in image_list.images:
        (kept if image.expires is None or image.expires > now else dropped).append(image)
    return replace(image_list, images=tuple(kept)), tuple(dropped)


_DISTROS = {
    "debian": "debian", "ubuntu": "ubuntu", "centos": "centos", "fedora": "fedora",
    "almalinux": "almalinux", "rocky": "rocky", "rocky linux": "rocky", "opensuse": "opensuse",
    "red hat enterprise linux": "rhel", "rhel": "rhel", "sles": "sles",
    "scientific linux": "scientific", "arch linux": "arch", "freebsd": "freebsd",
}  # fmt: skip
"""``sl:osname`` → Glance's ``os_distro`` values (its documented list)."""


def glance_os_distro(name: str | None) -> str | None:
    """Glance's ``os_distro`` for an OS name as lists give it (``sl:osname``):
    ``Scientific Linux`` → ``scientific``, anything else lower-case without
    spaces or punctuation; ``None`` without a name."""
    if not name:
        return None
    lowered = name.strip().lower()
    return _DISTROS.get(lowered, re.sub(r"[^a-z0-9]+", "", lowered) or None)
