"""The small parts of the OCI client: EGI's annotations from plain fields,
which titles may become file names, registry challenges and tokens, hidden
passwords, and the pace a blob transfer must keep."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slipway.adapters.oci import RegistryCredentials, Timeouts, disk_image_annotations
from slipway.adapters.oci._auth import parse_challenge, usable_token
from slipway.adapters.oci._streams import Pace, TooSlow, read_within
from slipway.adapters.oci.annotations import ArtifactAnnotations, disk_image_fields
from slipway.adapters.oci.files import is_plain_file_name, name_for_digest
from slipway.errors import InputError


def test_egi_annotations_are_built_from_plain_fields() -> None:
    built = disk_image_annotations(
        os_distro="ubuntu",
        os_version="22.04",
        architecture="x86_64",
        tag="2025-09-04-4d7122d6",
        admin_user="ubuntu",
        description="EGI Ubuntu 22.04 image",
        source="https://example.org/templates",
        revision="4d7122d6",
    )
    assert built.layer == {
        "org.openstack.glance.os_distro": "ubuntu",
        "org.openstack.glance.os_version": "22.04",
        "org.openstack.glance.os_type": "linux",
        "org.openstack.glance.architecture": "x86_64",
        "eu.egi.cloud.tag": "2025-09-04-4d7122d6",
        "org.openstack.glance.os_admin_user": "ubuntu",
        "eu.egi.cloud.description": "EGI Ubuntu 22.04 image",
    }
    assert built.manifest == {
        "org.opencontainers.image.source": "https://example.org/templates",
        "org.opencontainers.image.revision": "4d7122d6",
    }
    fields = disk_image_fields(built.layer, built.manifest)
    assert (fields.os_distro, fields.admin_user, fields.revision) == (
        "ubuntu",
        "ubuntu",
        "4d7122d6",
    )
    assert fields.title is None


@pytest.mark.parametrize("empty", ["os_distro", "os_version", "architecture", "tag"])
def test_an_empty_required_field_is_refused_by_name(empty: str) -> None:
    fields = {"os_distro": "d", "os_version": "1", "architecture": "x86_64", "tag": "t"}
    with pytest.raises(InputError, match=empty):
        disk_image_annotations(**{**fields, empty: "  "})


def test_annotations_are_text_and_cannot_be_changed_afterwards() -> None:
    with pytest.raises(InputError, match="text"):
        ArtifactAnnotations(layer={"k": 1})  # type: ignore[dict-item]
    source = {"k": "v"}
    annotations = ArtifactAnnotations(layer=source)
    source["k"] = "changed"
    assert annotations.layer == {"k": "v"}
    with pytest.raises(TypeError):
        annotations.layer["k"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    "name", ["disk.qcow2", "Ubuntu.22.04-2025-09-04.qcow2", "disque été.img", "a" * 255]
)
def test_a_plain_name_may_be_a_file_name(name: str) -> None:
    assert is_plain_file_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        ".hidden",
        "../x",
        "a/b",
        "/abs",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "a\x9bb",
        "a\u202eb",
        "a\u2028b",
        "\udc80",
        "é" * 128,
    ],
)
def test_anything_else_may_not(name: str) -> None:
    assert not is_plain_file_name(name)


def test_an_untitled_layer_is_named_by_its_digest() -> None:
    assert name_for_digest("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32


def test_harbors_bearer_challenge_is_read() -> None:
    header = (
        'Bearer realm="https://registry.egi.eu/service/token",service="harbor-registry",'
        'scope="repository:egi_vm_images/ubuntu:pull"'
    )
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://registry.egi.eu/service/token",
        "service": "harbor-registry",
        "scope": "repository:egi_vm_images/ubuntu:pull",
    }


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("basic", "basic", {}),
        ('Bearer realm = "a\\"b" , service=svc', "bearer", {"realm": 'a"b', "service": "svc"}),
        ('Bearer realm="a", Basic realm="b"', "bearer", {"realm": "a"}),
    ],
)
def test_other_challenges_are_read_to_their_first(
    header: str, scheme: str, params: dict[str, str]
) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None
    assert (challenge.scheme, dict(challenge.params)) == (scheme, params)


def test_no_challenge_is_none() -> None:
    assert parse_challenge("") is None
    assert parse_challenge("   ") is None


@pytest.mark.parametrize(
    ("document", "token"),
    [
        ({"token": "eyJ.a-b_c.d"}, "eyJ.a-b_c.d"),
        ({"access_token": "abc="}, "abc="),
        ({"token": "bad\r\nInjected: header"}, None),
        ({"token": ""}, None),
        ({"token": 5}, None),
        (["token"], None),
        ({"token": "x" * (64 * 1024 + 1)}, None),
    ],
)
def test_only_a_token_a_header_can_carry_is_used(document: object, token: str | None) -> None:
    assert usable_token(document) == token


def test_a_password_never_shows_in_a_repr() -> None:
    credentials = RegistryCredentials("robot$vo", "hunter2-secret")
    assert "hunter2" not in repr(credentials)
    assert "robot$vo" in repr(credentials)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_transfer_keeping_its_pace_goes_on_and_one_falling_behind_stops() -> None:
    clock = Clock()
    pace = Pace(Timeouts(min_rate=100, rate_window=10), clock=clock)
    for _ in range(30):  # 1000 bytes every 10 s, window after window
        clock.now += 5
        pace.moved(500)
    clock.now += 5
    pace.moved(100)
    clock.now += 5.1
    with pytest.raises(TooSlow, match="under 100 bytes/s"):
        pace.moved(1)


def test_a_small_body_is_bounded_in_size_and_time() -> None:
    assert read_within(iter([b"ab", b"cd", b"ef"]), limit=3, seconds=5) == b"abcd"
    assert read_within(iter([b"ab"]), limit=3, seconds=5) == b"ab"

    def late() -> Iterator[bytes]:
        yield b"a"
        yield b"b"

    with pytest.raises(TooSlow):
        read_within(late(), limit=10, seconds=-1)
