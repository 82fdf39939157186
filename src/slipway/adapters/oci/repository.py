"""What an OCI repository holds, for a subscription (DESIGN.md §9 and §10): each
tag whose manifest is a VM disk image artifact of one layer, with the
manifest's digest and the layer's descriptor and annotations.

EGI's registry distributes images this way and signs nothing, so what can
be checked is checked: every manifest against the digest the registry
announces, and later every file against its layer's digest. A tag that is
something else (a container image, an index, an artifact of several files)
is skipped with the reason, not refused: a repository may hold both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from slipway.adapters.oci._session import RegistrySession
from slipway.adapters.oci._streams import Timeouts
from slipway.adapters.oci.manifest import Descriptor, parse_manifest
from slipway.adapters.oci.pull import fetch_manifest
from slipway.adapters.oci.reference import OciReference, is_tag, parse_reference, tag_given
from slipway.errors import ArtifactRejected, InputError

__all__ = ["MAX_TAGS", "RepositoryImage", "RepositoryState", "parse_repository", "read_repository"]

MAX_TAGS = 1000
"""Tags read from one repository; past this, a subscription names its tag."""
_PAGE = 200
_MAX_TAG_PAGE_BYTES = 1024 * 1024
MAX_MANIFESTS_BYTES = 32 * 1024 * 1024
"""Manifest bytes read from one repository in all: a registry answering
1,000 tags with 4 MiB manifests each would otherwise have 4 GiB read and kept."""


@dataclass(frozen=True)
class RepositoryImage:
    """One tag holding a disk image: its manifest's digest and annotations,
    and its one layer (digest, size, annotations)."""

    tag: str
    manifest_digest: str
    layer: Descriptor
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class RepositoryState:
    """The disk images of a repository (by tag, sorted), and the tags skipped with why."""

    images: tuple[RepositoryImage, ...]
    skipped: tuple[tuple[str, str], ...] = ()


def parse_repository(text: str) -> OciReference:
    """``oci://host/repository`` (every tag) or ``oci://host/repository:tag``
    (that tag only) as a reference whose ``tag`` is ``None`` for the
    whole repository; a digest is refused (it never changes: nothing to sync)."""
    reference = parse_reference(text)
    if reference.digest is not None:
        raise InputError(
            f"{text}: a digest names one artifact for good; a subscription follows "
            "a repository or a tag",
            field="source",
            hint="oci://HOST/REPOSITORY (every tag) or oci://HOST/REPOSITORY:TAG",
        )
    if not tag_given(text):
        return OciReference(reference.host, reference.repository, tag=None)
    return reference


def read_repository(
    source: OciReference,
    *,
    timeouts: Timeouts = Timeouts(),
    plain_http: bool | None = None,
    check_url: Callable[[str], None] | None = None,
) -> RepositoryState:
    """Read the disk images of ``source`` (one from :func:`parse_repository`):
    its one tag, or every tag (at most :data:`MAX_TAGS`)."""
    pulling = OciReference(source.host, source.repository, tag=source.tag or "latest")
    with RegistrySession(
        pulling, actions=("pull",), credentials=None, plain_http=plain_http, timeouts=timeouts
    ) as registry:
        tags = [source.tag] if source.tag is not None else _tags(registry, check_url)
        images: list[RepositoryImage] = []
        skipped: list[tuple[str, str]] = []
        read = 0
        for tag in sorted(set(tags)):
            if not is_tag(tag):  # a registry's answer is not trusted to be a tag
                skipped.append((ascii(tag)[:140], "not a tag by the OCI grammar"))
                continue
            raw, digest = fetch_manifest(registry, tag)
            read += len(raw)
            if read > MAX_MANIFESTS_BYTES:
                raise registry.error(
                    f"{registry.reference.repository}: its manifests are over "
                    f"{MAX_MANIFESTS_BYTES // (1024 * 1024)} MiB in all",
                    hint="subscribe to one tag: oci://HOST/REPOSITORY:TAG",
                )
            try:
                manifest = parse_manifest(raw, registry=registry.host)
            except ArtifactRejected as exc:
                if exc.reason != "unsupported" or source.tag is not None:
                    raise
                skipped.append((tag, str(exc)))
                continue
            if len(manifest.layers) != 1:
                skipped.append((tag, f"an artifact of {len(manifest.layers)} files, not one"))
                continue
            images.append(RepositoryImage(tag, digest, manifest.layers[0], manifest.annotations))
    return RepositoryState(tuple(images), tuple(skipped))


def _tags(registry: RegistrySession, check_url: Callable[[str], None] | None) -> list[str]:
    """Every tag of the repository, page by page as the registry links them."""
    url = registry.url(f"tags/list?n={_PAGE}")
    action = f"list the tags of {registry.reference.repository}"
    tags: list[str] = []
    while True:
        if check_url is not None:
            check_url(url)
        response = registry.send("GET", url, action=action, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise registry.refuse(response, action)
        link = response.headers.get("Link", "")
        body = registry.read_small(response, limit=_MAX_TAG_PAGE_BYTES, action=action)
        tags += _page_tags(body, registry.host)
        if len(tags) > MAX_TAGS:
            raise registry.error(
                f"{registry.reference.repository} has over {MAX_TAGS} tags",
                hint="subscribe to one tag: oci://HOST/REPOSITORY:TAG",
            )
        following = _next_page(link, url)
        if following is None or urlsplit(following)[:2] != urlsplit(url)[:2]:
            return tags
        url = following


def _page_tags(body: bytes, host: str) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    tags = document.get("tags") if isinstance(document, dict) else None
    if tags is None and isinstance(document, dict):
        return []  # a repository without tags says "tags": null
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ArtifactRejected(
            "malformed", "rejected (malformed): the tag list is not {'tags': [...]}", registry=host
        )
    return tags


def _next_page(link: str, url: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), absolute."""
    for part in link.split(","):
        target, _, params = part.strip().partition(";")
        if target.startswith("<") and target.endswith(">") and 'rel="next"' in params:
            return urljoin(url, target[1:-1])
    return None
