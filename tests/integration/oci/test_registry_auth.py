"""Registries that want credentials: HTTP Basic (htpasswd), and Bearer tokens
from a token server as Harbor hands them out. A wrong or missing password is
refused with the registry's words and never shown."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from slipway.adapters.oci import (
    RegistryCredentials,
    disk_image_annotations,
    pull_disk_image,
    push_disk_image,
)
from slipway.errors import RegistryError
from tests.oci_registry import PASSWORD, USERNAME, LocalRegistry, TokenServer, random_file

ANNOTATIONS = disk_image_annotations(
    os_distro="alma", os_version="9", architecture="x86_64", tag="2026-11-29-7b98c834"
)
RIGHT = RegistryCredentials(USERNAME, PASSWORD)
WRONG = RegistryCredentials(USERNAME, "not-the-password-9f1c")


def every_word_of(error: BaseException) -> str:
    """The error as a user or a log could ever see it, causes included."""
    return "".join(traceback.format_exception(error)) + repr(error)


def test_basic_credentials_push_and_pull(basic_registry: LocalRegistry, tmp_path: Path) -> None:
    disk = random_file(tmp_path, "alma.raw", size=64 * 1024)
    reference = basic_registry.reference("vo/alma:9")
    push_disk_image(disk, reference, annotations=ANNOTATIONS, disk_format="raw", credentials=RIGHT)
    pulled = pull_disk_image(reference, tmp_path / "out", credentials=RIGHT)
    assert pulled.files[0].path.read_bytes() == disk.read_bytes()


def test_basic_without_credentials_is_refused_with_a_hint(
    basic_registry: LocalRegistry, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError) as refused:
        pull_disk_image(basic_registry.reference("vo/alma:9"), tmp_path / "out")
    assert refused.value.hint is not None and "password" in refused.value.hint
    assert basic_registry.host in refused.value.message


def test_a_wrong_basic_password_is_refused_and_never_shown(
    basic_registry: LocalRegistry, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError) as refused:
        pull_disk_image(basic_registry.reference("vo/alma:9"), tmp_path / "out", credentials=WRONG)
    assert "UNAUTHORIZED" in refused.value.message
    assert WRONG.password not in every_word_of(refused.value)
    assert WRONG.password not in repr(WRONG)


def test_bearer_tokens_are_fetched_from_the_realm_for_push_and_pull(
    token_registry: LocalRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.scopes.clear()
    token_server.authorizations.clear()
    disk = random_file(tmp_path, "alma.raw", size=64 * 1024)
    reference = token_registry.reference("vo/token-alma:9")
    push_disk_image(disk, reference, annotations=ANNOTATIONS, disk_format="raw", credentials=RIGHT)
    pulled = pull_disk_image(reference, tmp_path / "out", credentials=RIGHT)

    assert pulled.files[0].path.read_bytes() == disk.read_bytes()
    # One token for the push, asked with its own scope besides the
    # registry's first challenge; one for the pull.
    assert token_server.scopes == [
        ("repository:vo/token-alma:pull", "repository:vo/token-alma:pull,push"),
        ("repository:vo/token-alma:pull",),
    ]
    assert set(token_server.authorizations) == {RIGHT.basic_header()}


def test_a_wrong_password_at_the_token_realm_is_refused_and_never_shown(
    token_registry: LocalRegistry, tmp_path: Path
) -> None:
    disk = random_file(tmp_path, "alma.raw", size=1024)
    with pytest.raises(RegistryError) as refused:
        push_disk_image(
            disk,
            token_registry.reference("vo/token-alma:9"),
            annotations=ANNOTATIONS,
            disk_format="raw",
            credentials=WRONG,
        )
    assert "who?" in refused.value.message  # the token server's own words
    assert WRONG.password not in every_word_of(refused.value)


def test_anonymous_pull_from_a_token_registry_is_refused(
    token_registry: LocalRegistry, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError, match="token"):
        pull_disk_image(token_registry.reference("vo/token-alma:9"), tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
