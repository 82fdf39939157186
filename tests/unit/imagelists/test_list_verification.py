"""Lists signed by a test CA: a sound one is accepted, and each kind of bad
one is refused for its own reason."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from slipway.adapters.imagelists import (
    EndorserCredentials,
    TrustPolicy,
    VerifiedImageList,
    load_ca_dir,
    render_image_list,
    sign_image_list,
    verify_image_list,
)
from slipway.domain.endorsers import DistinguishedName
from slipway.domain.imagelists import ImageList, PreviousAcceptance
from slipway.errors import ImageListRejected
from tests.endorser_ca import (
    CA_DN,
    ENDORSER_DN,
    NOW,
    EndorsingCA,
    a_list,
    an_image,
    grid_name,
)


@pytest.fixture(scope="module")
def ca() -> EndorsingCA:
    return EndorsingCA()


@pytest.fixture(scope="module")
def endorser(ca: EndorsingCA) -> EndorserCredentials:
    return ca.issue()


@pytest.fixture
def policy(ca: EndorsingCA, tmp_path: Path) -> TrustPolicy:
    return TrustPolicy(
        load_ca_dir(ca.write_dir(tmp_path / "ca")), DistinguishedName.from_slash(ENDORSER_DN)
    )


def accepted(message: bytes, policy: TrustPolicy, **kwargs: object) -> VerifiedImageList:
    return verify_image_list(message, policy, now=NOW, **kwargs)  # type: ignore[arg-type]


def reasons(message: bytes, policy: TrustPolicy, **kwargs: object) -> list[str]:
    with pytest.raises(ImageListRejected) as caught:
        verify_image_list(message, policy, now=NOW, **kwargs)  # type: ignore[arg-type]
    return [reason for reason, _ in caught.value.problems]


def signed_anyhow(
    image_list: ImageList,
    certificate_of: EndorserCredentials,
    key: ec.EllipticCurvePrivateKey,
    digest: hashes.HashAlgorithm = hashes.SHA256(),
) -> bytes:
    """Signed without Slipway's checks: any certificate, any key, any digest."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(render_image_list(image_list))
        .add_signer(certificate_of.certificate, key, digest)  # type: ignore[arg-type]
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )


def test_a_list_slipway_signs_is_accepted_as_written(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    image_list = a_list(endorser)
    verified = accepted(sign_image_list(image_list, endorser), policy)
    assert verified.image_list == image_list
    assert verified.signer.slash() == ENDORSER_DN
    assert verified.issuer.slash() == CA_DN
    assert (verified.digest, verified.dropped) == ("sha256", ())


def test_the_trusted_endorser_ca_is_checked_when_given(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    accepted(message, replace(policy, endorser_ca=DistinguishedName.from_slash(CA_DN)))
    other_ca = replace(policy, endorser_ca=DistinguishedName.from_slash("/DC=org/CN=Other CA"))
    assert reasons(message, other_ca) == ["endorser-mismatch"]


def test_a_chain_through_an_intermediate_ca_the_signature_carries_is_trusted(
    ca: EndorsingCA, policy: TrustPolicy
) -> None:
    intermediate = EndorsingCA(
        name=grid_name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.COMMON_NAME, "Issuing CA")),
        parent=ca,
    )
    issued = intermediate.issue()
    with_chain = replace(issued, chain=(intermediate.certificate,))
    verified = accepted(sign_image_list(a_list(with_chain), with_chain), policy)
    assert verified.issuer.slash() == "/DC=org/CN=Issuing CA"
    assert reasons(sign_image_list(a_list(issued), issued), policy) == ["untrusted-chain"]


