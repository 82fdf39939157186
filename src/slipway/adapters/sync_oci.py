"""A subscription's other source: an OCI repository whose tags are VM disk
image artifacts, as EGI's registry distributes them (DESIGN.md §9).

Nothing there is signed, so the reader trusts what can be checked: each
manifest's digest as it is read (``adapters/oci/repository``), each file's
sha256 as it downloads (``ImageCache``). What a read found is put in a
document of its own — the "message" a sync accepts and keeps, as it keeps
a list's bytes — and that document becomes an :class:`ImageList`:

* one image per tag, identified by ``HOST/REPOSITORY:TAG`` (a tag moved to
  new bytes is the same image changed, and is replaced);
* its appliance is the repository's last name (``…/ubuntu`` → ``ubuntu``),
  its version the layer's ``eu.egi.cloud.tag`` (else the tag);
* the VO is the subscription's (``--vo``); the list's version is the time
  of the read that first saw this content, so versions only go up;
* an unchanged repository is "not modified": the digest of what was read
  stands in for an HTTP ETag.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from slipway.adapters.addresses import refuse_private_host
from slipway.adapters.oci import annotations as keys
from slipway.adapters.oci._streams import Timeouts
from slipway.adapters.oci.repository import RepositoryImage, parse_repository, read_repository
from slipway.domain.endorsers import DistinguishedName, Endorser
from slipway.domain.imagelists import ImageList, ListedImage, PreviousAcceptance
from slipway.domain.sync import Subscription
from slipway.errors import ImageListRejected
from slipway.services.sync_run import AcceptedList, FetchedList

__all__ = ["FORMAT", "OciListReader"]

FORMAT = "slipway-oci-repository/1"
_NOBODY = DistinguishedName(())
_NEVER = datetime(9999, 12, 31, tzinfo=UTC)


class OciListReader:
    """OCI repositories read as image lists (no signature: digests only)."""

    def __init__(
        self,
        *,
        fetch_private: bool,
        timeouts: Timeouts | None = None,
        plain_http: bool | None = None,
    ) -> None:
        self.fetch_private = fetch_private
        self.timeouts = timeouts or Timeouts()
        self.plain_http = plain_http

    def check_url(self, url: str) -> None:
        """Refuse the server's own network (unless allowed), redirects included."""
        host = urllib.parse.urlsplit(url if "//" in url else f"//{url}").hostname
        if not self.fetch_private and host:
            refuse_private_host(host, field="source")

    def check_source(self, source: str) -> None:
        self.check_url(parse_repository(source).host)

    def fetch(self, source: str, etag: str | None, last_modified: str | None) -> FetchedList:
        reference = parse_repository(source)
        self.check_url(reference.host)
        state = read_repository(
            reference, timeouts=self.timeouts, plain_http=self.plain_http, check_url=self.check_url
        )
        images = [_entry(i) for i in state.images]
        digest = _digest(source, images)
        if etag == digest:
            return FetchedList(None, etag, last_modified)
        document = {
            "format": FORMAT,
            "source": source,
            "read_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "images": images,
            "skipped": [list(s) for s in state.skipped],
        }
        return FetchedList(json.dumps(document, sort_keys=True).encode(), digest)

    def verify(
        self,
        message: bytes,
        subscription: Subscription,
        previous: PreviousAcceptance | None,
        now: datetime,
    ) -> AcceptedList:
        try:
            document = json.loads(message)
            if document.get("format") != FORMAT or document.get("source") != subscription.source:
                raise ValueError("not this subscription's repository")
            read_at = datetime.strptime(document["read_at"], "%Y-%m-%dT%H:%M:%SZ")
            images = tuple(_listed(entry, subscription.source) for entry in document["images"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ImageListRejected(
                "malformed",
                f"rejected (malformed): the repository's record is not readable: {exc}",
            ) from None
        read_at = read_at.replace(tzinfo=UTC)
        image_list = ImageList(
            identifier=subscription.source,
            version=read_at.strftime("%Y%m%d%H%M%S"),
            created=read_at,
            expires=_NEVER,
            endorser=Endorser(_NOBODY, _NOBODY, name="unsigned (OCI digests checked)"),
            images=images,
            title=subscription.source,
            vo=subscription.vo,
        )
        notes = ["unsigned: every manifest and file is checked against its digest"]
        notes += [f"tag {tag} skipped: {why}" for tag, why in document.get("skipped", [])[:20]]
        return AcceptedList(
            image_list, (), _digest(subscription.source, document["images"]), tuple(notes)
        )


def _entry(image: RepositoryImage) -> dict[str, Any]:
    layer = image.layer
    return {
        "tag": image.tag,
        "manifest": image.manifest_digest,
        "digest": layer.digest,
        "size": layer.size,
        "layer_annotations": dict(layer.annotations),
        "annotations": dict(image.annotations),
    }


def _digest(source: str, images: list[dict[str, Any]]) -> str:
    canonical = json.dumps({"source": source, "images": images}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _listed(entry: dict[str, Any], source: str) -> ListedImage:
    reference = parse_repository(source)
    tag, layer = entry["tag"], entry["layer_annotations"]
    size = entry["size"]
    if not isinstance(tag, str) or type(size) is not int or not isinstance(layer, dict):
        raise ValueError("an image entry has fields of the wrong type")
    appliance = reference.repository.rsplit("/", 1)[-1]
    pinned = f"oci://{reference.host}/{reference.repository}:{tag}@{entry['manifest']}"
    return ListedImage(
        identifier=f"{reference.host}/{reference.repository}:{tag}",
        uri=pinned,
        size=size,
        sha512="",
        digest=entry["digest"],
        title=layer.get(keys.EGI_TITLE) or f"{appliance}:{tag}",
        description=layer.get(keys.DESCRIPTION, ""),
        version=layer.get(keys.EGI_TAG) or tag,
        format=layer.get(keys.DISK_FORMAT) or "qcow2",
        arch=layer.get(keys.ARCHITECTURE),
        os_name=layer.get(keys.OS_DISTRO),
        os_version=layer.get(keys.OS_VERSION),
        mpuri=pinned,
        appid=appliance,
    )
