"""Real registries on loopback: one anonymous for the whole session, and, for
the modules that ask, one with Basic and one with Bearer authentication.
Without Debian's docker-registry these tests are skipped, saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci_registry import REGISTRY_BINARY, LocalRegistry, TokenServer, htpasswd_auth


def _need_registry() -> None:
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.skip(f"{REGISTRY_BINARY} is missing: apt-get install docker-registry")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    _need_registry()
    running = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    _need_registry()
    folder = tmp_path_factory.mktemp("basic-registry")
    running = LocalRegistry(folder, auth=htpasswd_auth(folder)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path_factory.mktemp("token-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer
) -> Iterator[LocalRegistry]:
    _need_registry()
    folder = tmp_path_factory.mktemp("token-registry")
    running = LocalRegistry(folder, auth=token_server.auth()).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def qcow2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small qcow2 image made by qemu-img."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is missing: apt-get install qemu-utils")
    path = tmp_path_factory.mktemp("qcow2") / "debian-12.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path
