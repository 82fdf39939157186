"""The composition root: the CLI, the API and the workers build their objects
here, from a :class:`~slipway.config.Settings` passed in explicitly."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine

from slipway.config import Settings
from slipway.services.catalog import CatalogService

__all__ = ["catalog_service", "engine_for"]


@cache
def engine_for(database_url: str) -> Engine:
    """One migrated engine per database URL and process."""
    from slipway.adapters.store.database import make_engine, migrate

    engine = make_engine(database_url)
    migrate(engine)
    return engine


def catalog_service(settings: Settings) -> CatalogService:
    from slipway.adapters.store.sql import SqlUnitOfWork

    engine = engine_for(settings.database_url)
    return CatalogService(lambda: SqlUnitOfWork(engine), settings.user)
