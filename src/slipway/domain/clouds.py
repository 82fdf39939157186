"""Clouds as Slipway knows them: a driver, a region, capabilities, a catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLOUD_DRIVERS", "Cloud"]

CLOUD_DRIVERS = ("local", "openstack", "ec2", "exoscale")
"""Driver names a cloud definition may use; the connector registry implements them."""


@dataclass(frozen=True)
class Cloud:
    """One place VMs run. ``name`` is the short name definitions use
    (``exoscale-ch-gva``); ``module`` the definition it came from."""

    name: str
    driver: str
    catalog: str
    region: str = ""
    security_groups: bool = True
    image_upload: bool = True
    module: str = ""
    description: str = ""
    endpoint: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
