"""``slipway image check`` on real images: each planted problem raises exactly its
finding, on a tiny image and on the built example image, in every format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.errors import ImageFileError
from slipway.imagekit.check import check_image
from slipway.imagekit.findings import CheckReport, Severity
from tests import image_plants as ip

_missing = ip.missing_tools()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"{_missing} is not available")


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return ip.make_raw(ip.make_tree(folder / "tree"), folder / "clean.raw")


@pytest.fixture(scope="module")
def built_raw(built_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ip.convert(built_image, tmp_path_factory.mktemp("built") / "clean.raw", "raw")


def _base(request: pytest.FixtureRequest, name: str) -> Path:
    return Path(request.getfixturevalue(f"{name}_raw"))


_CLEAN: dict[Path, CheckReport] = {}


def _clean_report(image: Path) -> CheckReport:
    """The report of a clean base image, checked once per test run."""
    if image not in _CLEAN:
        _CLEAN[image] = check_image(image)
    return _CLEAN[image]


def _ids(report: CheckReport, at_least: Severity = Severity.INFO) -> set[str]:
    order = [Severity.ERROR, Severity.WARNING, Severity.INFO]
    return {f.rule_id for f in report.findings if order.index(f.severity) <= order.index(at_least)}


def test_the_tiny_clean_image_has_no_finding_but_its_raw_format(tiny_raw: Path) -> None:
    report = check_image(tiny_raw)
    assert _ids(report, Severity.WARNING) == {"format.raw"}
    assert not report.has_errors


def test_the_built_example_image_checks_clean(built_image: Path) -> None:
    report = check_image(built_image)
    assert _ids(report, Severity.WARNING) == set(), report.to_dict()["findings"]
    assert report.format == "qcow2"
    assert [p["role"] for p in report.partitions] == ["root"]


@pytest.mark.parametrize("base", ["tiny", "built"])
@pytest.mark.parametrize("plant", sorted(ip.PLANTS))
def test_a_planted_problem_raises_exactly_its_finding(
    request: pytest.FixtureRequest, base: str, plant: str, tmp_path: Path
) -> None:
    clean = _base(request, base)
    expected, make = ip.PLANTS[plant]
    image = ip.copy(clean, tmp_path / "planted.raw")
    make(image)
    before, after = _clean_report(clean), check_image(image)
    assert expected not in before.ids
    assert after.ids - before.ids == {expected}, after.to_dict()["findings"]
    assert before.ids <= after.ids
    assert after.has_errors == (after.by_id(expected)[0].severity is Severity.ERROR)


def test_findings_carry_evidence_and_a_fix(tiny_raw: Path, tmp_path: Path) -> None:
    image = ip.copy(tiny_raw, tmp_path / "keys.raw")
    ip.PLANTS["ssh-host-keys"][1](image)
    (finding,) = check_image(image).by_id("ssh.host-keys")
    assert finding.evidence["path"] == "/etc/ssh/ssh_host_ed25519_key"
    assert finding.evidence["partition"] == 1
    assert finding.evidence["size"] > 0
    assert "sanitise" in finding.rule.fix


@pytest.fixture(scope="module")
def tiny_formats(tiny_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny image with a shell history, as raw, qcow2 (plain and zlib), VMDK, OVA."""
    folder = tmp_path_factory.mktemp("formats")
    raw = ip.copy(tiny_raw, folder / "disk.raw")
    ip.PLANTS["shell-history"][1](raw)
    vmdk = ip.convert(raw, folder / "disk.vmdk", "vmdk", "-o", "subformat=streamOptimized")
    return {
        "raw": raw,
        "qcow2": ip.convert(raw, folder / "plain.qcow2", "qcow2"),
        "qcow2-zlib": ip.convert(raw, folder / "zlib.qcow2", "qcow2", "-c"),
        "qcow2-zstd": ip.convert(
            raw, folder / "zstd.qcow2", "qcow2", "-c", "-o", "compression_type=zstd"
        ),
        "vmdk-sparse": ip.convert(raw, folder / "sparse.vmdk", "vmdk"),
        "vmdk-stream": vmdk,
        "ova": ip.make_ova(vmdk, folder / "disk.ova"),
    }


@pytest.mark.parametrize(
    ("fmt", "format_finding"),
    [
        ("raw", {"format.raw"}),
        ("qcow2", {"format.not-compressed"}),
        ("qcow2-zlib", set()),
        ("qcow2-zstd", set()),
        ("vmdk-sparse", {"format.not-compressed"}),
        ("vmdk-stream", set()),
        ("ova", set()),
    ],
)
def test_every_format_shows_the_same_content(
    tiny_formats: dict[str, Path], fmt: str, format_finding: set[str]
) -> None:
    report = check_image(tiny_formats[fmt])
    assert _ids(report, Severity.WARNING) == {"secrets.shell-history", *format_finding}