def test_a_signature_by_another_key_is_forged(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    assert reasons(signed_anyhow(a_list(endorser), endorser, forger), policy) == ["bad-signature"]


def test_a_look_alike_ca_is_not_trusted(endorser: EndorserCredentials, policy: TrustPolicy) -> None:
    impostor = EndorsingCA().issue()  # same names, other keys
    image_list = a_list(impostor)
    assert image_list.endorser == a_list(endorser).endorser
    assert reasons(sign_image_list(image_list, impostor), policy) == ["untrusted-chain"]


def test_a_list_from_another_endorser_is_refused(ca: EndorsingCA, policy: TrustPolicy) -> None:
    stranger = ca.issue(
        grid_name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.COMMON_NAME, "someone else"))
    )
    assert reasons(sign_image_list(a_list(stranger), stranger), policy) == ["endorser-mismatch"]


def test_a_list_claiming_another_endorser_than_its_signer_is_refused(
    ca: EndorsingCA, endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    stranger = ca.issue(grid_name((NameOID.COMMON_NAME, "someone else")))
    message = signed_anyhow(a_list(endorser), stranger, stranger.key)  # type: ignore[arg-type]
    assert reasons(message, policy) == ["endorser-mismatch", "endorser-mismatch"]


def test_tampered_content_does_not_match_its_digest(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    tampered = message.replace(b"Debian 12 minimal", b"Debian 12 minimaL", 1)
    assert tampered != message
    assert reasons(tampered, policy) == ["digest-mismatch"]


def test_an_added_line_ending_is_tampering_too(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    assert reasons(message.replace(b"}\r\n", b"}\r\n\r\n", 1), policy) == ["digest-mismatch"]


def test_lf_line_ends_are_read_as_crlf_as_smime_requires(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    accepted(message.replace(b"\r\n", b"\n"), policy)


def test_an_expired_list_is_refused(endorser: EndorserCredentials, policy: TrustPolicy) -> None:
    stale = a_list(endorser, expires=NOW - timedelta(minutes=1))
    assert reasons(sign_image_list(stale, endorser), policy) == ["expired"]


def test_expired_images_are_dropped_and_reported(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    old = an_image(identifier="old", expires=NOW - timedelta(days=1))
    verified = accepted(
        sign_image_list(a_list(endorser, images=(old, an_image())), endorser), policy
    )
    assert [i.identifier for i in verified.image_list.images] == [an_image().identifier]
    assert [i.identifier for i in verified.dropped] == ["old"]


def test_a_downgraded_version_is_refused(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser, version="20261001000000"), endorser)
    previous = PreviousAcceptance(a_list(endorser).identifier, "20261129120000")
    assert reasons(message, policy, previous=previous) == ["version-downgrade"]
    accepted(message, policy, previous=replace(previous, version="20261001000000"))


def test_a_changed_identifier_is_refused(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser, identifier="another-list"), endorser)
    previous = PreviousAcceptance(a_list(endorser).identifier, "1")
    assert reasons(message, policy, previous=previous) == ["identifier-changed"]


def test_an_expired_signer_certificate_is_untrusted(ca: EndorsingCA, policy: TrustPolicy) -> None:
    lapsed = ca.issue(not_after=NOW - timedelta(days=1))
    assert reasons(sign_image_list(a_list(lapsed), lapsed), policy) == ["untrusted-chain"]


def test_a_revoked_signer_is_refused(
    ca: EndorsingCA, endorser: EndorserCredentials, policy: TrustPolicy, tmp_path: Path
) -> None:
    (tmp_path / "ca" / "5a1b2c3d.r0").write_bytes(ca.crl([endorser.certificate]))
    revoking = replace(policy, anchors=load_ca_dir(tmp_path / "ca"))
    assert reasons(sign_image_list(a_list(endorser), endorser), revoking) == ["revoked"]
    (tmp_path / "ca" / "5a1b2c3d.r0").write_bytes(ca.crl([]))
    accepted(
        sign_image_list(a_list(endorser), endorser),
        replace(policy, anchors=load_ca_dir(tmp_path / "ca")),
    )


def test_a_stale_or_forged_crl_makes_the_chain_untrusted(
    ca: EndorsingCA, endorser: EndorserCredentials, policy: TrustPolicy, tmp_path: Path
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    (tmp_path / "ca" / "5a1b2c3d.r0").write_bytes(ca.crl([], next_update=NOW - timedelta(hours=1)))
    assert reasons(message, replace(policy, anchors=load_ca_dir(tmp_path / "ca"))) == [
        "untrusted-chain"
    ]
    (tmp_path / "ca" / "5a1b2c3d.r0").write_bytes(EndorsingCA().crl([]))  # same name, other key
    assert reasons(message, replace(policy, anchors=load_ca_dir(tmp_path / "ca"))) == [
        "untrusted-chain"
    ]


def test_either_name_of_the_signature_type_is_read(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    """application/pkcs7-signature is RFC 5751's name and OpenSSL's default;
    the x- form is what AppDB writes."""
    message = sign_image_list(a_list(endorser), endorser)
    for protocol in (b"application/pkcs7-signature", b"application/PKCS7-Signature"):
        accepted(message.replace(b"application/x-pkcs7-signature", protocol, 1), policy)
    other = message.replace(b"application/x-pkcs7-signature", b"application/pgp-signature", 1)
    assert reasons(other, policy) == ["malformed"]


def test_two_signers_are_refused(
    ca: EndorsingCA, endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    second = ca.issue()
    message = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(render_image_list(a_list(endorser)))
        .add_signer(endorser.certificate, endorser.key, hashes.SHA256())
        .add_signer(second.certificate, second.key, hashes.SHA256())
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    assert reasons(message, policy) == ["malformed"]


def test_a_signature_without_signed_attributes_is_refused(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(render_image_list(a_list(endorser)))
        .add_signer(endorser.certificate, endorser.key, hashes.SHA256())
        .sign(
            serialization.Encoding.SMIME,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.NoAttributes],
        )
    )
    assert reasons(message, policy) == ["malformed"]


def _signature_part(message: bytes) -> tuple[bytes, bytes]:
    match = re.search(rb"base64\r?\n.*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+)", message, re.S)
    assert match is not None
    return match.group(1), base64.b64decode(b"".join(match.group(1).split()))


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.replace(b"multipart/signed", b"multipart/mixed", 1),
        lambda m: m[: m.rindex(b"--")],  # no closing boundary
        lambda m: m.replace(
            b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: 7bit", 1
        ),
        lambda m: m.replace(_signature_part(m)[0], base64.encodebytes(b"\x30\x03\x02\x01\x01"), 1),
        lambda m: m.replace(_signature_part(m)[0], b"not base64 at all!", 1),
        lambda m: m.replace(_signature_part(m)[0], base64.encodebytes(b"\x30\x80" * 5000), 1),
    ],
    ids=[
        "not-signed",
        "unclosed",
        "not-base64-encoded",
        "not-signed-data",
        "bad-base64",
        "nested-ber",
    ],
)
def test_a_damaged_message_is_refused_cleanly(
    damage: object, endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = damage(sign_image_list(a_list(endorser), endorser))  # type: ignore[operator]
    assert reasons(message, policy)[0] in {"malformed", "unsigned"}


def test_a_huge_message_is_refused_before_it_is_split(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    from slipway.adapters.imagelists import MAX_MESSAGE_BYTES

    assert reasons(b"MIME-Version: 1.0\r\n" + b" " * MAX_MESSAGE_BYTES, policy) == ["too-large"]


def test_a_message_digest_of_another_type_is_refused_not_a_crash(
    endorser: EndorserCredentials, policy: TrustPolicy
) -> None:
    message = sign_image_list(a_list(endorser), endorser)
    encoded, der = _signature_part(message)
    # messageDigest's OID, its SET, then OCTET STRING (04) of 32 bytes: make it an INTEGER (02)
    oid = bytes.fromhex("06092a864886f70d010904")
    at = der.index(oid) + len(oid)
    assert der[at + 2 : at + 4] == b"\x04\x20"
    hostile = der[: at + 2] + b"\x02" + der[at + 3 :]
    damaged = message.replace(encoded, base64.encodebytes(hostile).replace(b"\n", b"\r\n"), 1)
    assert reasons(damaged, policy) == ["malformed"]
