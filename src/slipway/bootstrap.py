"""The composition root: the CLI, the API and the workers build their objects
here, from a :class:`~slipway.config.Settings` passed in explicitly."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from slipway.config import Settings
from slipway.services.access import AccessService
from slipway.services.catalog import CatalogService

if TYPE_CHECKING:
    from slipway.entrypoints.api.deps import Services

__all__ = ["access_service", "catalog_service", "engine_for", "web_services"]


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


def web_services(settings: Settings) -> Services:
    """What ``slipway serve`` runs on: the catalog per user and access control."""
    from slipway.adapters.security.passwords import Argon2Hasher
    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.entrypoints.api.deps import Services
    from slipway.services.access import AccessService

    engine = engine_for(settings.database_url)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    return Services(
        catalog=lambda user: CatalogService(uow, user),
        access=AccessService(uow, Argon2Hasher()),
    )


def access_service(settings: Settings) -> AccessService:
    from slipway.adapters.security.passwords import Argon2Hasher
    from slipway.adapters.store.sql import SqlUnitOfWork

    engine = engine_for(settings.database_url)
    return AccessService(lambda: SqlUnitOfWork(engine), Argon2Hasher())
