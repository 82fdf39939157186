"""The findings registry, the report, and partition tables read from bytes."""

from __future__ import annotations

import io
import re
import struct
import uuid
from pathlib import Path

import pytest

from slipway.imagekit.findings import RULES, CheckReport, Finding, Severity
from slipway.imagekit.partitions import Content, probe, read_partitions

REPO = Path(__file__).resolve().parents[3]


def test_rule_ids_are_area_dot_name_in_lower_case() -> None:
    for rule_id in RULES:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+", rule_id), rule_id


def test_every_rule_says_what_and_how_to_fix() -> None:
    for r in RULES.values():
        assert r.what.endswith(".") and r.fix, r.id


def test_a_finding_with_an_unknown_id_is_refused_where_it_is_made() -> None:
    with pytest.raises(KeyError):
        Finding("no.such-rule", "x")


def _report(*ids: str) -> CheckReport:
    return CheckReport("x.qcow2", "qcow2", 1, 1, (), tuple(Finding(i, "d") for i in ids))


def test_only_an_error_finding_makes_the_report_fail() -> None:
    assert not _report("logs.present", "cloudinit.datasources").has_errors
    assert _report("logs.present", "ssh.host-keys").has_errors


def test_report_lists_errors_first_with_fix_and_evidence() -> None:
    data = _report("cloudinit.datasources", "firewall.none", "ssh.host-keys").to_dict()
    assert [f["severity"] for f in data["findings"]] == ["error", "warning", "info"]
    assert data["findings"][0] == {
        "id": "ssh.host-keys",
        "severity": "error",
        "detail": "d",
        "evidence": {},
        "fix": RULES["ssh.host-keys"].fix,
        "removable": True,
    }


def test_docs_table_is_generated_from_the_registry() -> None:
    from slipway.imagekit.findings_table import render_table

    text = (REPO / "docs" / "image-check.md").read_text()
    assert render_table() in text, (
        "run: python -m slipway.imagekit.findings_table docs/image-check.md"
    )


def test_severity_values_are_the_documented_words() -> None:
    assert [str(s) for s in Severity] == ["error", "warning", "info"]


# -- partition tables ---------------------------------------------------------------------

SECTOR = 512


def _mbr(entries: list[tuple[int, int, int]], size: int = 64 * 2**20) -> io.BytesIO:
    disk = bytearray(size)
    for i, (ptype, lba, count) in enumerate(entries):
        struct.pack_into("<B3xB3xII", disk, 446 + 16 * i, 0, ptype, lba, count)
    disk[510:512] = b"\x55\xaa"
    return io.BytesIO(disk)


def test_mbr_partitions_are_read_with_their_kind() -> None:
    fh = _mbr([(0x83, 2048, 4096), (0x82, 6144, 2048), (0x8E, 8192, 2048)])
    table, parts = read_partitions(fh, 64 * 2**20)
    assert table == "mbr"
    assert [(p.number, p.offset, p.size, p.kind) for p in parts] == [
        (1, 2048 * SECTOR, 4096 * SECTOR, None),
        (2, 6144 * SECTOR, 2048 * SECTOR, "swap"),
        (3, 8192 * SECTOR, 2048 * SECTOR, "lvm"),
    ]


def test_logical_partitions_inside_an_extended_one_are_numbered_from_5() -> None:
    fh = _mbr([(0x83, 2048, 2048), (0x05, 4096, 8192)])
    disk = fh.getbuffer()
    ebr = 4096 * SECTOR
    struct.pack_into("<B3xB3xII", disk, ebr + 446, 0, 0x82, 2048, 2048)
    disk[ebr + 510 : ebr + 512] = b"\x55\xaa"
    _, parts = read_partitions(fh, 64 * 2**20)
    assert [(p.number, p.kind) for p in parts] == [(1, None), (5, "swap")]
    del disk


def test_gpt_partitions_are_read_from_the_entry_array() -> None:
    fh = _mbr([(0xEE, 1, 2**17 - 1)])
    disk = fh.getbuffer()
    header = bytearray(92)
    header[:8] = b"EFI PART"
    struct.pack_into("<QII", header, 72, 2, 128, 128)
    disk[SECTOR : SECTOR + 92] = header
    esp = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").bytes_le
    linux = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4").bytes_le
    for index, (guid, first, last) in enumerate([(esp, 2048, 4095), (linux, 4096, 100000)]):
        entry = 2 * SECTOR + index * 128
        disk[entry : entry + 16] = guid
        struct.pack_into("<QQ", disk, entry + 32, first, last)
    table, parts = read_partitions(fh, 64 * 2**20)
    assert table == "gpt"
    assert [(p.number, p.kind, p.offset) for p in parts] == [
        (1, "esp", 2048 * SECTOR),
        (2, None, 4096 * SECTOR),
    ]
    del disk


def test_no_boot_signature_means_no_table() -> None:
    assert read_partitions(io.BytesIO(bytes(4096)), 4096) == ("none", [])


@pytest.mark.parametrize(
    ("offset", "magic", "content"),
    [
        (0, b"LUKS\xba\xbe", Content.LUKS),
        (1024 + 56, b"\x53\xef", Content.EXT),
        (0, b"XFSB", Content.XFS),
        (0x10040, b"_BHRfS_M", Content.BTRFS),
        (4086, b"SWAPSPACE2", Content.SWAP),
        (512, b"LABELONE\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0LVM2 001", Content.LVM),
        (5000, b"random", Content.UNKNOWN),
    ],
)
def test_probe_names_what_a_partition_holds(offset: int, magic: bytes, content: Content) -> None:
    data = bytearray(128 * 1024)
    data[offset : offset + len(magic)] = magic
    assert probe(io.BytesIO(data), 0, len(data)) is content


def test_probe_of_an_all_zero_partition_says_zero() -> None:
    assert probe(io.BytesIO(bytes(128 * 1024)), 0, 128 * 1024) is Content.ZERO
