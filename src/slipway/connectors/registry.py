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
from slipway.errors import InputError, Unsupported

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
    def module(self) -> str | None:
        """The module whose ``connect(cloud, options)`` builds the connector;
        ``None`` for a driver not available yet."""
        return {
            CloudDriver.LOCAL: "slipway.connectors.local",
            CloudDriver.EC2: "slipway.connectors.ec2",
            CloudDriver.EXOSCALE: "slipway.connectors.exoscale",
            CloudDriver.OPENSTACK: "slipway.connectors.openstack",
        }.get(self)

    @property
    def unavailable(self) -> str | None:
        """Why clouds of this driver cannot be used here, or None."""
        if self.module is None:
            return f"the {self.value} driver is not available yet"
        return None

    def factory(self) -> ConnectorFactory:
        if self.module is None:
            raise Unsupported(
                f"the {self.value} driver is not available yet",
                cloud=self.value,
                hint="use the local, ec2 or exoscale driver for now",
            )
        factory: ConnectorFactory = importlib.import_module(self.module).connect
        return factory

    def connect(self, cloud: str, options: Mapping[str, Any]) -> Connector:
        """A connector for ``cloud``; ``options`` are the driver's settings
        (region, endpoint, data folder …)."""
        return self.factory()(cloud, options)


def unavailable_reason(driver: str) -> str | None:
    """Why a cloud of ``driver`` cannot be used here (None: it can)."""
    try:
        return CloudDriver(driver).unavailable
    except ValueError:
        return f"unknown cloud driver {driver!r}"
