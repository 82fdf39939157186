"""Bad definitions: each gets an error naming the file, the line and the key,
and an import that contains one writes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import load_paths
from slipway.domain.modules import Right
from slipway.errors import DefinitionError, DefinitionErrors, PermissionDenied
from slipway.services.catalog import CatalogService
from tests.conftest import EXAMPLES

GOOD_IMAGE = """\
kind: image
description: test image
platform: debian
login_user: debian
native:
  local: {id: debian-12-minimal}
size: {cpu: 1, ram: 1}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the examples to break one file at a time."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def write(tree: Path, name: str, text: str) -> Path:
    path = tree / "examples" / "images" / f"{name}.yaml"
    path.write_text(text)
    return path


def errors_for(tree: Path, service: CatalogService) -> list[DefinitionError]:
    try:
        files = load_paths([tree / "examples"], tree)
        service.validate(files).raise_errors()
    except DefinitionErrors as exc:
        return exc.errors
    except DefinitionError as exc:
        return [exc]
    raise AssertionError("expected a definition error")


def only_error(tree: Path, service: CatalogService) -> DefinitionError:
    errors = errors_for(tree, service)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


@pytest.fixture
def alice(service: Callable[[str], CatalogService]) -> CatalogService:
    return service("alice")


def test_the_examples_are_valid(examples: list, alice: CatalogService) -> None:  # type: ignore[type-arg]
    report = alice.validate(examples)
    assert report.errors == []
    assert any("slipway_managed opens every port" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("kind: image\nnative: {local: {id: x}\n", 3, None, "not valid YAML"),
        (GOOD_IMAGE + "sise: {cpu: 2}\n", 8, "sise", "unknown key (did you mean 'size'?)"),
        (GOOD_IMAGE.replace("cpu: 1", "cpu: two"), 7, "size.cpu", "expected a whole number"),
        (
            GOOD_IMAGE.replace("login_user: debian", "login_user: [debian]"),
            4,
            "login_user",
            "expected text",
        ),
        (GOOD_IMAGE.replace("cpu: 1", "cpu: -2"), 7, "size.cpu", "greater than or equal to 1"),
        (GOOD_IMAGE.replace("ram: 1", "ram: 100000"), 7, "size.ram", "less than or equal to 32768"),
        (GOOD_IMAGE.replace("local:", "nowhere:"), 6, "native.nowhere", "unknown cloud 'nowhere'"),
        (
            GOOD_IMAGE + "parent: examples/images/nope\n",
            8,
            "parent",
            "parent 'examples/images/nope' does not exist",
        ),
        (
            GOOD_IMAGE + "clouds:\n  local: {instance_type: huge}\n",
            9,
            "clouds.local.instance_type",
            "instance type 'huge' is not in catalog",
        ),
        (GOOD_IMAGE.replace("kind: image", "kind: imag"), 1, "kind", "unknown kind 'imag'"),
        (GOOD_IMAGE + "login_user: again\n", 8, "login_user", "key appears twice"),
        (
            GOOD_IMAGE.replace("platform: debian", "platform: inherited"),
            3,
            "platform",
            "'inherited' needs a parent",
        ),
    ],
)
def test_a_bad_definition_is_named_by_file_line_and_key(
    tree: Path, alice: CatalogService, text: str, line: int, key: str | None, words: str
) -> None:
    path = write(tree, "broken", text)
    error = only_error(tree, alice)
    assert error.location.file == str(path)
    assert error.location.line == line
    assert error.location.key == key
    assert words in str(error)


def test_a_cycle_names_every_file_in_it(tree: Path, alice: CatalogService) -> None:
    write(tree, "a", GOOD_IMAGE + "parent: examples/images/b\n")
    write(tree, "b", GOOD_IMAGE + "parent: examples/images/a\n")
    errors = errors_for(tree, alice)
    assert errors
    assert all("inheritance cycle" in str(e) for e in errors)
    assert "a.yaml" in str(errors[0]) and "b.yaml" in str(errors[0])


def test_a_component_must_point_at_an_image(tree: Path, alice: CatalogService) -> None:
    nginx = tree / "examples" / "apps" / "nginx.yaml"
    nginx.write_text(
        nginx.read_text().replace("examples/images/debian-12", "examples/clouds/local")
    )
    error = only_error(tree, alice)
    assert "is a cloud, not an image" in str(error)
    assert error.location.key == "image"


def test_a_cloud_definition_cannot_say_how_the_server_reaches_the_cloud(
    tree: Path, alice: CatalogService
) -> None:
    """Binaries, endpoints and passwords are the operator's configuration: a
    definition naming a program for the server to run is refused."""
    cloud = tree / "examples" / "clouds" / "local.yaml"
    cloud.write_text(cloud.read_text() + "endpoint: {qemu: /tmp/evil.sh, password: hunter2}\n")
    error = only_error(tree, alice)
    assert "'endpoint' is not allowed" in str(error)
    assert "operator" in str(error)
    assert "hunter2" not in str(error) and "evil" not in str(error)


