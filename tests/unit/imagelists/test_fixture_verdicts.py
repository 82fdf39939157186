"""Each real signed list is accepted or refused for the reason its README gives."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slipway.adapters.imagelists import TrustPolicy, load_ca_dir, verify_image_list
from slipway.domain.endorsers import DistinguishedName
from slipway.errors import ImageListRejected

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imagelists"
CLOUDKEEPER_ENDORSER = "/DC=XXX/DC=YYY/C=ZZZ/O=Hosts/O=AA.net/CN=some.unknown.source"
HEPIX_ENDORSER = "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge"
# The fixtures' certificates were valid on this day (the cloudkeeper CA until 2028).
WHEN = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "cloudkeeper_test_ca_9da13359.0.pem", tmp_path / "9da13359.0")
    return tmp_path


def verdict(name: str, ca_dir: Path, endorser: str, *, legacy: bool = False) -> list[str]:
    policy = TrustPolicy(load_ca_dir(ca_dir), DistinguishedName.from_slash(endorser), legacy=legacy)
    with pytest.raises(ImageListRejected) as caught:
        verify_image_list((FIXTURES / name).read_bytes(), policy, now=WHEN)
    assert caught.value.reason == caught.value.problems[0][0]
    return [reason for reason, _ in caught.value.problems]


def test_cloudkeeper_list_has_a_good_chain_but_another_endorser(ca_dir: Path) -> None:
    reasons = verdict("cloudkeeper_imagelist01.signed.smime", ca_dir, CLOUDKEEPER_ENDORSER)
    assert set(reasons) == {"endorser-mismatch"}


def test_cloudkeeper_list_is_accepted_by_a_chain_only_check_of_ours(ca_dir: Path) -> None:
    """What a chain-only verifier sees: signature, digest and chain are fine."""
    reasons = verdict(
        "cloudkeeper_imagelist01.signed.smime",
        ca_dir,
        "/C=AU/ST=Some-State/O=Internet Widgits Pty Ltd",
    )
    assert reasons == ["endorser-mismatch", "endorser-mismatch"]  # only hv:dn and hv:ca


def test_the_invalid_cloudkeeper_list_is_refused_for_its_digest_and_its_chain(
    ca_dir: Path,
) -> None:
    reasons = verdict("cloudkeeper_imagelist_invalid.signed.smime", ca_dir, CLOUDKEEPER_ENDORSER)
    assert reasons[0] == "digest-mismatch"
    assert "untrusted-chain" in reasons
    assert "bad-signature" not in reasons  # the signature over its attributes is sound


def test_the_hepix_example_is_refused_as_legacy_without_the_switch(ca_dir: Path) -> None:
    reasons = verdict("hepixvmitrust_README_signed_example.smime", ca_dir, HEPIX_ENDORSER)
    assert reasons[0] == "legacy-algorithm"


def test_the_hepix_example_is_refused_as_expired_with_the_switch(ca_dir: Path) -> None:
    reasons = verdict(
        "hepixvmitrust_README_signed_example.smime", ca_dir, HEPIX_ENDORSER, legacy=True
    )
    assert reasons[0] == "expired"
    assert "legacy-algorithm" not in reasons
    assert "digest-mismatch" not in reasons and "bad-signature" not in reasons
    assert "endorser-mismatch" not in reasons  # its signer is its hv:dn


def test_an_unsigned_list_is_refused_as_unsigned(ca_dir: Path) -> None:
    reasons = verdict("cloudkeeper_imagelist01.unsigned.json", ca_dir, CLOUDKEEPER_ENDORSER)
    assert reasons == ["unsigned"]
