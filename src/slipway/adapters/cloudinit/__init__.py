"""Validate cloud-config user data against cloud-init's own JSON schema.

The schema is a vendored copy of Debian 12's (cloud-init 22.4, see
``SCHEMA-LICENSE.md``), so validation needs neither cloud-init on the host nor
the network, and matches what the guest will accept. Beyond the schema, top-level
keys the schema does not name are rejected: cloud-init 22.4 ignores them
silently, which turns a typo into a machine that is never contextualised.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml

from slipway.errors import InputError

__all__ = ["SCHEMA_FILE", "validate_user_data"]

SCHEMA_FILE = "schema-cloud-config-v1.json"


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _only_describes_keys(part: dict[str, Any]) -> bool:
    """A part of the schema that checks nothing but the keys it names (and
    that the document is a mapping, which is checked first anyway)."""
    return set(part) <= {"type", "properties"} and part.get("type", "object") == "object"


@functools.lru_cache(maxsize=64)
def _validator(keys: frozenset[str]) -> Any:
    """A validator for documents with these top-level keys: the schema's
    ``allOf`` without the parts (one per cloud-init module) that only describe
    keys the document does not have, which cannot fail and were most of the
    check's time. The documents of one image's runs share their keys."""
    import jsonschema

    schema = _schema()
    kept = []
    for part in schema["allOf"]:
        ref = part.get("$ref", "")
        definition = schema["$defs"].get(ref.rsplit("/", 1)[-1], {}) if ref else part
        if _only_describes_keys(definition) and not keys & set(definition.get("properties", {})):
            continue
        kept.append(part)
    return jsonschema.Draft4Validator({**schema, "allOf": kept})


@functools.cache
def _known_keys() -> frozenset[str]:
    schema = _schema()
    keys: set[str] = set()
    for part in schema["allOf"]:
        ref = part.get("$ref", "")
        definition = schema["$defs"].get(ref.rsplit("/", 1)[-1], {}) if ref else part
        keys.update(definition.get("properties", {}))
    return frozenset(keys)


def validate_user_data(text: str) -> None:
    """Raise :class:`InputError` naming every problem when ``text`` is not valid
    ``#cloud-config`` user data. The message never quotes values (recipes
    may hold secrets), only key paths."""
    if not text.startswith("#cloud-config\n"):
        raise InputError("user data must start with a '#cloud-config' line")
    try:
        doc = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise InputError(f"user data is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise InputError("user data must be a mapping of cloud-config keys")
    problems = [f"unknown top-level key {k!r}" for k in sorted(set(doc) - _known_keys())]
    validator = _validator(frozenset(doc))
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        # validator_value comes from the schema, never from the user data
        expected = json.dumps(error.validator_value)
        expected = expected if len(expected) <= 80 else expected[:77] + "..."
        problems.append(f"{where}: fails the schema's check {error.validator}={expected}")
    if problems:
        raise InputError(
            "user data is not valid cloud-config: " + "; ".join(problems),
            hint="checked against cloud-init 22.4's schema",
        )
