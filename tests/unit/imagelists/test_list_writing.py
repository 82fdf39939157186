"""Lists are written as AppDB writes them, and DNs compare as names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slipway.adapters.imagelists import parse_image_list, render_image_list
from slipway.adapters.imagelists.mime import canonical_lines, split_signed_message
from slipway.domain.endorsers import DistinguishedName

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imagelists"


def test_an_appdb_list_is_written_back_byte_for_byte() -> None:
    """AppDB's own signed content: its key order, string numbers, indents, CRLF."""
    signed = split_signed_message((FIXTURES / "cloudkeeper_imagelist01.signed.smime").read_bytes())
    assert render_image_list(parse_image_list(signed.payload)) == signed.payload


def test_keys_come_in_appdb_order_with_the_extra_appdb_fields_last() -> None:
    source = (FIXTURES / "cloudkeeper_structures_image_list10.json").read_bytes()
    written = json.loads(render_image_list(parse_image_list(source)))
    original = json.loads(source)
    assert written == original
    assert list(written["hv:imagelist"]) == list(original["hv:imagelist"])
    for mine, theirs in zip(
        written["hv:imagelist"]["hv:images"], original["hv:imagelist"]["hv:images"], strict=True
    ):
        assert list(mine["hv:image"]) == list(theirs["hv:image"])


def test_numbers_of_older_lists_are_written_as_appdb_strings() -> None:
    source = (FIXTURES / "hepixvmitrust_imagelist.json").read_bytes()
    image = json.loads(render_image_list(parse_image_list(source)))["hv:imagelist"]["hv:images"][0]
    assert image["hv:image"]["hv:size"] == "2147483648"
    assert "hv:format" not in image["hv:image"]  # absent stays absent


def test_written_lists_end_every_line_with_crlf() -> None:
    written = render_image_list(
        parse_image_list((FIXTURES / "hepixvmitrust_imagelist.json").read_bytes())
    )
    assert canonical_lines(written) == written
    assert b"\n" not in written.replace(b"\r\n", b"")


def test_a_slash_dn_keeps_slashes_and_plus_signs_inside_values() -> None:
    dn = DistinguishedName.from_slash("/DC=ch/DC=cern/OU=computers/CN=host/ce01.cern.ch+UID=x")
    assert dn.rdns[-1] == (("CN", "host/ce01.cern.ch"), ("UID", "x"))
    assert dn.slash() == "/DC=ch/DC=cern/OU=computers/CN=host/ce01.cern.ch+UID=x"


def test_dn_attribute_names_compare_by_meaning_and_values_exactly() -> None:
    assert DistinguishedName.from_slash("/C=DE/Email=a@b") == DistinguishedName.from_slash(
        "/c=DE/emailAddress=a@b"
    )
    assert DistinguishedName.from_slash("/C=DE/CN=a") != DistinguishedName.from_slash("/C=DE/CN=A")
    assert DistinguishedName.from_slash("/C=DE/CN=a") != DistinguishedName.from_slash("/CN=a/C=DE")


@pytest.mark.parametrize("text", ["", "CN=x,O=y", "/", "/nothing", "/=x"])
def test_text_that_is_no_slash_dn_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="DN"):
        DistinguishedName.from_slash(text)


def test_line_ends_become_crlf_and_a_run_of_crs_is_one_line_end() -> None:
    assert canonical_lines(b"a\r\r\nb\nc\r\rx\r\n") == b"a\r\nb\r\nc\r\rx\r\n"


def test_a_long_run_of_crs_is_canonicalised_in_linear_time() -> None:
    # A hostile list's signed part: megabytes of CR. The old pattern rescanned
    # the run from every position (hours for this size); the bound is generous.
    import threading

    data = b"\r" * 4_000_000 + b"\n"
    done: list[bytes] = []
    worker = threading.Thread(target=lambda: done.append(canonical_lines(data)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done and done[0] == b"\r\n"
