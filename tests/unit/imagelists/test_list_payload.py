"""Reading list payloads: what real lists hold is accepted, and a bad field
is refused with its name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from slipway.adapters.imagelists import parse_image_list
from slipway.adapters.imagelists import payload as payload_module
from slipway.adapters.imagelists.mime import split_signed_message
from slipway.domain.endorsers import DistinguishedName
from slipway.errors import ImageListRejected

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imagelists"
UNSIGNED = FIXTURES / "cloudkeeper_imagelist01.unsigned.json"


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(UNSIGNED.read_bytes())
    return loaded


def refusal(doc: object) -> ImageListRejected:
    with pytest.raises(ImageListRejected) as caught:
        parse_image_list(json.dumps(doc).encode())
    return caught.value


@pytest.mark.parametrize(
    "name",
    [
        "cloudkeeper_imagelist01.unsigned.json",
        "cloudkeeper_structures_image_list10.json",
        "hepixvmitrust_imagelist.json",
    ],
)
def test_every_unsigned_fixture_parses(name: str) -> None:
    image_list = parse_image_list((FIXTURES / name).read_bytes())
    assert image_list.identifier and image_list.version and image_list.images
    assert all(i.size > 0 and len(i.sha512) == 128 for i in image_list.images)


@pytest.mark.parametrize(
    "name",
    [
        "cloudkeeper_imagelist01.signed.smime",
        "cloudkeeper_imagelist_invalid.signed.smime",
        "hepixvmitrust_README_signed_example.smime",
    ],
)
def test_every_signed_fixture_parses(name: str) -> None:
    message = split_signed_message((FIXTURES / name).read_bytes())
    assert parse_image_list(message.payload).images


def test_a_size_is_read_from_appdb_strings_and_older_integers() -> None:
    appdb = parse_image_list(UNSIGNED.read_bytes())
    older = parse_image_list((FIXTURES / "hepixvmitrust_imagelist.json").read_bytes())
    assert appdb.images[0].size == 121243136
    assert older.images[0].size == 2147483648


def test_appdb_fields_are_read_into_their_values() -> None:
    image_list = parse_image_list(
        (FIXTURES / "cloudkeeper_structures_image_list10.json").read_bytes()
    )
    image = image_list.images[0]
    assert (image.format, image.hypervisor, image.arch) == ("OVA", "KVM", "x86_64")
    assert (image.ram_minimum, image.ram_recommended) == (512, 1024)
    assert (image.core_minimum, image.core_recommended) == (1, 4)
    assert (image.appid, image.os_name, image.os_version) == ("993", "Scientific Linux", "6.0")
    assert image.base_mpuri and image.base_mpuri.startswith("https://appdb.somewhere.net/")
    assert image_list.images[1].ram_minimum is None
    assert image_list.vo == "some1.vo.net"
    assert image_list.endorser.dn == DistinguishedName.from_slash(
        "/DC=XXX/DC=YYY/C=ZZZ/O=Hosts/O=AA.net/CN=some.unknown.source"
    )
    assert image_list.expires.year == 2499


def test_fields_the_format_does_not_name_are_kept_when_plain() -> None:
    doc = document()
    image = doc["hv:imagelist"]["hv:images"][0]["hv:image"]
    image["ad:traffic_delegate"] = "yes"
    image["ad:nested"] = {"a": 1}
    doc["hv:imagelist"]["ad:extra_count"] = 3
    image_list = parse_image_list(json.dumps(doc).encode())
    assert image_list.images[0].extras == (("ad:traffic_delegate", "yes"),)
    assert image_list.extras == (("ad:extra_count", 3),)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("dc:identifier",), "dc:identifier"),
        (("hv:version",), "hv:version"),
        (("dc:date:expires",), "dc:date:expires"),
        (("hv:images",), "hv:images"),
        (("hv:endorser", "hv:x509", "hv:dn"), "hv:endorser.hv:x509.hv:dn"),
        (("hv:images", 1, "hv:image", "hv:uri"), "hv:images[1].hv:image.hv:uri"),
        (
            ("hv:images", 0, "hv:image", "sl:checksum:sha512"),
            "hv:images[0].hv:image.sl:checksum:sha512",
        ),
    ],
)
def test_a_missing_field_is_named(path: tuple[str | int, ...], field: str) -> None:
    doc = document()
    holder: Any = doc["hv:imagelist"]
    for step in path[:-1]:
        holder = holder[step]
    del holder[path[-1]]
    error = refusal(doc)
    assert (error.reason, error.field) == ("malformed", field)
    assert field in error.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hv:size", [1]),
        ("hv:size", "12 GB"),
        ("hv:size", -1),
        ("hv:size", True),
        ("hv:size", "9" * 30),
        ("hv:ram_minimum", 1.5),
        ("sl:checksum:sha512", "not hex"),
        ("dc:date:expires", "next tuesday"),
        ("dc:title", {"en": "x"}),
    ],
)
def test_a_wrongly_typed_image_field_is_named(key: str, value: object) -> None:
    doc = document()
    doc["hv:imagelist"]["hv:images"][0]["hv:image"][key] = value
    error = refusal(doc)
    assert (error.reason, error.field) == ("malformed", f"hv:images[0].hv:image.{key}")


@pytest.mark.parametrize(
    "doc",
    [[], {"imagelist": {}}, {"hv:imagelist": []}, {"hv:imagelist": {"hv:images": {}}}],
)
def test_a_document_of_another_shape_is_refused(doc: object) -> None:
    assert refusal(doc).reason == "malformed"


def test_an_endorser_dn_not_in_slash_form_is_named() -> None:
    doc = document()
    doc["hv:imagelist"]["hv:endorser"]["hv:x509"]["hv:ca"] = "CN=SOME TEST CA,DC=YYY"
    error = refusal(doc)
    assert error.field == "hv:endorser.hv:x509.hv:ca"


def test_text_that_is_not_json_is_malformed() -> None:
    for text in (b"{", b"\xff\xfe{}", b'{"hv:imagelist": NaN}'):
        with pytest.raises(ImageListRejected) as caught:
            parse_image_list(text)
        assert caught.value.reason == "malformed"


def test_a_huge_list_is_refused_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def decoding(*args: object, **kwargs: object) -> object:
        raise AssertionError("decoded")

    monkeypatch.setattr(payload_module.json, "loads", decoding)
    with pytest.raises(ImageListRejected) as caught:
        parse_image_list(b" " * (payload_module.MAX_LIST_BYTES + 1))
    assert caught.value.reason == "too-large"


def test_absurdly_many_images_are_refused_before_they_are_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    many = b'{"hv:image": {}},' * (payload_module.MAX_IMAGES + 1)
    monkeypatch.setattr(payload_module.json, "loads", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(ImageListRejected) as caught:
        parse_image_list(b'{"hv:imagelist": {"hv:images": [' + many + b"]}}")
    assert caught.value.reason == "too-large"


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    deep = b'{"hv:imagelist": {"ad:x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}"
    with pytest.raises(ImageListRejected) as caught:
        parse_image_list(deep)
    assert caught.value.reason == "malformed"
