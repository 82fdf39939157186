"""Lists Slipway signs verify with OpenSSL, lists OpenSSL signs verify with
Slipway, and lists are fetched over HTTP within their bounds."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography.hazmat.primitives import serialization

from slipway.adapters.imagelists import (
    EndorserCredentials,
    TrustPolicy,
    load_ca_dir,
    read_list_source,
    render_image_list,
    sign_image_list,
    verify_image_list,
)
from slipway.domain.endorsers import DistinguishedName
from slipway.errors import ImageListRejected, InputError
from tests.endorser_ca import ENDORSER_DN, NOW, EndorsingCA, a_list

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(
    OPENSSL is None, reason="openssl is not installed: the cross-check with OpenSSL cannot run"
)


@pytest.fixture(scope="module")
def ca() -> EndorsingCA:
    return EndorsingCA()


@pytest.fixture(scope="module")
def endorser(ca: EndorsingCA) -> EndorserCredentials:
    return ca.issue()


def openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, check=False, timeout=60)


def hashed_ca_dir(ca: EndorsingCA, folder: Path) -> Path:
    """The CA under the name OpenSSL looks it up by (``openssl x509 -hash``)."""
    folder.mkdir()
    pem = folder / "ca.pem"
    pem.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    subject_hash = openssl("x509", "-hash", "-noout", "-in", str(pem)).stdout.decode().strip()
    pem.rename(folder / f"{subject_hash}.0")
    return folder


def policy(folder: Path, *, legacy: bool = False) -> TrustPolicy:
    return TrustPolicy(
        load_ca_dir(folder), DistinguishedName.from_slash(ENDORSER_DN), legacy=legacy
    )


@needs_openssl
def test_a_list_slipway_signs_verifies_with_openssl(
    ca: EndorsingCA, endorser: EndorserCredentials, tmp_path: Path
) -> None:
    image_list = a_list(endorser)
    signed = tmp_path / "image.list"
    signed.write_bytes(sign_image_list(image_list, endorser))
    ca_dir = hashed_ca_dir(ca, tmp_path / "ca")
    done = openssl(
        "cms", "-verify", "-purpose", "any", "-CApath", str(ca_dir), "-in", str(signed),
        "-out", str(tmp_path / "content.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "content.json").read_bytes() == render_image_list(image_list)
    assert verify_image_list(signed.read_bytes(), policy(ca_dir), now=NOW).image_list == image_list


@needs_openssl
def test_openssl_refuses_a_list_slipway_refuses_as_tampered(
    ca: EndorsingCA, endorser: EndorserCredentials, tmp_path: Path
) -> None:
    signed = tmp_path / "image.list"
    signed.write_bytes(sign_image_list(a_list(endorser), endorser).replace(b'"1"', b'"2"', 1))
    ca_dir = hashed_ca_dir(ca, tmp_path / "ca")
    done = openssl("cms", "-verify", "-purpose", "any", "-CApath", str(ca_dir), "-in", str(signed))
    assert done.returncode != 0
    with pytest.raises(ImageListRejected) as caught:
        verify_image_list(signed.read_bytes(), policy(ca_dir), now=NOW)
    assert caught.value.reason == "digest-mismatch"


def _openssl_signed(endorser: EndorserCredentials, tmp_path: Path, digest: str) -> bytes:
    certificate, key, content = tmp_path / "e.pem", tmp_path / "e.key", tmp_path / "list.json"
    certificate.write_bytes(endorser.certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        endorser.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    content.write_bytes(render_image_list(a_list(endorser)))
    done = openssl(
        "cms", "-sign", "-md", digest, "-signer", str(certificate), "-inkey", str(key),
        "-in", str(content),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@needs_openssl
def test_a_list_openssl_signs_verifies_with_slipway(
    ca: EndorsingCA, endorser: EndorserCredentials, tmp_path: Path
) -> None:
    message = _openssl_signed(endorser, tmp_path, "sha256")
    ca_dir = ca.write_dir(tmp_path / "ca")
    assert verify_image_list(message, policy(ca_dir), now=NOW).digest == "sha256"


@needs_openssl
def test_a_sha1_list_is_legacy_and_accepted_only_when_asked_for(
    ca: EndorsingCA, endorser: EndorserCredentials, tmp_path: Path
) -> None:
    message = _openssl_signed(endorser, tmp_path, "sha1")
    ca_dir = ca.write_dir(tmp_path / "ca")
    with pytest.raises(ImageListRejected) as caught:
        verify_image_list(message, policy(ca_dir), now=NOW)
    assert [r for r, _ in caught.value.problems] == ["legacy-algorithm"]
    assert verify_image_list(message, policy(ca_dir, legacy=True), now=NOW).digest == "sha1"


class _Lists(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pkcs7-mime")
        self.end_headers()  # no Content-Length: the bound must hold while reading
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Lists)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_list_is_fetched_over_http_and_verified(
    ca: EndorsingCA, endorser: EndorserCredentials, server: str, tmp_path: Path
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    _Lists.bodies = {"/vo/image.list": message, "/big": b"x" * 5000}
    fetched = read_list_source(f"{server}/vo/image.list", max_bytes=len(message), timeout=5)
    assert fetched == message
    verify_image_list(fetched, policy(ca.write_dir(tmp_path / "ca")), now=NOW)
    with pytest.raises(ImageListRejected) as caught:
        read_list_source(f"{server}/big", max_bytes=4096, timeout=5)
    assert caught.value.reason == "too-large"
    with pytest.raises(InputError, match="404"):
        read_list_source(f"{server}/missing", max_bytes=4096, timeout=5)