@pytest.mark.parametrize("image_id", ["/tmp/evil.qcow2", "../../etc/passwd", "..", "A B"])
def test_a_local_native_image_id_names_an_image_store_entry(
    tree: Path, alice: CatalogService, image_id: str
) -> None:
    write(tree, "sneaky", GOOD_IMAGE.replace("debian-12-minimal", f"'{image_id}'"))
    error = only_error(tree, alice)
    assert error.location.key == "native.local.id"
    assert "not a local image store name" in str(error)


def test_all_problems_of_a_tree_are_reported_together(tree: Path, alice: CatalogService) -> None:
    write(tree, "one", GOOD_IMAGE.replace("cpu: 1", "cpu: 0"))
    write(tree, "two", GOOD_IMAGE + "bogus: 1\n")
    assert len(errors_for(tree, alice)) == 2


def test_an_import_with_one_bad_file_writes_nothing(tree: Path, alice: CatalogService) -> None:
    write(tree, "broken", GOOD_IMAGE + "parent: examples/images/nope\n")
    with pytest.raises(DefinitionError):
        alice.import_files(load_paths([tree / "examples"], tree))
    assert alice.list_modules() == []


def test_an_undeclared_group_is_reported_for_every_cloud(tree: Path, alice: CatalogService) -> None:
    write(
        tree,
        "grouped",
        GOOD_IMAGE.replace("native:\n", "security_groups: [db]\nnative:\n  ultimum: {id: u}\n"),
    )
    report = alice.validate(load_paths([tree / "examples"], tree))
    assert report.errors == []
    messages = [w for w in report.warnings if "'db' is not declared" in w]
    assert any("on local" in w for w in messages) and any("on ultimum" in w for w in messages)


def test_a_cloud_without_security_groups_is_reported(tree: Path, alice: CatalogService) -> None:
    cloud = tree / "examples" / "clouds" / "ultimum.yaml"
    cloud.write_text(cloud.read_text().replace("security_groups: true", "security_groups: false"))
    report = alice.validate(load_paths([tree / "examples"], tree))
    assert any("ultimum has no security groups" in w for w in report.warnings)


def test_a_size_no_flavor_fits_is_a_warning_naming_the_closest(
    tree: Path, alice: CatalogService
) -> None:
    write(tree, "huge", GOOD_IMAGE.replace("cpu: 1, ram: 1", "cpu: 64, ram: 1"))
    report = alice.validate(load_paths([tree / "examples"], tree))
    assert any(
        "no flavor in examples/catalogs/local fits" in w and "closest is xlarge" in w
        for w in report.warnings
    )


def test_someone_elses_module_cannot_be_overwritten_by_import(
    tree: Path, service: Callable[[str], CatalogService]
) -> None:
    files = load_paths([tree / "examples"], tree)
    service("alice").import_files(files)
    service("alice").share(
        "examples/images/debian-12",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW}),
    )
    write(tree, "debian-12", GOOD_IMAGE)
    changed = load_paths([tree / "examples"], tree)
    with pytest.raises(PermissionDenied) as refused:
        service("bob").import_files(changed)
    assert "bob lacks the edit right on examples/images/debian-12" in str(refused.value)
    # Those bob may not view are answered as if they did not exist.
    assert "bob cannot create examples/apps/nginx, " in str(refused.value)
    assert service("alice").history("examples/images/debian-12")[-1].version == 1


def test_recipes_in_a_folder_are_left_to_the_image_kit(tree: Path, alice: CatalogService) -> None:
    recipe = tree / "examples" / "recipes" / "tiny.yaml"
    recipe.parent.mkdir(exist_ok=True)
    recipe.write_text("kind: recipe\nbase: {distribution: debian, release: '12'}\n")
    names = [f.name for f in load_paths([tree / "examples"], tree)]
    assert "examples/recipes/tiny" not in names
    with pytest.raises(DefinitionError, match="a recipe is not a definition"):
        load_paths([recipe], tree)


def test_a_cloud_cannot_claim_a_capability_its_driver_lacks(
    tree: Path, service: Callable[[str], CatalogService]
) -> None:
    """A cloud claiming image upload on a driver that lacks it (Exoscale
    registers templates from a URL): the claim warns, and the cloud is shown
    without it."""
    cloud = tree / "examples" / "clouds" / "exoscale-ch-gva.yaml"
    cloud.write_text(cloud.read_text().replace("image_upload: false", "image_upload: true"))
    admin = service("admin")
    files = load_paths([tree / "examples"], tree)
    report = admin.validate(files)
    assert report.errors == []
    assert any(
        "capabilities.image_upload is claimed, but the exoscale driver cannot" in w
        for w in report.warnings
    )
    admin.import_files(files)
    clouds = {c.name: c for c, _ in admin.clouds()}
    assert clouds["exoscale-ch-gva"].image_upload is False
    assert clouds["exoscale-ch-gva"].security_groups is True
    assert clouds["local"].image_upload is True