def test_an_ova_of_the_built_image_has_the_same_findings_as_its_qcow2(
    built_image: Path, built_raw: Path, tmp_path: Path
) -> None:
    vmdk = ip.convert(built_raw, tmp_path / "disk.vmdk", "vmdk", "-o", "subformat=streamOptimized")
    ova = check_image(ip.make_ova(vmdk, tmp_path / "disk.ova"))
    assert ova.ids == check_image(built_image).ids
    assert ova.format == "vmdk"


def test_the_raw_built_image_adds_only_the_raw_format_finding(
    built_image: Path, built_raw: Path
) -> None:
    assert check_image(built_raw).ids - check_image(built_image).ids == {"format.raw"}


# -- bad inputs ---------------------------------------------------------------------------


def _only_error(report: CheckReport, rule_id: str) -> None:
    assert report.has_errors
    assert rule_id in report.ids, report.to_dict()["findings"]


def test_random_bytes_are_an_unreadable_image(tmp_path: Path) -> None:
    image = tmp_path / "random.img"
    image.write_bytes(os.urandom(2 * ip.MIB))
    _only_error(check_image(image), "image.unreadable")


def test_an_empty_file_is_an_unreadable_image(tmp_path: Path) -> None:
    image = tmp_path / "empty.qcow2"
    image.touch()
    _only_error(check_image(image), "image.unreadable")


