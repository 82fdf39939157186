"""Disk images pushed to a real registry come back byte for byte with their
annotations, skopeo sees what Slipway pushed, Slipway pulls what another
client pushed in EGI's shape, and a blob changed in the registry's storage
is refused with nothing left behind."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from slipway.adapters.oci import (
    DISK_MEDIA_TYPE,
    OciReference,
    Step,
    Transfer,
    disk_image_annotations,
    parse_reference,
    pull_disk_image,
    push_disk_image,
)
from slipway.errors import ArtifactRejected, Conflict, InputError, NotFound
from tests.oci_registry import LocalRegistry, random_file

ANNOTATIONS = disk_image_annotations(
    os_distro="debian",
    os_version="12",
    architecture="x86_64",
    tag="2026-11-29-4d7122d6",
    admin_user="debian",
    title="Debian 12",
    source="https://example.org/images",
    revision="4d7122d6",
)

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(
    SKOPEO is None, reason="skopeo is missing (apt-get install skopeo): no independent client"
)


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_qcow2_image_comes_back_byte_for_byte_with_its_annotations(
    registry: LocalRegistry, qcow2_file: Path, tmp_path: Path
) -> None:
    pushed = push_disk_image(
        qcow2_file, registry.reference("egi/debian:12"), annotations=ANNOTATIONS
    )
    pulled = pull_disk_image(registry.reference("egi/debian:12"), tmp_path / "out")

    assert [f.path.name for f in pulled.files] == ["debian-12.qcow2"]
    assert pulled.files[0].path.read_bytes() == qcow2_file.read_bytes()
    assert pulled.manifest_digest == pushed.manifest_digest
    assert pulled.files[0].digest == pushed.layer_digest == sha256_of(qcow2_file)
    assert pulled.files[0].annotations == {
        **ANNOTATIONS.layer,
        "org.openstack.glance.disk_format": "qcow2",
        "org.openstack.glance.container_format": "bare",
        "org.opencontainers.image.title": "debian-12.qcow2",
    }
    assert pulled.annotations == {
        "org.opencontainers.image.source": "https://example.org/images",
        "org.opencontainers.image.revision": "4d7122d6",
    }
    fields = pulled.fields()
    assert (fields.os_distro, fields.os_version, fields.tag) == (
        "debian",
        "12",
        "2026-11-29-4d7122d6",
    )
    assert pulled.reference == parse_reference(registry.reference("egi/debian:12")).with_digest(
        pushed.manifest_digest
    )


def test_a_file_of_random_mebibytes_is_pulled_by_its_digest_alone(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "data.raw")
    seen: list[Transfer] = []
    pushed = push_disk_image(
        disk,
        registry.reference("slipway/random:1"),
        annotations=ANNOTATIONS,
        disk_format="raw",
        progress=seen.append,
    )
    by_digest = OciReference(
        registry.host, "slipway/random", tag=None, digest=pushed.manifest_digest
    )

    pulled = pull_disk_image(str(by_digest), tmp_path / "out", progress=seen.append)

    assert pulled.files[0].path.read_bytes() == disk.read_bytes()
    assert pulled.files[0].annotations["org.openstack.glance.disk_format"] == "raw"
    size = disk.stat().st_size
    last = {t.step: t for t in seen}
    assert {step: (t.done, t.total) for step, t in last.items()} == {
        Step.HASH: (size, size),
        Step.UPLOAD: (size, size),
        Step.DOWNLOAD: (size, size),
    }


def test_the_same_file_pushed_again_uploads_nothing_and_keeps_its_digest(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "again.raw", size=256 * 1024)
    first = push_disk_image(
        disk, registry.reference("slipway/again:1"), annotations=ANNOTATIONS, disk_format="raw"
    )
    second = push_disk_image(
        disk, registry.reference("slipway/again:2"), annotations=ANNOTATIONS, disk_format="raw"
    )
    assert (first.uploaded, second.uploaded) == (True, False)
    assert first.manifest_digest == second.manifest_digest


@needs_skopeo
def test_skopeo_copies_what_slipway_pushed_and_finds_the_same_digests(
    registry: LocalRegistry, qcow2_file: Path, tmp_path: Path
) -> None:
    pushed = push_disk_image(
        qcow2_file, registry.reference("egi/skopeo-sees:12"), annotations=ANNOTATIONS
    )
    copied = tmp_path / "copied"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry.host}/egi/skopeo-sees:12",
        f"dir:{copied}",
    )

    manifest = json.loads((copied / "manifest.json").read_bytes())
    assert skopeo("manifest-digest", str(copied / "manifest.json")) == pushed.manifest_digest
    assert manifest["artifactType"] == DISK_MEDIA_TYPE
    [layer] = manifest["layers"]
    assert layer["mediaType"] == DISK_MEDIA_TYPE
    assert layer["annotations"]["eu.egi.cloud.tag"] == "2026-11-29-4d7122d6"
    assert manifest["annotations"]["org.opencontainers.image.revision"] == "4d7122d6"
    blob = copied / pushed.layer_digest.removeprefix("sha256:")
    assert blob.read_bytes() == qcow2_file.read_bytes()


@needs_skopeo
def test_an_artifact_in_egi_shape_pushed_by_skopeo_is_pulled(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "ubuntu.qcow2", size=128 * 1024)
    layout = tmp_path / "layout"
    manifest_bytes = _egi_shaped_layout(layout, disk)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"dir:{layout}",
        f"docker://{registry.host}/egi_vm_images/ubuntu:22.04",
    )

    pulled = pull_disk_image(registry.reference("egi_vm_images/ubuntu:22.04"), tmp_path / "out")

    assert pulled.manifest_digest == "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    assert pulled.artifact_type == "application/vnd.unknown.artifact.v1"
    assert pulled.files[0].path.name == "ubuntu.qcow2"
    assert pulled.files[0].path.read_bytes() == disk.read_bytes()
    assert pulled.fields().admin_user == "ubuntu"


def test_a_blob_changed_in_the_registry_storage_is_refused_and_nothing_is_left(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "victim.raw", size=512 * 1024)
    pushed = push_disk_image(
        disk, registry.reference("slipway/victim:1"), annotations=ANNOTATIONS, disk_format="raw"
    )
    stored = registry.blob_file(pushed.layer_digest)
    corrupted = bytearray(stored.read_bytes())
    corrupted[1000:1004] = bytes(b ^ 0xFF for b in corrupted[1000:1004])
    stored.write_bytes(bytes(corrupted))
    target = tmp_path / "out"

    with pytest.raises(ArtifactRejected) as refused:
        pull_disk_image(registry.reference("slipway/victim:1"), target)

    assert refused.value.reason == "digest-mismatch"
    assert pushed.layer_digest in refused.value.message
    assert "sha256:" + hashlib.sha256(corrupted).hexdigest() in refused.value.message
    assert list(target.iterdir()) == []


def test_a_digest_the_registry_does_not_hold_is_not_found(
    registry: LocalRegistry, qcow2_file: Path, tmp_path: Path
) -> None:
    push_disk_image(qcow2_file, registry.reference("egi/pinned:12"), annotations=ANNOTATIONS)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(NotFound, match="MANIFEST_UNKNOWN"):
        pull_disk_image(registry.reference(f"egi/pinned@{wrong}"), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_repository_that_does_not_exist_is_not_found_in_the_registry_words(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    with pytest.raises(NotFound) as missing:
        pull_disk_image(registry.reference("nobody/nothing:1"), tmp_path / "out")
    assert registry.host in missing.value.message
    assert "unknown" in missing.value.message.lower()


def skopeo(*args: str) -> str:
    assert SKOPEO is not None
    done = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _egi_shaped_layout(layout: Path, disk: Path) -> bytes:
    """A skopeo ``dir:`` layout of ``disk`` as EGI's oras pushes look: the
    default artifact type, the empty config with its data inline, a creation
    time on the manifest."""
    layout.mkdir()
    (layout / "version").write_text("Directory Transport Version: 1.1\n")
    (layout / "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a").write_bytes(b"{}")
    digest = sha256_of(disk)
    shutil.copyfile(disk, layout / digest.removeprefix("sha256:"))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.unknown.artifact.v1",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
            "data": "e30=",
        },
        "layers": [
            {
                "mediaType": DISK_MEDIA_TYPE,
                "digest": digest,
                "size": disk.stat().st_size,
                "annotations": {
                    "eu.egi.cloud.tag": "2026-11-29-4d7122d6",
                    "org.openstack.glance.os_admin_user": "ubuntu",
                    "org.openstack.glance.os_distro": "ubuntu",
                    "org.openstack.glance.os_version": "22.04",
                    "org.opencontainers.image.title": "ubuntu.qcow2",
                },
            }
        ],
        "annotations": {"org.opencontainers.image.created": "2026-11-29T12:00:00Z"},
    }
    raw = json.dumps(manifest, indent=2).encode()
    (layout / "manifest.json").write_bytes(raw)
    return raw


def test_a_file_in_the_way_is_a_conflict_unless_overwriting_is_asked_for(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "twice.raw", size=64 * 1024)
    reference = registry.reference("slipway/twice:1")
    push_disk_image(disk, reference, annotations=ANNOTATIONS, disk_format="raw")
    target = tmp_path / "out"
    pull_disk_image(reference, target)
    (target / "twice.raw").write_bytes(b"local edits")

    with pytest.raises(Conflict, match="exists already"):
        pull_disk_image(reference, target)
    assert (target / "twice.raw").read_bytes() == b"local edits"

    pull_disk_image(reference, target, overwrite=True)
    assert (target / "twice.raw").read_bytes() == disk.read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["twice.raw"]


def test_a_target_that_cannot_be_written_is_named_and_nothing_is_left(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "blocked.raw", size=64 * 1024)
    reference = registry.reference("slipway/blocked:1")
    push_disk_image(disk, reference, annotations=ANNOTATIONS, disk_format="raw")
    target = tmp_path / "out"
    (target / "blocked.raw").mkdir(parents=True)

    with pytest.raises(InputError, match=r"blocked\.raw: cannot be written"):
        pull_disk_image(reference, target, overwrite=True)
    assert [p.name for p in target.iterdir()] == ["blocked.raw"]
    assert (target / "blocked.raw").is_dir()
