"""``slipway image check`` and ``slipway image sanitise``."""

from __future__ import annotations

from slipway.entrypoints.cli.image import image_app

__all__ = ["image_app"]
