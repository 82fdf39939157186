"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imagekit_support import EXAMPLE_RECIPE, build_unavailable_reason, cached_build


@pytest.fixture(scope="session")
def built_image() -> Path:
    """The qcow2 built from examples/recipes/debian-12-minimal.yaml, cached by
    recipe hash. Read-only: copy it before changing anything."""
    reason = build_unavailable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the example image: {reason}")
    return cached_build(EXAMPLE_RECIPE)
