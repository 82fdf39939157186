"""Whom a list's signer is trusted through: a CA directory in OpenSSL's
hashed layout (IGTF's ``/etc/grid-security/certificates``), its CRLs, and
the chain from the signer to one of its CAs.

Certificates are read from files named like ``9da13359.0``, CRLs from
``9da13359.r0``; other files (``*.pem``, ``*.signing_policy``, ``*.info``)
are the same CAs under other names, or not certificates, and are skipped,
as ``openssl -CApath`` skips them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from slipway.domain.endorsers import DistinguishedName
from slipway.domain.imagelists import Problem, RejectionReason
from slipway.errors import InputError

__all__ = [
    "TrustAnchors",
    "chain_problems",
    "distinguished_name",
    "load_ca_dir",
    "parse_endorser_name",
]

_CERTIFICATE_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_CRL_NAME = re.compile(r"[0-9a-f]{8}\.r[0-9]+")
_MAX_FILE_BYTES = 1024 * 1024
_MAX_FILES = 10_000

# OpenSSL's short names, as slash-form DNs spell them.
_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.USER_ID: "UID",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title",
    NameOID.STREET_ADDRESS: "street",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.DN_QUALIFIER: "dnQualifier",
    NameOID.GENERATION_QUALIFIER: "generationQualifier",
    NameOID.INITIALS: "initials",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
}


@dataclass(frozen=True)
class TrustAnchors:
    """The CAs of a CA directory and the CRLs beside them; ``skipped`` names
    the hashed-name files that could not be read."""

    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    skipped: tuple[str, ...] = ()


def distinguished_name(name: x509.Name) -> DistinguishedName:
    """``name`` as a slash-form DN would spell it, in the certificate's order."""
    return DistinguishedName(
        tuple(
            tuple(
                (
                    _SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string),
                    attribute.value if isinstance(attribute.value, str) else attribute.value.hex(),
                )
                for attribute in rdn
            )
            for rdn in name.rdns
        )
    )


def parse_endorser_name(text: str, *, field: str) -> DistinguishedName:
    """A DN as a person gives it: OpenSSL's slash form (``/DC=org/CN=x``, as
    ``hv:dn`` holds it) or RFC 4514 (``CN=x,DC=org``, least significant
    first). Raises :class:`InputError` naming ``field`` for anything else."""
    try:
        if text.startswith("/"):
            return DistinguishedName.from_slash(text)
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise InputError(f"{field}: {exc}", field=field) from None
    if not name.rdns:
        raise InputError(f"{field}: an empty name", field=field)
    return distinguished_name(name)


def load_ca_dir(path: Path) -> TrustAnchors:
    """The CAs and CRLs in ``path``. Raises :class:`InputError` when ``path``
    is not a directory or holds no CA certificate under a hashed name."""
    if not path.is_dir():
        raise InputError(f"{path}: not a directory", field="--ca-dir")
    certificates: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    skipped: list[str] = []
    for file in sorted(path.iterdir())[:_MAX_FILES]:
        is_certificate = _CERTIFICATE_NAME.fullmatch(file.name) is not None
        if not (is_certificate or _CRL_NAME.fullmatch(file.name)):
            continue
        try:
            if file.stat().st_size > _MAX_FILE_BYTES:
                raise ValueError("too large")
            data = file.read_bytes()
            if is_certificate:
                certificates.append(x509.load_pem_x509_certificate(data))
            else:
                crls.append(_load_crl(data))
        except (OSError, ValueError):
            skipped.append(file.name)
    if not certificates:
        raise InputError(
            f"{path}: no CA certificate under a hashed name (like 9da13359.0)",
            field="--ca-dir",
            hint="c_rehash or openssl rehash names the files",
        )
    return TrustAnchors(tuple(certificates), tuple(crls), tuple(skipped))


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def chain_problems(
    signer: x509.Certificate,
    intermediates: tuple[x509.Certificate, ...],
    anchors: TrustAnchors,
    now: datetime,
) -> list[Problem]:
    """What is wrong with the chain from ``signer`` to a CA of ``anchors`` at
    ``now``: no such chain (validity periods, CA constraints, SHA-1 and RSA
    keys under 2048 bits are refused), or a CRL of the chain that is stale,
    forged or lists one of its certificates."""
    policy = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors.certificates)))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
    )
    try:
        chain = policy.build_client_verifier().verify(signer, list(intermediates)).chain
    except verification.VerificationError as exc:
        why = str(exc).split(" (encountered processing", 1)[0]
        return [
            Problem(
                RejectionReason.UNTRUSTED_CHAIN,
                f"no trusted chain from {distinguished_name(signer.subject)} "
                f"to a CA of the CA directory: {why}",
            )
        ]
    problems: list[Problem] = []
    for certificate, issuer in itertools.pairwise(chain):
        problems.extend(_revocation_problems(certificate, issuer, anchors.crls, now))
    return problems


def _revocation_problems(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    crls: tuple[x509.CertificateRevocationList, ...],
    now: datetime,
) -> list[Problem]:
    issuer_name = distinguished_name(issuer.subject)
    problems: list[Problem] = []
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            problems.append(
                Problem(RejectionReason.UNTRUSTED_CHAIN, f"the CRL of {issuer_name} is forged")
            )
        elif crl.next_update_utc is not None and crl.next_update_utc <= now:
            problems.append(
                Problem(
                    RejectionReason.UNTRUSTED_CHAIN,
                    f"the CRL of {issuer_name} expired at {crl.next_update_utc:%Y-%m-%d %H:%M}Z",
                )
            )
        elif crl.get_revoked_certificate_by_serial_number(certificate.serial_number):
            problems.append(
                Problem(
                    RejectionReason.REVOKED,
                    f"{distinguished_name(certificate.subject)} is revoked by {issuer_name}",
                )
            )
    return problems