def test_a_truncated_qcow2_is_reported_not_raised(
    tiny_formats: dict[str, Path], tmp_path: Path
) -> None:
    data = tiny_formats["qcow2-zlib"].read_bytes()
    image = tmp_path / "truncated.qcow2"
    image.write_bytes(data[: len(data) // 2])
    report = check_image(image)
    assert report.has_errors
    assert report.ids & {"image.unreadable", "image.corrupt", "image.filesystem-errors"}


def test_a_truncated_ova_is_an_unreadable_image(
    tiny_formats: dict[str, Path], tmp_path: Path
) -> None:
    data = tiny_formats["ova"].read_bytes()
    image = tmp_path / "truncated.ova"
    image.write_bytes(data[: len(data) - 4096])
    _only_error(check_image(image), "image.unreadable")


def test_an_image_with_a_backing_file_is_refused(
    tiny_formats: dict[str, Path], tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay.qcow2"
    ip.run(
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        tiny_formats["qcow2"],
        overlay,
    )
    _only_error(check_image(overlay), "image.unreadable")


@pytest.mark.skipif(shutil.which("mkfs.xfs") is None, reason="mkfs.xfs (xfsprogs) is not installed")
def test_an_xfs_root_is_reported_as_unsupported(tmp_path: Path) -> None:
    image = tmp_path / "xfs.raw"
    with image.open("wb") as fh:
        fh.truncate(320 * ip.MIB)
    ip.run("mkfs.xfs", "-q", image)
    _only_error(check_image(image), "image.filesystem-unsupported")


def test_a_luks_disk_is_reported_as_encrypted(tmp_path: Path) -> None:
    image = tmp_path / "luks.raw"
    with image.open("wb") as fh:
        fh.truncate(16 * ip.MIB)
    if shutil.which("cryptsetup"):
        ip.run(
            "cryptsetup",
            "luksFormat",
            "-q",
            "--type",
            "luks2",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            image,
            "-",
            stdin=b"secret",
        )
    else:  # the header magic is all the check looks at
        ip.write_at(image, 0, b"LUKS\xba\xbe\x00\x02")
    _only_error(check_image(image), "image.encrypted")


def test_a_missing_path_raises_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match="no such file"):
        check_image(tmp_path / "nope.qcow2")
    with pytest.raises(ImageFileError, match="not a regular file"):
        check_image(tmp_path)


def test_nothing_is_left_mounted_or_running(tiny_formats: dict[str, Path]) -> None:
    for fmt in ("qcow2-zlib", "ova"):
        check_image(tiny_formats[fmt])
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "slipway-disk-" not in mounts
    ps = subprocess.run(["ps", "-eo", "stat,args"], capture_output=True, text=True).stdout
    assert not [
        line
        for line in ps.splitlines()
        if "qemu-storage-daemon" in line and "slipway-disk-" in line
    ]


def test_the_export_is_cleaned_up_when_the_caller_fails(tiny_formats: dict[str, Path]) -> None:
    from slipway.imagekit.diskaccess import expose, locate

    with pytest.raises(RuntimeError), expose(locate(tiny_formats["qcow2"]), "qcow2") as raw:
        workdir = raw.parent
        raise RuntimeError("boom")
    assert not workdir.exists()
    assert str(raw) not in Path("/proc/self/mountinfo").read_text()


# -- the command --------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from slipway.entrypoints.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


def test_cli_exit_status_is_0_when_clean_and_1_on_an_error(
    tiny_formats: dict[str, Path], tiny_raw: Path, tmp_path: Path
) -> None:
    clean = ip.convert(tiny_raw, tmp_path / "clean.qcow2", "qcow2", "-c")
    assert _cli("image", "check", str(clean)).returncode == 0
    dirty = _cli("image", "check", str(tiny_formats["qcow2-zlib"]))
    assert dirty.returncode == 1
    assert "secrets.shell-history" in dirty.stdout


def test_cli_json_output_lists_the_findings(tiny_formats: dict[str, Path]) -> None:
    proc = _cli("image", "check", "--output", "json", str(tiny_formats["ova"]))
    data = json.loads(proc.stdout)
    assert data["has_errors"] is True
    assert "secrets.shell-history" in {f["id"] for f in data["findings"]}


def test_cli_exit_status_is_2_for_a_missing_file(tmp_path: Path) -> None:
    proc = _cli("image", "check", str(tmp_path / "missing.qcow2"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_crafted_file_names_cannot_make_debugfs_write_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were a name split into two debugfs commands, "dump secret pwned" would
    # write ./pwned on this machine.
    tree = ip.make_tree(tmp_path / "tree")
    (tree / "secret").write_text("from the image\n")
    evil_dir = tree / "root" / 'x\ndump secret pwned\nls "'
    evil_dir.mkdir()
    (evil_dir / ".bash_history").write_text("x\n")
    (tree / "root" / 'y" pwned "').write_text("-----BEGIN PRIVATE KEY-----\n")
    image = ip.make_raw(tree, tmp_path / "evil.raw")
    monkeypatch.chdir(tmp_path)
    report = check_image(image)
    assert not (tmp_path / "pwned").exists()
    assert report.format == "raw"


def test_check_never_changes_the_image(tiny_formats: dict[str, Path]) -> None:
    import hashlib

    for fmt in ("qcow2-zlib", "vmdk-stream", "ova", "raw"):
        image = tiny_formats[fmt]
        before = (hashlib.sha256(image.read_bytes()).hexdigest(), image.stat().st_mtime_ns)
        check_image(image)
        after = (hashlib.sha256(image.read_bytes()).hexdigest(), image.stat().st_mtime_ns)
        assert after == before, fmt


def test_a_gpt_disk_with_an_efi_partition_is_one_root_partition(tmp_path: Path) -> None:
    tree = ip.make_tree(tmp_path / "tree")
    raw = tmp_path / "gpt.raw"
    with raw.open("wb") as fh:
        fh.truncate(96 * ip.MIB)
    esp, linux = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    table = f"label: gpt\nstart=2048,size=32768,type={esp}\nstart=34816,type={linux}\n"
    ip.run("sfdisk", "-q", raw, stdin=table.encode())
    offset = 34816 * 512
    blocks = (96 * ip.MIB - offset - 34 * 512) // 4096
    ip.run(
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-b",
        "4096",
        "-E",
        f"offset={offset}",
        "-d",
        tree,
        raw,
        str(blocks),
    )
    report = check_image(raw)
    assert _ids(report, Severity.WARNING) == {"format.raw"}
    assert [(p["kind"], p["role"]) for p in report.partitions] == [("esp", None), (None, "root")]


def test_a_filesystem_on_the_whole_disk_is_checked(tmp_path: Path) -> None:
    tree = ip.make_tree(tmp_path / "tree")
    (tree / "root" / ".bash_history").write_text("ls\n")
    raw = tmp_path / "whole.raw"
    with raw.open("wb") as fh:
        fh.truncate(64 * ip.MIB)
    ip.run("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, raw)
    report = check_image(raw)
    assert _ids(report, Severity.WARNING) == {"format.raw", "secrets.shell-history"}
    assert report.partitions[0]["number"] == 0


def test_without_fuse_a_converted_copy_gives_the_same_findings(
    tiny_formats: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slipway.imagekit import diskaccess

    with_fuse = check_image(tiny_formats["ova"]).ids
    monkeypatch.setattr(diskaccess, "FUSE_DEVICE", tmp_path / "no-fuse")
    assert check_image(tiny_formats["ova"]).ids == with_fuse
    assert check_image(tiny_formats["qcow2-zlib"]).ids == with_fuse
