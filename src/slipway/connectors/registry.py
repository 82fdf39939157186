"""The one list of cloud drivers. Each names the module that builds its
connector, imported only when a cloud of that driver is used, so cloud SDKs
never load for ``slipway --help``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from slipway.connectors.base import Connector
from slipway.errors import InputError

__all__ = ["CloudDriver", "ConnectorFactory", "unavailable_reason"]


class ConnectorFactory(Protocol):
    def __call__(self, cloud: str, options: Mapping[str, Any]) -> Connector: ...


class CloudDriver(StrEnum):
    LOCAL = "local"
    EC2 = "ec2"
    OPENSTACK = "openstack"
    EXOSCALE = "exoscale"

    @classmethod
    def parse(cls, name: str) -> CloudDriver:
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(d.value for d in cls)
            raise InputError(
                f"unknown cloud driver {name!r}", hint=f"known drivers: {known}"
            ) from None

    @property
    def module(self) -> str:
        """The module whose ``connect(cloud, options)`` builds the connector."""
        return f"slipway.connectors.{self.value}"

    def factory(self) -> ConnectorFactory:
        factory: ConnectorFactory = importlib.import_module(self.module).connect
        return factory

    def connect(self, cloud: str, options: Mapping[str, Any]) -> Connector:
        """A connector for ``cloud``; ``options`` are the driver's settings
        (region, endpoint, data folder …)."""
        return self.factory()(cloud, options)


def unavailable_reason(driver: str) -> str | None:
    """Why a cloud of ``driver`` cannot be used here (None: it can): a
    definition saved by a release that knew a driver this one does not."""
    try:
        CloudDriver(driver)
    except ValueError:
        return f"unknown cloud driver {driver!r}"
    return None
