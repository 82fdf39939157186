"""A test CA that issues endorser certificates, and the lists they sign.

Keys are EC P-256: quick to make, and what a modern CA issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from slipway.adapters.imagelists import EndorserCredentials, endorser_of
from slipway.domain.imagelists import ImageList, ListedImage

NOW = datetime.now(UTC).replace(microsecond=0)
SHA512 = "ab" * 64


def grid_name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


CA_NAME = grid_name(
    (NameOID.DOMAIN_COMPONENT, "org"),
    (NameOID.DOMAIN_COMPONENT, "slipway"),
    (NameOID.COMMON_NAME, "Slipway Test CA"),
)
ENDORSER_NAME = grid_name(
    (NameOID.DOMAIN_COMPONENT, "org"),
    (NameOID.DOMAIN_COMPONENT, "slipway"),
    (NameOID.ORGANIZATION_NAME, "Robots"),
    (NameOID.COMMON_NAME, "vo.example.org endorser"),
)
ENDORSER_DN = "/DC=org/DC=slipway/O=Robots/CN=vo.example.org endorser"
CA_DN = "/DC=org/DC=slipway/CN=Slipway Test CA"


@dataclass
class EndorsingCA:
    """A root CA and the directory (OpenSSL hashed names) that trusts it."""

    name: x509.Name = CA_NAME
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    not_after: datetime = NOW + timedelta(days=3650)
    parent: EndorsingCA | None = None
    certificate: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        """Self-signed, or issued by ``parent`` (an intermediate CA)."""
        issuer_name = self.parent.name if self.parent else self.name
        issuer_key = self.parent.key if self.parent else self.key
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(issuer_name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=365))
            .not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
            .sign(issuer_key, hashes.SHA256())
        )

    def issue(
        self,
        subject: x509.Name = ENDORSER_NAME,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        not_after: datetime = NOW + timedelta(days=365),
    ) -> EndorserCredentials:
        """An endorser certificate for ``subject`` and its key."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=30))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return EndorserCredentials(certificate, (), key)

    def write_dir(self, folder: Path, *, hashed_name: str = "5a1b2c3d.0") -> Path:
        """``folder`` with this CA's certificate under ``hashed_name``."""
        folder.mkdir(parents=True, exist_ok=True)
        pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        (folder / hashed_name).write_bytes(pem)
        return folder

    def crl(
        self, revoked: list[x509.Certificate], *, next_update: datetime = NOW + timedelta(days=7)
    ) -> bytes:
        """A PEM CRL of this CA listing ``revoked``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.name)
            .last_update(NOW - timedelta(days=1))
            .next_update(next_update)
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(NOW - timedelta(days=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def a_list(
    credentials: EndorserCredentials,
    *,
    identifier: str = "0b3f5c2e-6a4d-4a57-9a52-2f3c7f1d4e10",
    version: str = "20261129120000",
    expires: datetime = NOW + timedelta(days=30),
    images: tuple[ListedImage, ...] | None = None,
) -> ImageList:
    """A VO-wide list endorsed by ``credentials``' subject, with one image."""
    return ImageList(
        identifier=identifier,
        version=version,
        created=NOW - timedelta(hours=1),
        expires=expires,
        endorser=endorser_of(credentials, name="VO manager", email="vo@example.org"),
        images=images if images is not None else (an_image(),),
        title="Images of vo.example.org",
        description="The VO-wide image list of vo.example.org.",
        source="https://slipway.example.org/",
        uri="https://slipway.example.org/vo/vo.example.org/image.list",
        vo="vo.example.org",
    )


def an_image(**changes: object) -> ListedImage:
    values: dict[str, object] = {
        "identifier": "7d1e9c1a-5b1f-4c3e-8f0e-3f6d2b9a1c55",
        "uri": "https://slipway.example.org/appliances/debian-12/1/disk.qcow2",
        "size": 536870912,
        "sha512": SHA512,
        "title": "Debian 12 minimal",
        "description": "Debian 12 with cloud-init",
        "version": "1",
        "format": "qcow2",
        "hypervisor": "QEMU,KVM",
        "arch": "x86_64",
        "os": "Linux",
        "os_name": "Debian",
        "os_version": "12",
        "comments": "",
        "ram_minimum": 512,
        "ram_recommended": 2048,
        "core_minimum": 1,
        "core_recommended": 2,
        "expires": NOW + timedelta(days=30),
        "mpuri": "https://slipway.example.org/appliances/debian-12/1",
        "appid": "42",
        "group": "General group",
    }
    values.update(changes)
    return ListedImage(**values)  # type: ignore[arg-type]
