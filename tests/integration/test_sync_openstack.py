"""Provider sync to a real Glance (the loopback OpenStack lab; skipped
without it): each list version ends up in Glance, uploaded hidden until its
hash matches, shared with and accepted for the VO's project; a replaced image
is hidden, then deleted; what an upload killed half-way left is cleaned up,
never duplicated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slipway.connectors.registry import CloudDriver
from slipway.domain.sync import SYNC_KEY, ImageState, SyncOutcome, fields_hash, sync_key
from slipway.services.sync import NewSubscription
from tests.integration.test_openstack_runs import _sdk
from tests.sync_world import SyncWorld, qcow2_bytes

VO = "vo.example.org"


@pytest.fixture
def lab(openstack_clouds: Path) -> Iterator[tuple[Any, Any, Any]]:
    """The connector (as the provider's admin), and the SDK as admin and demo."""
    admin, demo = _sdk(openstack_clouds, "lab-admin"), _sdk(openstack_clouds, "lab-demo")
    connector = CloudDriver.OPENSTACK.connect(
        "lab", {"credentials": "lab-admin", "clouds_yaml": str(openstack_clouds),
                "region": "RegionOne"},
    )  # fmt: skip
    yield connector, admin, demo
    for hidden in (False, True):
        for image in admin.image.images(owner=admin.current_project_id, is_hidden=hidden):
            if "slipway:subscription" in (image.properties or {}):
                admin.image.delete_image(image, ignore_missing=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    made = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db")
    yield made
    made.close()


def _subscribe(world: SyncWorld, service: Any, demo: Any) -> None:
    service.add(
        NewSubscription(
            name="site", cloud="lab", source=world.list_url, endorser_dn=world.endorser_dn,
            projects=((VO, demo.current_project_id),), grace=timedelta(0),
        )
    )  # fmt: skip


def _ours(admin: Any) -> list[Any]:
    return [
        i
        for hidden in (False, True)
        for i in admin.image.images(owner=admin.current_project_id, is_hidden=hidden)
        if "slipway:subscription" in (i.properties or {})
    ]


def test_each_list_version_reaches_glance_shared_with_the_vos_project(world, tmp_path, lab):
    connector, admin, demo = lab
    alpha = world.image("alpha", qcow2_bytes(tmp_path, "alpha"), os_name="Debian", os_version="12")
    world.publish(alpha)
    service = world.sync_to(connector)
    _subscribe(world, service, demo)

    first = service.run("site")

    assert first.outcome is SyncOutcome.SUCCEEDED, first.steps
    assert [s.detail for s in first.steps if s.step == "upload"] == ["while downloading"]
    (held,) = service.status("site").images
    image = admin.image.get_image(held.native_id)
    assert image.status == "active" and not image.is_hidden
    assert image.hash_value == alpha.sha512  # Glance's own hash of what it stored
    assert image.os_distro == "debian" and image.os_version == "12"
    assert image.properties["appdb_id"] == alpha.identifier
    assert image.properties[SYNC_KEY] == held.key
    assert image.visibility == "shared"
    member = admin.image.get_member(demo.current_project_id, image)
    assert member.status == "accepted"
    assert held.native_id in {i.id for i in demo.image.images()}  # the VO's users see it

    newer = world.image("alpha", qcow2_bytes(tmp_path, "alpha-2"), version="2")
    world.publish(replace(newer, identifier=alpha.identifier))
    second = service.run("site")

    assert second.outcome is SyncOutcome.SUCCEEDED, second.steps
    states = {i.version: i for i in service.status("site").images}
    assert states["2"].state is ImageState.ACTIVE
    assert states["1"].state is ImageState.HIDDEN
    assert admin.image.get_image(held.native_id).is_hidden
    third = service.run("site")  # grace 0, nobody uses it: deleted
    assert "delete" in [s.step for s in third.steps if s.outcome == "ok"]
    assert [i.id for i in _ours(admin)] == [states["2"].native_id]


def test_what_a_killed_upload_left_in_glance_is_removed_not_duplicated(world, tmp_path, lab):
    """A worker killed during the upload leaves a queued, hidden image with
    the mark; the next sync deletes it and uploads once."""
    from openstack.image.v2.image import Image

    connector, admin, demo = lab
    alpha = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    world.publish(alpha)
    service = world.sync_to(connector)
    _subscribe(world, service, demo)
    key = sync_key("site", alpha.identifier, fields_hash(alpha))
    left = Image.new(
        name="half", disk_format="qcow2", container_format="bare", visibility="private",
        is_hidden=True, **{SYNC_KEY: key, "slipway:subscription": "site"},
    ).create(admin.image)  # fmt: skip

    record = service.run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    assert admin.image.find_image(left.id, ignore_missing=True) is None
    (only,) = _ours(admin)
    assert only.properties[SYNC_KEY] == key and only.status == "active"


def test_a_file_that_fails_its_checks_while_it_streams_leaves_nothing_in_glance(
    world, tmp_path, lab
):
    connector, admin, demo = lab
    alpha = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    world.server.files["/files/alpha.qcow2"] = qcow2_bytes(tmp_path, "other")[: alpha.size]
    world.publish(alpha)
    service = world.sync_to(connector)
    _subscribe(world, service, demo)

    record = service.run("site")

    assert record.outcome is SyncOutcome.PARTIAL
    (failed,) = record.failed_images
    assert failed.step == "download" and "SHA-512" in failed.detail
    assert _ours(admin) == []  # the hidden record Glance was streamed into is gone
