"""Verifying a signed list: the one function sync and ``slipway imagelist
verify`` call.

Every check runs that can (so a list that is both forged and untrusted is
reported for both); the first problem in the order of
:class:`~slipway.domain.imagelists.RejectionReason` gives the rejection's
``reason``. A list only parses when its JSON is sound, and only structural
faults (no signature, an unreadable one) stop the checks early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slipway.adapters.imagelists.cms import check_signature
from slipway.adapters.imagelists.mime import is_signed_message, split_signed_message
from slipway.adapters.imagelists.payload import MAX_LIST_BYTES, parse_image_list, rejected
from slipway.adapters.imagelists.trust import TrustAnchors, chain_problems, distinguished_name
from slipway.domain.endorsers import DistinguishedName
from slipway.domain.imagelists import (
    ImageList,
    ListedImage,
    PreviousAcceptance,
    Problem,
    RejectionReason,
    drop_expired_images,
    succession_problems,
)
from slipway.errors import ImageListRejected

__all__ = ["MAX_MESSAGE_BYTES", "TrustPolicy", "VerifiedImageList", "verify_image_list"]

MAX_MESSAGE_BYTES = MAX_LIST_BYTES + 1024 * 1024
"""The largest signed message read, in bytes: a list and its signature."""

# RFC 5751 names the type application/pkcs7-signature (OpenSSL's default since
# 1.0); the x- form is what OpenSSL calls "old MIME" and what AppDB and
# cryptography write. Which of the two carries no weight: both are read.
_PROTOCOLS = ("application/pkcs7-signature", "application/x-pkcs7-signature")
_ORDER = list(RejectionReason)


@dataclass(frozen=True)
class TrustPolicy:
    """Whom to believe: the CAs, the endorser the subscriber trusts (subject
    and, optionally, issuer) and whether lists signed with SHA-1 are accepted."""

    anchors: TrustAnchors
    endorser_dn: DistinguishedName
    endorser_ca: DistinguishedName | None = None
    legacy: bool = False


@dataclass(frozen=True)
class VerifiedImageList:
    """An accepted list, without its expired images (in ``dropped``); who
    signed it, the CA that issued the signer's certificate, and the digest."""

    image_list: ImageList
    dropped: tuple[ListedImage, ...]
    signer: DistinguishedName
    issuer: DistinguishedName
    digest: str


def verify_image_list(
    message: bytes,
    policy: TrustPolicy,
    *,
    now: datetime,
    previous: PreviousAcceptance | None = None,
) -> VerifiedImageList:
    """Check the S/MIME ``message`` against ``policy`` at ``now`` (UTC) and,
    when given, against the ``previous`` acceptance from the same place.
    Raises :class:`ImageListRejected` with every problem found."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise rejected(
            RejectionReason.TOO_LARGE,
            f"the list is {len(message)} bytes; at most {MAX_MESSAGE_BYTES} are read",
        )
    if not is_signed_message(message):
        parse_image_list(message)
        raise rejected(RejectionReason.UNSIGNED, "the list is plain JSON, without a signature")
    signed = split_signed_message(message)
    if signed.protocol not in _PROTOCOLS:
        raise rejected(
            RejectionReason.MALFORMED,
            f"multipart/signed with protocol {signed.protocol or '(none)'}, not PKCS#7",
        )
    problems: list[Problem] = []
    image_list = parse_image_list(signed.payload)
    evidence = check_signature(signed.signature, signed.signed, legacy=policy.legacy)
    problems.extend(p for p in evidence.problems if p not in problems)
    if image_list.is_expired(now):
        problems.append(
            Problem(
                RejectionReason.EXPIRED,
                f"the list expired at {image_list.expires:%Y-%m-%dT%H:%M:%SZ}",
            )
        )
    intermediates = tuple(c for c in evidence.certificates if c != evidence.signer)
    problems.extend(chain_problems(evidence.signer, intermediates, policy.anchors, now))
    signer = distinguished_name(evidence.signer.subject)
    issuer = distinguished_name(evidence.signer.issuer)
    problems.extend(_endorser_problems(image_list, signer, issuer, policy))
    problems.extend(succession_problems(previous, image_list))
    if problems:
        problems.sort(key=lambda p: _ORDER.index(p.reason))
        first = problems[0]
        raise ImageListRejected(
            str(first.reason),
            first.detail,
            problems=[(str(p.reason), p.detail) for p in problems],
        )
    kept, dropped = drop_expired_images(image_list, now)
    return VerifiedImageList(kept, dropped, signer, issuer, evidence.digest)


def _endorser_problems(
    image_list: ImageList,
    signer: DistinguishedName,
    issuer: DistinguishedName,
    policy: TrustPolicy,
) -> list[Problem]:
    claimed = image_list.endorser
    checks = [
        (signer, claimed.dn, "the signer is {0}, but the list's hv:dn is {1}"),
        (issuer, claimed.ca, "the signer's issuer is {0}, but the list's hv:ca is {1}"),
        (signer, policy.endorser_dn, "the signer is {0}, not the trusted endorser {1}"),
    ]
    if policy.endorser_ca is not None:
        checks.append((issuer, policy.endorser_ca, "the signer's issuer is {0}, not {1}"))
    return [
        Problem(RejectionReason.ENDORSER_MISMATCH, text.format(found, expected))
        for found, expected, text in checks
        if found != expected
    ]
