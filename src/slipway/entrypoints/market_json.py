"""The marketplace's values as JSON, the same for ``--output json`` and the API."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from slipway.domain.marketplace import (
    Appliance,
    ApplianceVersion,
    Endorsement,
    ListPublication,
)
from slipway.services.marketplace import ApplianceView, VoView

if TYPE_CHECKING:
    from slipway.adapters.imagelists import VerifiedImageList

__all__ = [
    "accepted_list_dict",
    "appliance_dict",
    "appliance_view_dict",
    "publication_dict",
    "version_dict",
    "vo_view_dict",
]


def appliance_dict(appliance: Appliance) -> dict[str, Any]:
    rights = appliance.rights
    return {
        "name": appliance.name,
        "identifier": appliance.identifier,
        "title": appliance.title,
        "description": appliance.description,
        "os": appliance.os,
        "arch": appliance.arch,
        "owner": rights.owner,
        "group": rights.group,
        "group_rights": sorted(rights.group_rights),
        "public_rights": sorted(rights.public_rights),
        "created_at": appliance.created_at.isoformat(),
    }


def version_dict(version: ApplianceVersion, urls: dict[str, str]) -> dict[str, Any]:
    return {
        "appliance": version.appliance,
        "version": version.version,
        "author": version.author,
        "created_at": version.created_at.isoformat(),
        "notes": version.notes,
        "expires": version.expires.isoformat() if version.expires else None,
        "checks": dict(version.checks),
        "files": [{**asdict(f), "download_url": urls.get(f.sha512)} for f in version.files],
    }


def appliance_view_dict(view: ApplianceView) -> dict[str, Any]:
    return {
        **appliance_dict(view.appliance),
        "versions": [version_dict(v, view.file_urls) for v in view.versions],
        "endorsed_by": [
            {"vo": vo, "version": version, "list_version": number}
            for vo, version, number in view.endorsements
        ],
    }


def _endorsement(entry: Endorsement) -> dict[str, Any]:
    return {
        "appliance": entry.appliance,
        "version": entry.version,
        "added_by": entry.added_by,
        "added_at": entry.added_at.isoformat(),
    }


def publication_dict(publication: ListPublication) -> dict[str, Any]:
    return {
        "vo": publication.vo,
        "version": publication.number,
        "author": publication.author,
        "published_at": publication.published_at.isoformat(),
        "expires": publication.expires.isoformat(),
        "entries": [{"appliance": a, "version": v} for a, v in publication.entries],
        "etag": publication.etag,
        "comment": publication.comment,
    }


def vo_view_dict(view: VoView) -> dict[str, Any]:
    vo = view.vo
    return {
        "name": vo.name,
        "title": vo.title,
        "description": vo.description,
        "list_identifier": vo.list_identifier,
        "created_at": vo.created_at.isoformat(),
        "obsoleted_at": vo.obsoleted_at.isoformat() if vo.obsoleted_at else None,
        "role": view.role.value if view.role else None,
        "members": None
        if view.members is None
        else [{"user": user, "role": role.value} for user, role in view.members],
        "draft": None if view.draft is None else [_endorsement(e) for e in view.draft],
        "publications": [publication_dict(p) for p in view.publications],
    }


def accepted_list_dict(verified: VerifiedImageList, source: str) -> dict[str, Any]:
    """What ``imagelist verify`` reports of an accepted list."""
    image_list = verified.image_list
    return {
        "accepted": True,
        "source": source,
        "identifier": image_list.identifier,
        "version": image_list.version,
        "title": image_list.title,
        "expires": image_list.expires,
        "signer": verified.signer.slash(),
        "issuer": verified.issuer.slash(),
        "digest": verified.digest,
        "images": [
            {
                "identifier": i.identifier,
                "title": i.title,
                "version": i.version,
                "uri": i.uri,
                "format": i.format,
                "size": i.size,
                "sha512": i.sha512,
                "os_name": i.os_name,
                "os_version": i.os_version,
                "arch": i.arch,
                "expires": i.expires,
                "extras": dict(i.extras),
            }
            for i in image_list.images
        ],
        "dropped": [
            {"identifier": i.identifier, "title": i.title, "expires": i.expires}
            for i in verified.dropped
        ],
    }
