"""``slipway image sanitise``: removes what check marks removable, never touching the input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.errors import InputError
from slipway.imagekit.check import check_image
from slipway.imagekit.findings import RULES
from slipway.imagekit.sanitise import sanitise_image
from tests import image_plants as ip

_missing = ip.missing_tools()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"{_missing} is not available")

REMOVABLE_PLANTS = (
    "ssh-host-keys",
    "shell-history",
    "authorized-keys",
    "machine-id",
    "cloud-init-state",
    "logs",
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dirty(clean_raw: Path, folder: Path) -> Path:
    raw = ip.copy(clean_raw, folder / "dirty.raw")
    for name in REMOVABLE_PLANTS:
        ip.PLANTS[name][1](raw)
    ip.put_file(raw, "/etc/ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAA host\n", mode=0o644)
    ip.put_file(raw, "/var/log/apt/history.log.1.gz", b"\x1f\x8b old", mode=0o640)
    return ip.convert(raw, folder / "dirty.qcow2", "qcow2", "-c")


@pytest.fixture(scope="module")
def tiny_clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return ip.make_raw(ip.make_tree(folder / "tree"), folder / "clean.raw")


@pytest.fixture
def dirty_tiny(tiny_clean: Path, tmp_path: Path) -> Path:
    return _dirty(tiny_clean, tmp_path)


def _removable(ids: frozenset[str]) -> set[str]:
    return {i for i in ids if RULES[i].removable}


def test_sanitise_writes_a_copy_that_checks_clean_and_leaves_the_input(
    dirty_tiny: Path, tmp_path: Path
) -> None:
    before = check_image(dirty_tiny)
    assert _removable(before.ids) == {ip.PLANTS[n][0] for n in REMOVABLE_PLANTS}
    digest = _sha(dirty_tiny)
    result = sanitise_image(dirty_tiny, tmp_path / "out" / "clean.qcow2")
    assert _sha(dirty_tiny) == digest
    after = check_image(tmp_path / "out" / "clean.qcow2")
    assert _removable(after.ids) == set()
    assert result.remaining == ()
    # nothing new appears: the freed blocks were zero-filled, the filesystem is consistent
    assert after.ids <= before.ids
    assert {c.path for c in result.changes} >= {
        "/etc/ssh/ssh_host_ed25519_key",
        "/etc/ssh/ssh_host_ed25519_key.pub",
        "/root/.bash_history",
        "/root/.ssh/authorized_keys",
        "/etc/machine-id",
        "/var/lib/cloud/instance/obj.pkl",
        "/var/log/syslog",
        "/var/log/apt/history.log.1.gz",
    }
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_emptied_files_keep_their_mode_and_owner(dirty_tiny: Path, tmp_path: Path) -> None:
    out = sanitise_image(dirty_tiny, tmp_path / "clean.qcow2").output
    raw = ip.convert(Path(out), tmp_path / "clean.raw", "raw")
    stat = ip.run("debugfs", "-R", "stat /etc/machine-id", f"{raw}?offset={ip.OFFSET}")
    assert "Mode:  0444" in stat
    assert "Size: 0" in stat
    assert ip.exists(raw, "/var/log/syslog")
    assert ip.exists(raw, "/var/lib/cloud")
    assert not ip.exists(raw, "/var/lib/cloud/instance")


def test_in_place_replaces_the_input(dirty_tiny: Path) -> None:
    result = sanitise_image(dirty_tiny, None, in_place=True)
    assert result.output == str(dirty_tiny)
    assert _removable(check_image(dirty_tiny).ids) == set()


def test_a_raw_image_stays_sparse(tiny_clean: Path, tmp_path: Path) -> None:
    raw = ip.copy(tiny_clean, tmp_path / "dirty.raw")
    ip.PLANTS["logs"][1](raw)
    out = tmp_path / "clean.raw"
    sanitise_image(raw, out)
    assert out.stat().st_blocks * 512 < out.stat().st_size / 4
    assert _removable(check_image(out).ids) == set()


def test_sanitising_the_built_image_changes_nothing_it_should_not(
    built_image: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again.qcow2"
    result = sanitise_image(built_image, out)
    assert result.changes == ()
    assert check_image(out).ids == check_image(built_image).ids


def test_output_equal_to_input_is_refused_without_in_place(dirty_tiny: Path) -> None:
    with pytest.raises(InputError, match="is the input"):
        sanitise_image(dirty_tiny, dirty_tiny)


@pytest.mark.parametrize("container", ["ova", "vmdk"])
def test_an_ova_or_stream_vmdk_is_sanitised_into_the_same_container(
    dirty_tiny: Path, tmp_path: Path, container: str
) -> None:
    vmdk = ip.convert(dirty_tiny, tmp_path / "d.vmdk", "vmdk", "-o", "subformat=streamOptimized")
    image = ip.make_ova(vmdk, tmp_path / "d.ova") if container == "ova" else vmdk
    out = tmp_path / f"clean.{container}"
    result = sanitise_image(image, out)
    assert result.remaining == ()
    after = check_image(out)
    assert after.format == "vmdk"
    assert _removable(after.ids) == set()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from slipway.entrypoints.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


def test_cli_needs_an_output_or_in_place(dirty_tiny: Path, tmp_path: Path) -> None:
    assert _cli("image", "sanitise", str(dirty_tiny)).returncode == 2
    proc = _cli(
        "image", "sanitise", str(dirty_tiny), "-o", str(tmp_path / "c.qcow2"), "--report", "json"
    )
    assert proc.returncode == 0, proc.stderr
    assert '"remaining": []' in proc.stdout
