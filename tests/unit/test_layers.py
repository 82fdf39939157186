"""The layers point inwards: the domain uses the standard library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import slipway.domain

DOMAIN = Path(slipway.domain.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_domain_imports_nothing_outside_the_standard_library() -> None:
    offenders = {}
    for path in DOMAIN.rglob("*.py"):
        outside = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] not in sys.stdlib_module_names
            and not name.startswith("slipway.domain")
        }
        if outside:
            offenders[path.name] = sorted(outside)
    assert offenders == {}


def test_services_do_not_import_entrypoints() -> None:
    services = DOMAIN.parent / "services"
    for path in services.rglob("*.py"):
        assert not any(n.startswith("slipway.entrypoints") for n in imported_modules(path)), path
