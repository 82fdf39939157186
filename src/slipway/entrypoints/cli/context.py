"""What every command needs: the settings for this invocation and the services
built from them through the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from slipway.config import Settings, load_settings
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService

__all__ = ["Invocation", "catalog", "identity", "settings"]


@dataclass
class Invocation:
    """Global options given on the command line (None: not given)."""

    overrides: dict[str, str | None] = field(default_factory=dict)
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(overrides=self.overrides)
        return self._settings


def _invocation(ctx: typer.Context) -> Invocation:
    root = ctx.find_root()
    if not isinstance(root.obj, Invocation):
        root.obj = Invocation()
    return root.obj


def settings(ctx: typer.Context) -> Settings:
    return _invocation(ctx).settings()


def catalog(ctx: typer.Context) -> CatalogService:
    from slipway.bootstrap import catalog_service

    return catalog_service(settings(ctx))


def identity(ctx: typer.Context) -> IdentityService:
    from slipway.bootstrap import identity_service

    return identity_service(settings(ctx))
