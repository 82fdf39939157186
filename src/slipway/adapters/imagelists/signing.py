"""Signing a list as AppDB does: S/MIME ``multipart/signed`` with a detached
PKCS#7 signature (SHA-256) by the endorser's key and certificate.

The key is read from its file, used, and dropped: it is never logged,
printed or put in an error message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from slipway.adapters.imagelists.render import render_image_list
from slipway.adapters.imagelists.trust import distinguished_name
from slipway.domain.endorsers import Endorser
from slipway.domain.imagelists import ImageList
from slipway.errors import Conflict, InputError

__all__ = [
    "ConfiguredSigner",
    "EndorserCredentials",
    "endorser_of",
    "load_endorser_credentials",
    "sign_image_list",
]

_MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, repr=False)
class EndorserCredentials:
    """The endorser's certificate, the certificates of its chain that go
    with the signature, and its private key (RSA or EC)."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"EndorserCredentials({self.certificate.subject.rfc4514_string()!r})"


def load_endorser_credentials(
    certificate_file: Path, key_file: Path, *, password: bytes | None = None
) -> EndorserCredentials:
    """The certificate (the first of ``certificate_file``; any others are its
    chain) and the key of ``key_file`` (PEM). Raises :class:`InputError` when
    either cannot be read or the key is not the certificate's."""
    certificates = _read_certificates(certificate_file)
    try:
        key = serialization.load_pem_private_key(_read(key_file, "--key"), password=password)
    except (ValueError, TypeError):
        # The library's message may quote the file; say only that it is unusable.
        raise InputError(
            f"{key_file}: not a PEM private key, or the password is wrong", field="--key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise InputError(f"{key_file}: only RSA and EC keys sign image lists", field="--key")
    certificate = certificates[0]
    if not _same_public_key(certificate, key):
        raise InputError(
            f"the key in {key_file} does not match the certificate in {certificate_file}",
            field="--key",
            hint="give the key the certificate was issued for",
        )
    return EndorserCredentials(certificate, certificates[1:], key)


def endorser_of(credentials: EndorserCredentials, *, name: str = "", email: str = "") -> Endorser:
    """The ``hv:endorser`` a list signed with ``credentials`` must carry."""
    return Endorser(
        dn=distinguished_name(credentials.certificate.subject),
        ca=distinguished_name(credentials.certificate.issuer),
        name=name,
        email=email,
    )


def sign_image_list(image_list: ImageList, credentials: EndorserCredentials) -> bytes:
    """``image_list`` written as AppDB writes it and signed: the bytes of an
    S/MIME ``multipart/signed`` message. Raises :class:`InputError` when the
    list's ``hv:dn``/``hv:ca`` are not the certificate's subject and issuer."""
    expected = endorser_of(credentials)
    if (image_list.endorser.dn, image_list.endorser.ca) != (expected.dn, expected.ca):
        raise InputError(
            f"the list's endorser is {image_list.endorser.dn} (issued by "
            f"{image_list.endorser.ca}) but the certificate is {expected.dn} "
            f"(issued by {expected.ca})",
            field="hv:endorser",
        )
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(render_image_list(image_list))
        .add_signer(credentials.certificate, credentials.key, hashes.SHA256())
    )
    for certificate in credentials.chain:
        builder = builder.add_certificate(certificate)
    return builder.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])


def _same_public_key(
    certificate: x509.Certificate, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> bool:
    form = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return certificate.public_key().public_bytes(encoding, form) == key.public_key().public_bytes(
        encoding, form
    )


def _read_certificates(path: Path) -> tuple[x509.Certificate, ...]:
    try:
        certificates = x509.load_pem_x509_certificates(_read(path, "--certificate"))
    except ValueError:
        raise InputError(f"{path}: not a PEM certificate", field="--certificate") from None
    return tuple(certificates)


def _read(path: Path, field: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise InputError(f"{path}: over {_MAX_FILE_BYTES} bytes", field=field)
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", field=field) from None


class ConfiguredSigner:
    """Signs each VO's list with the certificate and key the operator names
    in the VO's ``[vos.NAME]`` table (``certificate``, ``key``, and
    optionally ``key_password_file``, ``name``, ``email``). The files are read
    at each signing, so a renewed certificate is used without a restart."""

    def __init__(self, options_of: Callable[[str], Mapping[str, object]]) -> None:
        self._options_of = options_of

    def _credentials(self, vo: str) -> tuple[EndorserCredentials, Mapping[str, object]]:
        options = self._options_of(vo)
        certificate, key = options.get("certificate"), options.get("key")
        if not isinstance(certificate, str) or not isinstance(key, str):
            raise Conflict(
                f"no endorser is configured for {vo}",
                hint=f'the operator names its files in config.toml: [vos."{vo}"] '
                "certificate = …, key = …",
            )
        password = None
        password_file = options.get("key_password_file")
        if isinstance(password_file, str):
            password = _read(Path(password_file), "key_password_file").strip()
        return load_endorser_credentials(Path(certificate), Path(key), password=password), options

    def endorser(self, vo: str) -> Endorser:
        credentials, options = self._credentials(vo)
        return endorser_of(
            credentials,
            name=str(options.get("name", "Slipway")),
            email=str(options.get("email", "")),
        )

    def sign(self, vo: str, image_list: ImageList) -> tuple[bytes, bytes]:
        credentials, _ = self._credentials(vo)
        return sign_image_list(image_list, credentials), render_image_list(image_list)
