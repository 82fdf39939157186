"""``oci://`` references: what is read from them, what is refused and why,
and which scheme a registry is spoken to in."""

from __future__ import annotations

import pytest

from slipway.adapters.oci import OciReference, parse_reference
from slipway.adapters.oci.reference import is_loopback, registry_url
from slipway.errors import InputError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "oci://registry.egi.eu/egi_vm_images/ubuntu:22.04",
            OciReference("registry.egi.eu", "egi_vm_images/ubuntu", "22.04"),
        ),
        ("oci://registry.egi.eu/ubuntu", OciReference("registry.egi.eu", "ubuntu", "latest")),
        (
            f"oci://127.0.0.1:5000/a/b/c@{DIGEST}",
            OciReference("127.0.0.1:5000", "a/b/c", None, DIGEST),
        ),
        (
            f"oci://localhost:5000/vo/img:1.0@{DIGEST}",
            OciReference("localhost:5000", "vo/img", "1.0", DIGEST),
        ),
        ("oci://[::1]:5000/img:v1", OciReference("[::1]:5000", "img", "v1")),
        ("OCI://host/a.b_c__d---e/f:_tag", OciReference("host", "a.b_c__d---e/f", "_tag")),
        ("oci://host/img:" + "T" * 128, OciReference("host", "img", "T" * 128)),
    ],
)
def test_a_reference_names_host_repository_tag_and_digest(
    text: str, expected: OciReference
) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("https://registry.egi.eu/ubuntu:22.04", "starts with oci://"),
        ("registry.egi.eu/ubuntu", "starts with oci://"),
        ("oci://registry.egi.eu", "no repository"),
        ("oci://registry.egi.eu/", "no repository"),
        ("oci:///ubuntu", "the host ''"),
        ("oci://bad_host/ubuntu", "the host 'bad_host'"),
        ("oci://host:port/ubuntu", "port that is not a number"),
        ("oci://host:0/ubuntu", "the port 0"),
        ("oci://host:70000/ubuntu", "the port 70000"),
        ("oci://[nonsense]:5000/ubuntu", "not an IPv6 address"),
        ("oci://host/Ubuntu", "the repository 'Ubuntu'"),
        ("oci://host/ubuntu/", "the repository 'ubuntu/'"),
        ("oci://host/a//b", "the repository 'a//b'"),
        ("oci://host/-a", "the repository '-a'"),
        ("oci://host/a.-b", "the repository 'a.-b'"),
        ("oci://host/a___b", "the repository 'a___b'"),
        ("oci://host/" + "a/" * 128 + "a", "over 255 characters"),
        ("oci://host/ubuntu:", "the tag ''"),
        ("oci://host/ubuntu:.hidden", "the tag '.hidden'"),
        ("oci://host/ubuntu:" + "t" * 129, "is not one"),
        ("oci://host/ubuntu@sha256:abc", "the digest 'sha256:abc'"),
        (f"oci://host/ubuntu@{DIGEST.upper()}", "is not sha256"),
        ("oci://host/ubuntu@sha512:" + "ab" * 64, "algorithm 'sha512'"),
        ("oci://host/ubuntu@", "the digest ''"),
    ],
)
def test_a_bad_reference_is_refused_naming_the_part_at_fault(text: str, named: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_reference(text)
    assert named in refused.value.message
    assert refused.value.message.startswith(text)
    assert refused.value.field == "REFERENCE"


def test_a_reference_reads_back_as_written() -> None:
    for text in ("oci://h:1/a/b:t", f"oci://h/a@{DIGEST}", f"oci://[::1]:5/a:t@{DIGEST}"):
        assert str(parse_reference(text)) == text


def test_pinning_a_digest_keeps_the_tag_and_checks_the_digest() -> None:
    reference = parse_reference("oci://h/a:t")
    assert reference.with_digest(DIGEST) == OciReference("h", "a", "t", DIGEST)
    assert reference.with_digest(DIGEST).manifest_key == DIGEST
    assert reference.manifest_key == "t"
    with pytest.raises(InputError, match="not sha256"):
        reference.with_digest("md5:00")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("LOCALHOST", True),
        ("[::1]:5000", True),
        ("registry.egi.eu", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.org", False),
    ],
)
def test_loopback_hosts_are_told_apart(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_for_loopback_https_elsewhere_unless_the_operator_says() -> None:
    local, remote = parse_reference("oci://[::1]:5000/a"), parse_reference("oci://reg.example/a")
    assert registry_url(local) == "http://[::1]:5000"
    assert registry_url(remote) == "https://reg.example"
    assert registry_url(remote, plain_http=True) == "http://reg.example"
    assert registry_url(local, plain_http=False) == "https://[::1]:5000"
