"""The detached PKCS#7 / CMS signature of a list: parsed with pyasn1,
checked with ``cryptography``.

Strict on purpose: one signer, signed attributes required, the
``messageDigest`` attribute equal to the digest of the exact signed bytes,
the signature over the DER of the signed attributes. SHA-1 only when the
caller allows legacy lists; MD5 never.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc5652

from slipway.domain.imagelists import Problem, RejectionReason
from slipway.errors import ImageListRejected

__all__ = ["SignatureEvidence", "check_signature"]

_SIGNED_DATA = univ.ObjectIdentifier("1.2.840.113549.1.7.2")
_DATA = univ.ObjectIdentifier("1.2.840.113549.1.7.1")
_CONTENT_TYPE = univ.ObjectIdentifier("1.2.840.113549.1.9.3")
_MESSAGE_DIGEST = univ.ObjectIdentifier("1.2.840.113549.1.9.4")

# digest OID → (hashlib name, cryptography hash, legacy)
_DIGESTS: dict[str, tuple[str, hashes.HashAlgorithm, bool]] = {
    "1.3.14.3.2.26": ("sha1", hashes.SHA1(), True),
    "2.16.840.1.101.3.4.2.4": ("sha224", hashes.SHA224(), False),
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256(), False),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384(), False),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512(), False),
}
# signature OID → (key type, digest OID it implies, or None for "the signer's digest")
_SIGNATURES: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa", None),
    "1.2.840.113549.1.1.5": ("rsa", "1.3.14.3.2.26"),
    "1.2.840.113549.1.1.14": ("rsa", "2.16.840.1.101.3.4.2.4"),
    "1.2.840.113549.1.1.11": ("rsa", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.113549.1.1.12": ("rsa", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.113549.1.1.13": ("rsa", "2.16.840.1.101.3.4.2.3"),
    "1.2.840.10045.4.1": ("ec", "1.3.14.3.2.26"),
    "1.2.840.10045.4.3.1": ("ec", "2.16.840.1.101.3.4.2.4"),
    "1.2.840.10045.4.3.2": ("ec", "2.16.840.1.101.3.4.2.1"),
    "1.2.840.10045.4.3.3": ("ec", "2.16.840.1.101.3.4.2.2"),
    "1.2.840.10045.4.3.4": ("ec", "2.16.840.1.101.3.4.2.3"),
}


@dataclass(frozen=True)
class SignatureEvidence:
    """What a signature says: the signer's certificate, every certificate it
    carries (intermediates among them), the digest's name (``sha256``) and
    the problems found (``legacy-algorithm``, ``digest-mismatch``,
    ``bad-signature``)."""

    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]
    digest: str
    problems: tuple[Problem, ...]


def _malformed(message: str) -> ImageListRejected:
    return ImageListRejected(
        str(RejectionReason.MALFORMED), f"signature: {message}", field="signature"
    )


def check_signature(signature: bytes, signed: bytes, *, legacy: bool) -> SignatureEvidence:
    """Check the DER ``signature`` over the canonical ``signed`` bytes.

    Structural faults raise :class:`ImageListRejected` (``malformed``);
    the rest are returned as problems, so that all of them are reported.
    Whatever a hostile signature holds (an attribute of another type, a
    certificate that does not parse, a key of an unknown kind) ends as a
    rejection, never as a crash."""
    try:
        return _check_signature(signature, signed, legacy=legacy)
    except (PyAsn1Error, ValueError, UnsupportedAlgorithm, RecursionError) as exc:
        raise _malformed(f"{type(exc).__name__}: {str(exc)[:160]}") from None


def _check_signature(signature: bytes, signed: bytes, *, legacy: bool) -> SignatureEvidence:
    """Check the DER ``signature`` over the canonical ``signed`` bytes.
    Structural faults raise :class:`ImageListRejected` (``malformed``);
    the rest are returned as problems, so that all of them are reported."""
    signed_data = _signed_data(signature)
    signers = signed_data["signerInfos"]
    if len(signers) != 1:
        raise _malformed(f"{len(signers)} signers; exactly one is accepted")
    encapsulated = signed_data["encapContentInfo"]
    if encapsulated["eContentType"] != _DATA or encapsulated["eContent"].isValue:
        raise _malformed("not a detached signature of data")
    signer_info = signers[0]
    if not signer_info["signedAttrs"].isValue or not len(signer_info["signedAttrs"]):
        raise _malformed("no signed attributes")
    try:
        certificates = tuple(pkcs7.load_der_pkcs7_certificates(signature))
    except ValueError as exc:
        raise _malformed(f"its certificates cannot be read: {exc}") from None
    certificate = _signer_certificate(signer_info["sid"], certificates)

    problems: list[Problem] = []
    digest_oid = str(signer_info["digestAlgorithm"]["algorithm"])
    if digest_oid not in _DIGESTS:
        raise ImageListRejected(
            str(RejectionReason.LEGACY_ALGORITHM), f"digest algorithm {digest_oid} is not accepted"
        )
    digest_name, digest_hash, digest_legacy = _DIGESTS[digest_oid]
    if digest_legacy and not legacy:
        problems.append(
            Problem(
                RejectionReason.LEGACY_ALGORITHM,
                f"signed with {digest_name}; legacy lists are accepted only when asked for",
            )
        )
    attributes = _attributes(signer_info["signedAttrs"])
    if attributes.get(str(_CONTENT_TYPE)) != encoder.encode(_DATA):
        raise _malformed("the contentType attribute is missing or not data")
    declared = attributes.get(str(_MESSAGE_DIGEST))
    if declared is None:
        raise _malformed("no messageDigest attribute")
    digest, _ = decoder.decode(declared, asn1Spec=univ.OctetString())
    if bytes(digest) != hashlib.new(digest_name, signed).digest():
        problems.append(
            Problem(
                RejectionReason.DIGEST_MISMATCH,
                f"the content's {digest_name} differs from the messageDigest the signature covers",
            )
        )
    # The signature covers the signed attributes DER-encoded as a SET OF (tag 0x31).
    covered = b"\x31" + encoder.encode(signer_info["signedAttrs"])[1:]
    problem = _signature_problem(certificate, signer_info, covered, digest_oid, digest_hash)
    if problem is not None:
        problems.append(problem)
    return SignatureEvidence(certificate, certificates, digest_name, tuple(problems))


def _signed_data(signature: bytes) -> rfc5652.SignedData:
    try:
        content_info, rest = decoder.decode(signature, asn1Spec=rfc5652.ContentInfo())
        if rest or content_info["contentType"] != _SIGNED_DATA:
            raise _malformed("not a PKCS#7 SignedData")
        signed_data, rest = decoder.decode(content_info["content"], asn1Spec=rfc5652.SignedData())
    except (PyAsn1Error, RecursionError) as exc:
        raise _malformed(f"not DER PKCS#7: {str(exc)[:120]}") from None
    if rest:
        raise _malformed("trailing bytes after the SignedData")
    return signed_data


def _attributes(signed_attrs: rfc5652.SignedAttributes) -> dict[str, bytes]:
    """Each attribute's single value, DER; a repeated or multi-valued one is refused."""
    found: dict[str, bytes] = {}
    for attribute in signed_attrs:
        oid = str(attribute["attrType"])
        if oid in found or len(attribute["attrValues"]) != 1:
            raise _malformed(f"attribute {oid} is repeated or has several values")
        found[oid] = encoder.encode(attribute["attrValues"][0])
    return found


