"""The OCI image manifest of a disk image artifact: written, and read strictly.

A disk image artifact is an OCI image manifest (schema 2) whose config is the
empty JSON object ``{}`` and whose layers are disk files
(``application/x-qemu-disk``), as EGI pushes them with ``oras``. Reading
refuses anything else before a byte of a layer is fetched: another manifest
type, another artifact type, a config that is not ``{}``, a layer of another
type or digest algorithm, or one to fetch from elsewhere (``urls``). Fields
the specification does not name are ignored, as it requires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from slipway.errors import ArtifactRejected

__all__ = [
    "DISK_ARTIFACT_TYPE",
    "DISK_MEDIA_TYPE",
    "EMPTY_CONFIG",
    "EMPTY_DIGEST",
    "EMPTY_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "MAX_LAYERS",
    "MAX_MANIFEST_BYTES",
    "Descriptor",
    "DiskManifest",
    "parse_manifest",
    "render_manifest",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
DISK_MEDIA_TYPE = "application/x-qemu-disk"
DISK_ARTIFACT_TYPE = DISK_MEDIA_TYPE
# oras's default artifact type, which EGI's images carry.
UNKNOWN_ARTIFACT_TYPE = "application/vnd.unknown.artifact.v1"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
# The config type oras 1.0 wrote, for the same {} content.
UNKNOWN_CONFIG_MEDIA_TYPE = "application/vnd.unknown.config.v1+json"
EMPTY_CONFIG = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

ARTIFACT_TYPES = frozenset({DISK_ARTIFACT_TYPE, UNKNOWN_ARTIFACT_TYPE})
CONFIG_MEDIA_TYPES = frozenset({EMPTY_MEDIA_TYPE, UNKNOWN_CONFIG_MEDIA_TYPE})
# What registries must accept (distribution spec); more is refused unread.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_LAYERS = 64

_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Descriptor:
    """What a manifest says of one blob: its type, digest, size in bytes and
    annotations."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def document(self) -> dict[str, Any]:
        """As JSON, the keys in the specification's order."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


EMPTY_DESCRIPTOR = Descriptor(EMPTY_MEDIA_TYPE, EMPTY_DIGEST, len(EMPTY_CONFIG))


@dataclass(frozen=True)
class DiskManifest:
    """A disk image artifact's manifest, as read or as to be written."""

    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    artifact_type: str | None = DISK_ARTIFACT_TYPE
    config: Descriptor = EMPTY_DESCRIPTOR


def render_manifest(manifest: DiskManifest) -> bytes:
    """The manifest's bytes: compact JSON in a fixed key order, so the same
    file and annotations always give the same manifest digest."""
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE}
    if manifest.artifact_type is not None:
        document["artifactType"] = manifest.artifact_type
    document["config"] = manifest.config.document()
    document["layers"] = [layer.document() for layer in manifest.layers]
    if manifest.annotations:
        document["annotations"] = dict(manifest.annotations)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def parse_manifest(raw: bytes, *, registry: str) -> DiskManifest:
    """The manifest in ``raw``, or :class:`ArtifactRejected`: ``malformed``
    (not JSON, a field of the wrong type), ``unsupported`` (a manifest, but
    not of a disk image artifact), ``too-large`` (over 4 MiB)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _rejected("too-large", f"the manifest is over {MAX_MANIFEST_BYTES} bytes", registry)
    document = _json_object(raw, registry)
    if type(document.get("schemaVersion")) is not int or document["schemaVersion"] != 2:
        raise _rejected("malformed", "schemaVersion is not 2", registry)
    media_type = document.get("mediaType")
    if media_type != MANIFEST_MEDIA_TYPE:
        raise _unsupported(f"a {_shown(media_type)} is not an OCI image manifest", registry)
    artifact_type = document.get("artifactType")
    if artifact_type is not None and artifact_type not in ARTIFACT_TYPES:
        raise _unsupported(f"the artifact type {_shown(artifact_type)} is not a disk", registry)
    config = _descriptor(document.get("config"), "config", registry)
    if config.media_type not in CONFIG_MEDIA_TYPES or (config.digest, config.size) != (
        EMPTY_DIGEST,
        len(EMPTY_CONFIG),
    ):
        raise _unsupported("the config is not the empty {} of an artifact", registry)
    layers = document.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _rejected("malformed", "layers is not a list of at least one", registry)
    if len(layers) > MAX_LAYERS:
        raise _rejected("too-large", f"over {MAX_LAYERS} layers", registry)
    found = tuple(_descriptor(layer, f"layers[{i}]", registry) for i, layer in enumerate(layers))
    for i, layer in enumerate(found):
        if layer.media_type != DISK_MEDIA_TYPE:
            raise _unsupported(f"layers[{i}] is a {_shown(layer.media_type)}, not a disk", registry)
    return DiskManifest(
        layers=found,
        annotations=_annotations(document.get("annotations"), "annotations", registry),
        artifact_type=artifact_type,
        config=config,
    )


def _json_object(raw: bytes, registry: str) -> dict[str, Any]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("a key appears twice in one object")
        return dict(pairs)

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        document = json.loads(
            raw.decode("utf-8"), object_pairs_hook=unique, parse_constant=no_constant
        )
    except (ValueError, RecursionError) as exc:
        raise _rejected("malformed", f"the manifest is not JSON: {exc}", registry) from None
    if not isinstance(document, dict):
        raise _rejected("malformed", "the manifest is not a JSON object", registry)
    return document


def _descriptor(value: object, where: str, registry: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _rejected("malformed", f"{where} is not an object", registry)
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _rejected("malformed", f"{where}.mediaType is not text", registry)
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise _rejected("malformed", f"{where}.digest is not a digest", registry)
    if not _SHA256.fullmatch(digest):
        raise _unsupported(f"{where}.digest is not sha256: {_shown(digest)}", registry)
    if type(size) is not int or size < 0:
        raise _rejected("malformed", f"{where}.size is not a byte count", registry)
    if "urls" in value:
        raise _unsupported(f"{where} is to be fetched from elsewhere (urls)", registry)
    annotations = _annotations(value.get("annotations"), f"{where}.annotations", registry)
    return Descriptor(media_type, digest, size, annotations)


def _annotations(value: object, where: str, registry: str) -> Mapping[str, str]:
    if value is None:
        return _EMPTY
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(text, str) for key, text in value.items()
    ):
        raise _rejected("malformed", f"{where} is not a map of text to text", registry)
    return MappingProxyType(dict(value))


def _shown(value: object) -> str:
    return ascii(value)[:120]


def _unsupported(message: str, registry: str) -> ArtifactRejected:
    return _rejected("unsupported", message, registry)


def _rejected(reason: str, message: str, registry: str) -> ArtifactRejected:
    return ArtifactRejected(reason, f"rejected ({reason}): {message}", registry=registry)
