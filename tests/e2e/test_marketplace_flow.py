"""The marketplace through the real commands and the real server: the
example image, built and stored, is registered (checked and boot-tested),
endorsed and published in a VO; an anonymous client fetches the list over
HTTP, verifies it, downloads the image by its URL and checks its SHA-512."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from slipway.adapters.imagelists import TrustPolicy, load_ca_dir, verify_image_list
from slipway.adapters.imagelists.trust import distinguished_name
from tests.endorser_ca import ENDORSER_DN, EndorsingCA
from tests.qemu_support import qemu_pids

pytestmark = pytest.mark.slow

SLIPWAY = [sys.executable, "-m", "slipway"]
VO = "vo.example.org"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Site:
    """A data folder, its configuration and the commands run on it."""

    def __init__(self, root: Path, ca: EndorsingCA) -> None:
        self.data = root / "data"
        self.port = _free_port()
        self.ca = ca
        self.endorser = endorser = ca.issue()
        (root / "endorser.pem").write_bytes(
            endorser.certificate.public_bytes(serialization.Encoding.PEM)
        )
        (root / "endorser.key").write_bytes(
            endorser.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (root / "config.toml").write_text(
            f'[vos."{VO}"]\ncertificate = "{root / "endorser.pem"}"\n'
            f'key = "{root / "endorser.key"}"\nemail = "managers@{VO}"\n'
        )
        self.env = {
            **os.environ,
            "SLIPWAY_DATA_DIR": str(self.data),
            "SLIPWAY_CONFIG": str(root / "config.toml"),
            "SLIPWAY_PORT": str(self.port),
            "SLIPWAY_USER": "alice",
            "COLUMNS": "200",
        }
        for key in ("SLIPWAY_DATABASE_URL", "SLIPWAY_QUEUE_URL", "SLIPWAY_HOST"):
            self.env.pop(key, None)

    def cli(self, *args: str, user: str = "alice", timeout: float = 120) -> bytes:
        done = subprocess.run(
            [*SLIPWAY, *args],
            env={**self.env, "SLIPWAY_USER": user},
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    made = Site(tmp_path, EndorsingCA())
    try:
        yield made
    finally:
        for pid in qemu_pids(made.data):  # the boot test never leaves a machine behind
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"a QEMU process was left running: {pid}")


def _serve(site: Site) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*SLIPWAY, "serve"], env=site.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{site.port}/api/me", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("slipway serve did not start")


def test_an_image_goes_from_author_through_the_vo_to_a_subscriber(
    built_image: Path, site: Site, tmp_path: Path
) -> None:
    site.cli("image", "import", str(built_image), "--name", "web")
    registered = json.loads(
        site.cli(
            "appliance", "register", "alice/web", "--version", "2026.11.29",
            "--image", "web", "--title", "Debian 12 minimal", "--min-ram", "512",
            "--output", "json", timeout=1500,
        )
    )  # fmt: skip
    checks = registered["checks"]
    assert checks["image check"].startswith("clean")
    assert checks["image test"].startswith("passed")
    (stored,) = registered["files"]
    site.cli("appliance", "share", "alice/web", "--public", "view")
    site.cli("user", "add", "bob")
    site.cli("vo", "create", VO, "--manager", "bob")
    site.cli("vo", "endorse", VO, "alice/web@2026.11.29", user="bob")
    published = json.loads(site.cli("vo", "publish", VO, "--output", "json", user="bob"))
    assert published["version"] == 1

    server = _serve(site)
    try:
        base = f"http://127.0.0.1:{site.port}"
        with urllib.request.urlopen(f"{base}/vo/{VO}/image.list", timeout=30) as answer:
            signed = answer.read()
        ca_dir = site.ca.write_dir(tmp_path / "ca")
        subject = distinguished_name(site.endorser.certificate.subject)
        verified = verify_image_list(
            signed, TrustPolicy(load_ca_dir(ca_dir), subject), now=datetime.now(UTC)
        )
        (image,) = verified.image_list.images
        assert image.uri == f"{base}/files/sha512/{stored['sha512']}"
        digest = hashlib.sha512()
        with urllib.request.urlopen(image.uri, timeout=120) as download:
            while chunk := download.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == image.sha512 == stored["sha512"]
        # The same list on stdout, byte for byte; and the CLI's verifier accepts it.
        assert site.cli("vo", "export", VO) == signed
        site.cli(
            "imagelist", "verify", f"{base}/vo/{VO}/image.list", "--ca-dir", str(ca_dir),
            "--endorser-dn", ENDORSER_DN,
            "--endorser-ca", distinguished_name(site.ca.certificate.subject).slash(),
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=20)
