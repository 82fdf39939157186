"""The catalog through the real ``slipway`` command, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO

SLIPWAY = [sys.executable, "-m", "slipway"]


class Cli:
    def __init__(self, data: Path, cwd: Path, user: str = "alice") -> None:
        self.env = {
            **os.environ,
            "SLIPWAY_DATA_DIR": str(data),
            "SLIPWAY_USER": user,
            "SLIPWAY_CONFIG": str(data / "none.toml"),
            "COLUMNS": "200",
        }
        self.env.pop("SLIPWAY_DATABASE_URL", None)
        self.cwd = cwd

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*SLIPWAY, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=120,
            check=False,
        )
        assert done.returncode == code, (done.stdout, done.stderr)
        return done

    def json(self, *args: str, code: int = 0) -> object:
        return json.loads(self(*args, "--output", "json", code=code).stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return Cli(tmp_path / "data", tmp_path)


@pytest.fixture
def imported(cli: Cli) -> Cli:
    cli("import", "examples")
    return cli


def test_validate_passes_on_the_examples_and_warns_about_the_open_group(cli: Cli) -> None:
    done = cli("validate", "examples")
    assert "16 definitions are valid" in done.stdout
    assert "slipway_managed opens every port" in done.stderr


def test_import_is_idempotent(cli: Cli) -> None:
    first = cli.json("import", "examples")
    assert {m["status"] for m in first["modules"]} == {"new"}  # type: ignore[index]
    again = cli.json("import", "examples")
    assert {m["status"] for m in again["modules"]} == {"unchanged"}  # type: ignore[index]


# The tutorial's table: (cpu, ram) → Exoscale, Ultimum.
TUTORIAL = [
    (1, 0.5, "Micro", "Basic"),
    (1, 1, "Tiny", "Basic"),
    (2, 2, "Small", "Standard"),
    (2, 4, "Medium", "Standard Plus"),
    (4, 4, "Large", "Standard Plus"),
    (4, 8, "Large", "Large"),
    (4, 16, "Extra-large", "Large Plus"),
    (8, 8, "Huge", "Large"),
    (8, 32, "Huge", "Extra Large"),
]


def test_sizes_resolve_reproduces_the_tutorial_table(imported: Cli) -> None:
    for cpu, ram, exoscale, ultimum in TUTORIAL:
        data = imported.json(
            "sizes",
            "resolve",
            "--cpu",
            str(cpu),
            "--ram",
            str(ram),
            "--cloud",
            "exoscale-ch-gva",
            "--cloud",
            "exoscale-ch-dk",
            "--cloud",
            "ultimum",
        )
        picks = {row["cloud"]: row["flavor"]["name"] for row in data["clouds"]}  # type: ignore[index]
        assert picks["exoscale-ch-gva"] == picks["exoscale-ch-dk"] == exoscale, (cpu, ram)
        assert picks["ultimum"] == ultimum, (cpu, ram)


def test_sizes_resolve_prints_a_table_for_people(imported: Cli) -> None:
    out = imported("sizes", "resolve", "--cpu", "2", "--ram", "4").stdout
    assert "Medium" in out and "Standard Plus" in out and "t3.medium" in out


def test_no_fit_names_the_closest_flavor_and_exits_1(imported: Cli) -> None:
    out = imported(
        "sizes", "resolve", "--cpu", "16", "--ram", "16", "--cloud", "exoscale-ch-gva", code=1
    ).stdout
    assert "closest is Huge" in out and "lacks 8 CPU" in out


def test_sizes_resolve_for_a_definition_uses_its_instance_types(imported: Cli) -> None:
    data = imported.json("sizes", "resolve", "examples/images/ubuntu-22.04")
    rows = {r["cloud"]: r["flavor"] for r in data["clouds"]}  # type: ignore[index]
    assert rows["exoscale-ch-gva"]["name"] == "Small" and rows["exoscale-ch-gva"]["explicit"]
    assert rows["exoscale-ch-dk"]["name"] == "Tiny"


def test_show_resolved_says_where_each_value_came_from(imported: Cli) -> None:
    data = imported.json("show", "examples/images/ubuntu-22.04-large", "--resolved")
    origin = data["origin"]  # type: ignore[index]
    assert origin["size.ram"] == "examples/images/ubuntu-22.04-large@1"
    assert origin["size.cpu"] == "examples/images/ubuntu-22.04@1"
    assert origin["native.ultimum"] == "examples/images/ubuntu-22.04@1"
    assert data["clouds"]["ultimum"]["login_user"] == "cloud-user"  # type: ignore[index]
    text = imported("show", "examples/images/ubuntu-22.04-large", "--resolved").stdout
    assert "examples/images/ubuntu-22.04@1 → examples/images/ubuntu-22.04-large@1" in text


def test_history_diff_and_pinned_show(imported: Cli, tmp_path: Path) -> None:
    image = tmp_path / "examples" / "images" / "debian-12.yaml"
    image.write_text(image.read_text().replace("ram: 1,", "ram: 2,"))
    imported("import", "examples", "--comment", "more memory")
    history = imported.json("history", "examples/images/debian-12")
    assert [v["version"] for v in history] == [1, 2]  # type: ignore[union-attr]
    assert history[1]["comment"] == "more memory"  # type: ignore[index]
    diff = imported.json("diff", "examples/images/debian-12@1", "examples/images/debian-12@2")
    assert diff["changes"] == [  # type: ignore[index]
        {"path": "size.ram", "action": "changed", "old": 1.0, "new": 2.0}
    ]
    old = imported.json("show", "examples/images/debian-12", "--version", "1")
    assert old["document"]["size"]["ram"] == 1.0  # type: ignore[index]


def test_a_reader_copies_a_shared_image_but_cannot_change_the_original(
    imported: Cli, tmp_path: Path
) -> None:
    imported("share", "examples/images/debian-12", "--public", "view")
    bob = Cli(tmp_path / "data", tmp_path, user="bob")
    copied = bob.json("copy", "examples/images/debian-12", "bob/debian-12")
    assert copied["owner"] == "bob"  # type: ignore[index]
    assert copied["copied_from"] == "examples/images/debian-12@1"  # type: ignore[index]
    image = tmp_path / "examples" / "images" / "debian-12.yaml"
    image.write_text(image.read_text().replace("ram: 1,", "ram: 2,"))
    refused = bob("import", "examples", code=4)
    assert "bob lacks the edit right" in refused.stderr


def test_images_list_filters_by_cloud(imported: Cli) -> None:
    names = [r["name"] for r in imported.json("images", "list", "--cloud", "local")]  # type: ignore[union-attr]
    assert "examples/images/debian-12" in names and "examples/apps/nginx" in names
    imported("images", "list", "--cloud", "mars", code=3)


def test_clouds_and_sizes_list(imported: Cli) -> None:
    clouds = {c["name"]: c for c in imported.json("clouds", "list")}  # type: ignore[union-attr]
    assert set(clouds) == {"aws-eu-west-1", "exoscale-ch-dk", "exoscale-ch-gva", "local", "ultimum"}
    flavors = imported.json("sizes", "list", "--cloud", "ultimum")
    assert [f["name"] for f in flavors][:2] == ["Basic", "Standard"]  # type: ignore[index]


def test_bad_input_exits_2_names_file_line_key_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "examples" / "images" / "bad.yaml"
    bad.write_text("kind: image\nsize: {cpu: -1}\nparent: examples/images/none\n")
    done = cli("import", "examples", code=2)
    assert f"{Path('examples/images/bad.yaml')}:2: size.cpu" in done.stderr
    assert cli.json("images", "list") == []


def test_usage_errors_exit_2(cli: Cli) -> None:
    cli("sizes", "resolve", "--cpu", "-3", code=2)
    cli("sizes", "resolve", "--cpu", "many", code=2)
    cli("import", "does-not-exist", code=2)


def test_help_lists_the_commands(cli: Cli) -> None:
    out = cli("--help").stdout
    for command in (
        "validate",
        "import",
        "show",
        "history",
        "diff",
        "copy",
        "sizes",
        "clouds",
        "images",
    ):
        assert command in out


def test_main_module_runs_from_the_repository() -> None:
    assert (REPO / "src" / "slipway" / "__main__.py").exists()


def test_deploy_refuses_bad_requests_with_their_exit_codes(imported: Cli) -> None:
    """Checked before anything is created: no cloud is touched, no run recorded."""
    done = imported("deploy", "examples/images/debian-12", "--cloud", "mars", code=3)
    assert "unknown cloud 'mars'" in done.stderr
    done = imported("deploy", "examples/images/nothing", "--cloud", "local", code=3)
    assert "does not exist" in done.stderr
    done = imported(
        "deploy", "examples/images/debian-12", "--cloud", "local", "--size", "cpu=lots", code=2
    )
    assert "cpu must be a number" in done.stderr
    done = imported(
        "deploy", "examples/images/debian-12", "--cloud", "local", "--size", "cpu=64", code=2
    )
    assert "closest is xlarge" in done.stderr
    assert imported.json("runs") == []


def test_clouds_list_says_which_accelerator_the_local_cloud_uses_and_why(imported: Cli) -> None:
    def local() -> dict[str, str]:
        clouds = imported.json("clouds", "list")
        return next(c for c in clouds if c["name"] == "local")["details"]  # type: ignore[union-attr]

    assert local()["accelerator"] == "not chosen yet"
    config = Path(imported.env["SLIPWAY_CONFIG"])
    config.write_text('[clouds.local]\naccelerator = "tcg"\n')
    assert local() == {
        "usable": "yes",
        "accelerator": "tcg",
        "accelerator_reason": "set in the configuration",
    }
    shown = imported("clouds", "list").stdout
    assert "local: accelerator tcg (set in the configuration)" in shown
    remote = next(
        c
        for c in imported.json("clouds", "list")
        if c["name"] == "aws-eu-west-1"  # type: ignore[union-attr]
    )
    assert remote["details"] == {"usable": "yes"}  # type: ignore[index]
