"""The endorser's key and certificate: a key that is not the certificate's is
refused clearly, and a key never shows in a message."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from slipway.adapters.imagelists import load_endorser_credentials, sign_image_list
from slipway.errors import InputError
from tests.endorser_ca import EndorsingCA, a_list


def key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, EndorsingCA]:
    ca = EndorsingCA()
    credentials = ca.issue()
    certificate = tmp_path / "endorser.pem"
    certificate.write_bytes(
        credentials.certificate.public_bytes(serialization.Encoding.PEM)
        + ca.certificate.public_bytes(serialization.Encoding.PEM)
    )
    key = tmp_path / "endorser.key"
    key.write_bytes(key_pem(credentials.key, b"secret"))  # type: ignore[arg-type]
    return certificate, key, ca


def test_credentials_are_read_with_their_chain(files: tuple[Path, Path, EndorsingCA]) -> None:
    certificate, key, ca = files
    credentials = load_endorser_credentials(certificate, key, password=b"secret")
    assert credentials.chain == (ca.certificate,)
    assert "PRIVATE" not in repr(credentials) and "secret" not in repr(credentials)
    assert b"BEGIN" not in sign_image_list(a_list(credentials), credentials).split(b"smime.p7s")[0]


def test_a_key_of_another_certificate_is_refused(
    files: tuple[Path, Path, EndorsingCA], tmp_path: Path
) -> None:
    certificate, _, _ = files
    other = tmp_path / "other.key"
    other.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(InputError, match="does not match the certificate") as caught:
        load_endorser_credentials(certificate, other)
    assert "PRIVATE" not in str(caught.value)


def test_a_wrong_password_or_a_broken_key_says_so_without_the_key(
    files: tuple[Path, Path, EndorsingCA], tmp_path: Path
) -> None:
    certificate, key, _ = files
    with pytest.raises(InputError, match="password is wrong") as caught:
        load_endorser_credentials(certificate, key, password=b"guess")
    assert "PRIVATE" not in str(caught.value)
    broken = tmp_path / "broken.key"
    broken.write_bytes(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError) as caught:
        load_endorser_credentials(certificate, broken)
    assert "c2VjcmV0" not in str(caught.value)


def test_a_list_naming_another_endorser_is_not_signed(
    files: tuple[Path, Path, EndorsingCA],
) -> None:
    certificate, key, ca = files
    credentials = load_endorser_credentials(certificate, key, password=b"secret")
    with pytest.raises(InputError, match="endorser"):
        sign_image_list(a_list(ca.issue(ca.name)), credentials)
