"""``slipway imagelist verify``: exit 0 accepted, 1 rejected with the reason,
2 for arguments it cannot use; JSON for scripts."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from slipway.adapters.imagelists import sign_image_list
from tests.endorser_ca import ENDORSER_DN, EndorsingCA, a_list

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imagelists"


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture
def verify(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Done]:
    from slipway.entrypoints.cli.app import main

    def run(*args: str) -> Done:
        monkeypatch.setattr(sys, "argv", ["slipway", "imagelist", "verify", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        code = exited.value.code
        return Done(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    ca = EndorsingCA()
    credentials = ca.issue()
    message = tmp_path / "image.list"
    message.write_bytes(sign_image_list(a_list(credentials), credentials))
    return message, ca.write_dir(tmp_path / "ca")


def test_an_accepted_list_exits_0_and_lists_its_images(
    verify: Callable[..., Done], signed: tuple[Path, Path]
) -> None:
    message, ca_dir = signed
    done = verify(str(message), "--ca-dir", str(ca_dir), "--endorser-dn", ENDORSER_DN, "-o", "json")
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert data["accepted"] is True
    assert data["signer"] == ENDORSER_DN
    assert [i["title"] for i in data["images"]] == ["Debian 12 minimal"]
    table = verify(str(message), "--ca-dir", str(ca_dir), "--endorser-dn", ENDORSER_DN)
    assert table.code == 0 and "accepted" in table.out and "Debian 12 minimal" in table.out


def test_an_rfc_4514_endorser_dn_means_the_same(
    verify: Callable[..., Done], signed: tuple[Path, Path]
) -> None:
    message, ca_dir = signed
    rfc4514 = "CN=vo.example.org endorser,O=Robots,DC=slipway,DC=org"
    assert verify(str(message), "--ca-dir", str(ca_dir), "--endorser-dn", rfc4514).code == 0


def test_a_rejected_list_exits_1_with_its_reason(
    verify: Callable[..., Done], tmp_path: Path
) -> None:
    shutil.copy(FIXTURES / "cloudkeeper_test_ca_9da13359.0.pem", tmp_path / "9da13359.0")
    args = [
        str(FIXTURES / "cloudkeeper_imagelist_invalid.signed.smime"),
        "--ca-dir",
        str(tmp_path),
        "--endorser-dn",
        "/DC=XXX/DC=YYY/C=ZZZ/O=Hosts/O=AA.net/CN=some.unknown.source",
    ]
    done = verify(*args)
    assert done.code == 1
    warning, headline = done.err.splitlines()[:2]
    assert warning.startswith("warning: no --endorser-ca: any CA of --ca-dir")
    assert headline.startswith("rejected (digest-mismatch): ")
    assert any(line.startswith("also (untrusted-chain)") for line in done.err.splitlines())
    data = json.loads(verify(*args, "--output", "json").out)
    assert (data["accepted"], data["reason"]) == (False, "digest-mismatch")
    assert {p["reason"] for p in data["problems"]} >= {"digest-mismatch", "untrusted-chain"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "missing.list"}, "no such file"),
        ({"--ca-dir": "no-such-dir"}, "not a directory"),
        ({"--endorser-dn": "not a dn"}, "--endorser-dn"),
        ({"--endorser-ca": "/"}, "--endorser-ca"),
        ({"source": "ftp://example.org/image.list"}, "http"),
    ],
)
def test_unusable_arguments_exit_2(
    verify: Callable[..., Done], signed: tuple[Path, Path], change: dict[str, str], message: str
) -> None:
    list_file, ca_dir = signed
    options = {"--ca-dir": str(ca_dir), "--endorser-dn": ENDORSER_DN}
    source = change.pop("source", str(list_file))
    options.update(change)
    done = verify(source, *[part for pair in options.items() for part in pair])
    assert done.code == 2
    assert message in done.err


def test_a_ca_dir_without_hashed_names_is_unusable(
    verify: Callable[..., Done], signed: tuple[Path, Path], tmp_path: Path
) -> None:
    message, _ = signed
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "ca.pem").write_text("not hashed")
    done = verify(str(message), "--ca-dir", str(tmp_path / "empty"), "--endorser-dn", ENDORSER_DN)
    assert done.code == 2
    assert "hashed name" in done.err
