"""A push that cannot be right is refused before the registry is asked: the
registry named here listens nowhere, so any request would fail otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.adapters.oci import ArtifactAnnotations, disk_image_annotations, push_disk_image
from slipway.errors import InputError

NOWHERE = "oci://127.0.0.1:9/slipway/never"
ANNOTATIONS = disk_image_annotations(
    os_distro="debian", os_version="12", architecture="x86_64", tag="t"
)


@pytest.fixture
def raw_disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(b"\0" * 4096)
    return path


def refused(path: Path, reference: str = f"{NOWHERE}:1", **options: object) -> str:
    options.setdefault("annotations", ANNOTATIONS)
    with pytest.raises(InputError) as error:
        push_disk_image(path, reference, **options)  # type: ignore[arg-type]
    return error.value.message


def test_a_push_names_a_tag_not_a_digest(raw_disk: Path) -> None:
    message = refused(raw_disk, f"{NOWHERE}@sha256:{'0' * 64}", disk_format="raw")
    assert "a push names a tag" in message


def test_a_file_said_to_be_qcow2_must_be_one(raw_disk: Path) -> None:
    assert "not a qcow2 image" in refused(raw_disk)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert "no such file" in refused(tmp_path / "absent.raw", disk_format="raw")


def test_a_disk_format_glance_does_not_know_is_refused(raw_disk: Path) -> None:
    assert "disk format 'floppy'" in refused(raw_disk, disk_format="floppy")


def test_an_annotation_the_push_sets_may_not_say_otherwise(raw_disk: Path) -> None:
    clash = ArtifactAnnotations(layer={"org.openstack.glance.disk_format": "qcow2"})
    message = refused(raw_disk, disk_format="raw", annotations=clash)
    assert "org.openstack.glance.disk_format is 'qcow2'" in message


def test_a_file_name_that_could_not_be_pulled_back_is_refused(tmp_path: Path) -> None:
    hidden = tmp_path / ".disk.raw"
    hidden.write_bytes(b"\0")
    assert "cannot be an artifact's title" in refused(hidden, disk_format="raw")
