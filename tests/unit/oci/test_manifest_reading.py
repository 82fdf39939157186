"""A manifest is read strictly: what Slipway and EGI's oras write is read
back; anything else is refused for its reason before a layer is fetched."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from slipway.adapters.oci.manifest import (
    EMPTY_DIGEST,
    MAX_LAYERS,
    MAX_MANIFEST_BYTES,
    Descriptor,
    DiskManifest,
    parse_manifest,
    render_manifest,
)
from slipway.errors import ArtifactRejected

LAYER_DIGEST = "sha256:" + "cd" * 32
LAYER = Descriptor("application/x-qemu-disk", LAYER_DIGEST, 1234, {"eu.egi.cloud.tag": "t"})
GOOD: dict[str, Any] = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/x-qemu-disk",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
    "layers": [{"mediaType": "application/x-qemu-disk", "digest": LAYER_DIGEST, "size": 1234}],
}


def changed(path: str, value: object) -> bytes:
    """GOOD with the value at ``path`` (``config.size``, ``layers.0.urls``)
    set, or removed when ``value`` is ``...``."""
    document = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return json.dumps(document).encode()


def reason_for(raw: bytes) -> str:
    with pytest.raises(ArtifactRejected) as refused:
        parse_manifest(raw, registry="reg.example")
    assert refused.value.message.startswith(f"reg.example: rejected ({refused.value.reason})")
    return refused.value.reason


def test_what_slipway_writes_reads_back_the_same() -> None:
    written = DiskManifest(layers=(LAYER,), annotations={"org.opencontainers.image.revision": "r"})
    read = parse_manifest(render_manifest(written), registry="r")
    assert read == written


def test_the_same_manifest_always_has_the_same_bytes() -> None:
    one = render_manifest(DiskManifest(layers=(LAYER,), annotations={"a": "1", "b": "2"}))
    two = render_manifest(DiskManifest(layers=(LAYER,), annotations={"a": "1", "b": "2"}))
    assert one == two
    assert b" " not in one


def test_what_oras_writes_for_egi_is_read() -> None:
    egi = copy.deepcopy(GOOD)
    egi["artifactType"] = "application/vnd.unknown.artifact.v1"
    egi["config"]["data"] = "e30="
    egi["annotations"] = {"org.opencontainers.image.created": "2025-09-04T10:00:00Z"}
    egi["subject"] = {"mediaType": "x", "digest": LAYER_DIGEST, "size": 1}  # ignored, as specified
    read = parse_manifest(json.dumps(egi).encode(), registry="r")
    assert read.artifact_type == "application/vnd.unknown.artifact.v1"
    assert read.layers[0].digest == LAYER_DIGEST


def test_a_manifest_without_artifact_type_and_with_the_old_oras_config_is_read() -> None:
    old = json.loads(changed("artifactType", ...))
    old["config"]["mediaType"] = "application/vnd.unknown.config.v1+json"
    assert parse_manifest(json.dumps(old).encode(), registry="r").artifact_type is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b'{"schemaVersion": 2, "schemaVersion": 2}', "malformed"),
        (b'{"schemaVersion": NaN}', "malformed"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed"),
        (changed("schemaVersion", 1), "malformed"),
        (changed("schemaVersion", True), "malformed"),
        (changed("schemaVersion", "2"), "malformed"),
        (changed("mediaType", ...), "unsupported"),
        (changed("mediaType", "application/vnd.oci.image.index.v1+json"), "unsupported"),
        (
            changed("mediaType", "application/vnd.docker.distribution.manifest.v2+json"),
            "unsupported",
        ),
        (changed("artifactType", "application/vnd.cyclonedx+json"), "unsupported"),
        (changed("config", ...), "malformed"),
        (changed("config.mediaType", "application/vnd.oci.image.config.v1+json"), "unsupported"),
        (changed("config.digest", "sha256:" + "00" * 32), "unsupported"),
        (changed("config.size", 3), "unsupported"),
        (changed("layers", []), "malformed"),
        (changed("layers", {"0": {}}), "malformed"),
        (changed("layers", [GOOD["layers"][0]] * (MAX_LAYERS + 1)), "too-large"),
        (changed("layers.0.mediaType", "application/vnd.oci.image.layer.v1.tar"), "unsupported"),
        (changed("layers.0.mediaType", 7), "malformed"),
        (changed("layers.0.digest", "sha512:" + "ab" * 64), "unsupported"),
        (changed("layers.0.digest", "sha256:" + "AB" * 32), "unsupported"),
        (changed("layers.0.digest", "not a digest"), "malformed"),
        (changed("layers.0.size", -1), "malformed"),
        (changed("layers.0.size", 1.5), "malformed"),
        (changed("layers.0.size", False), "malformed"),
        (changed("layers.0.size", "1234"), "malformed"),
        (changed("layers.0.urls", ["https://elsewhere.example/blob"]), "unsupported"),
        (changed("layers.0.annotations", {"k": 1}), "malformed"),
        (changed("layers.0.annotations", ["k"]), "malformed"),
        (changed("annotations", {"k": None}), "malformed"),
        (b" " * (MAX_MANIFEST_BYTES + 1), "too-large"),
    ],
)
def test_a_manifest_that_is_not_a_disk_artifact_is_refused_for_its_reason(
    raw: bytes, reason: str
) -> None:
    assert reason_for(raw) == reason