def _signer_certificate(
    sid: rfc5652.SignerIdentifier, certificates: tuple[x509.Certificate, ...]
) -> x509.Certificate:
    if sid.getName() == "issuerAndSerialNumber":
        issuer = encoder.encode(sid["issuerAndSerialNumber"]["issuer"])
        serial = int(sid["issuerAndSerialNumber"]["serialNumber"])
        for certificate in certificates:
            if certificate.serial_number == serial and certificate.issuer.public_bytes() == issuer:
                return certificate
    else:
        key_id = bytes(sid["subjectKeyIdentifier"])
        for certificate in certificates:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == key_id:
                return certificate
    raise _malformed("the signer's certificate is not in the signature")


def _signature_problem(
    certificate: x509.Certificate,
    signer_info: rfc5652.SignerInfo,
    covered: bytes,
    digest_oid: str,
    digest_hash: hashes.HashAlgorithm,
) -> Problem | None:
    algorithm = str(signer_info["signatureAlgorithm"]["algorithm"])
    kind, implied = _SIGNATURES.get(algorithm, ("", None))
    if not kind:
        return Problem(RejectionReason.BAD_SIGNATURE, f"signature algorithm {algorithm} unknown")
    if implied is not None and implied != digest_oid:
        return Problem(RejectionReason.BAD_SIGNATURE, "signature and digest algorithms disagree")
    key = certificate.public_key()
    value = bytes(signer_info["signature"])
    try:
        if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, covered, padding.PKCS1v15(), digest_hash)
        elif kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(value, covered, ec.ECDSA(digest_hash))
        else:
            return Problem(
                RejectionReason.BAD_SIGNATURE, "the signer's key does not fit the algorithm"
            )
    except InvalidSignature:
        return Problem(
            RejectionReason.BAD_SIGNATURE,
            "the signature does not verify with the signer's certificate",
        )
    except UnsupportedAlgorithm as exc:
        return Problem(RejectionReason.BAD_SIGNATURE, f"cannot be checked here: {exc}")
    return None
