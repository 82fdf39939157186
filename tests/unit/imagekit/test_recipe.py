"""Recipes: what a valid one becomes, and how each mistake is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.errors import DefinitionError, DefinitionErrors
from slipway.imagekit.distribution import Distribution
from slipway.imagekit.first_boot import FirstBoot
from slipway.imagekit.recipe import GIB, DiskFormat, load_recipe, parse_recipe
from tests.imagekit_support import EXAMPLE_RECIPE

MINIMAL = 'kind: recipe\nbase: {distribution: debian, release: "12"}\n'


def test_a_minimal_recipe_defaults_to_a_2_gib_compressed_qcow2() -> None:
    recipe = parse_recipe(MINIMAL)
    assert recipe.distribution == "debian"
    assert recipe.release == "12"
    assert recipe.disk_bytes == 2 * GIB
    assert recipe.formats == (DiskFormat.QCOW2,)
    assert recipe.first_boot is FirstBoot.FAST


def test_a_recipe_may_ask_for_the_distributions_stock_first_boot() -> None:
    recipe = parse_recipe(MINIMAL + "first_boot: stock\n")
    assert recipe.first_boot is FirstBoot.STOCK
    assert recipe.digest() != parse_recipe(MINIMAL).digest()


def test_the_example_recipe_is_valid_and_named_after_its_file() -> None:
    recipe = load_recipe(EXAMPLE_RECIPE)
    assert recipe.name == "debian-12-minimal"
    assert any(f.path == "/etc/nftables.conf" for f in recipe.files)
    assert recipe.steps


def test_files_come_from_content_or_from_a_source_next_to_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "motd").write_text("hello\n")
    path = tmp_path / "r.yaml"
    path.write_text(
        MINIMAL + "files:\n  - {path: /etc/motd, source: motd, mode: '0600'}\n"
        "  - {path: /etc/issue, content: hi}\n"
    )
    recipe = load_recipe(path)
    assert recipe.files[0].content == b"hello\n"
    assert recipe.files[0].mode == 0o600
    assert recipe.files[1].content == b"hi"


def test_the_digest_changes_with_what_shapes_the_image_only() -> None:
    base = parse_recipe(MINIMAL, source="a.yaml")
    assert base.digest() == parse_recipe(MINIMAL, source="elsewhere/a.yaml").digest()
    assert base.digest() != parse_recipe(MINIMAL + "packages: [vim]\n", source="a.yaml").digest()


def test_ubuntu_goes_through_the_same_recipe_format() -> None:
    recipe = parse_recipe('kind: recipe\nbase: {distribution: ubuntu, release: "24.04"}\n')
    assert Distribution(recipe.distribution).suite(recipe.release) == "noble"


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("kind: image\nbase: {distribution: debian, release: '12'}\n", 1, "kind"),
        ("kind: recipe\n", 1, "base"),
        ("kind: recipe\nbase: {distribution: gentoo, release: '1'}\n", 2, "base.distribution"),
        ("kind: recipe\nbase: {distribution: debian, release: '99'}\n", 2, "base.release"),
        (MINIMAL + "packages: vim\n", 3, "packages"),
        (MINIMAL + "disk: {size_gib: 0}\n", 3, "disk.size_gib"),
        (MINIMAL + "formats: [qcow3]\n", 3, "formats[0]"),
        (MINIMAL + "colour: red\n", 3, "colour"),
        (MINIMAL + "first_boot: quick\n", 3, "first_boot"),
        (MINIMAL + "files:\n  - {path: etc/motd, content: x}\n", 4, "files[0].path"),
        (MINIMAL + "files:\n  - {path: /etc/motd}\n", 4, "files[0]"),
        (MINIMAL + "files:\n  - {path: /a, source: missing.txt}\n", 4, "files[0].source"),
    ],
)
def test_a_bad_recipe_names_file_line_and_key(text: str, line: int, key: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_recipe(text, source="bad.yaml", base_dir=Path("/nonexistent"))
    errors = info.value.errors if isinstance(info.value, DefinitionErrors) else [info.value]
    assert any(
        e.location.file == "bad.yaml" and e.location.line == line and e.location.key == key
        for e in errors
    ), [str(e) for e in errors]
    assert info.value.exit_code == 2


def test_several_mistakes_are_reported_together() -> None:
    with pytest.raises(DefinitionErrors) as info:
        parse_recipe(MINIMAL + "packages: vim\nformats: [qcow3]\n", source="bad.yaml")
    assert len(info.value.errors) == 2


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_recipe("kind: recipe\nbase: [\n", source="bad.yaml")
    assert info.value.location.line == 3
    assert "not valid YAML" in str(info.value)


def test_a_recipe_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(DefinitionError, match="must be a YAML mapping"):
        parse_recipe("- a\n- b\n", source="bad.yaml")
