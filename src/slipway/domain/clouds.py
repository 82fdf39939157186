"""Clouds as Slipway knows them: a driver, a region, capabilities, a catalog.

A cloud definition says which cloud it is, never how the server reaches it:
binaries, folders, endpoints and every other connector option are the
operator's configuration (``docs/security.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CLOUD_DRIVERS", "LOCAL_IMAGE_ID", "Cloud", "local_image_id_problem"]

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
    credentials: str = ""
    """The name of credentials the operator keeps for this cloud (an AWS
    profile, a clouds.yaml entry …); never the credentials themselves."""


LOCAL_IMAGE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
"""A native image id on the local cloud: the name of a local image store entry."""


def local_image_id_problem(image_id: str) -> str | None:
    """Why ``image_id`` cannot name a local image store entry, or ``None``."""
    if LOCAL_IMAGE_ID.match(image_id):
        return None
    return (
        f"{image_id!r} is not a local image store name (lower-case letters, digits, "
        "'.', '_' and '-', starting with a letter or digit; no paths)"
    )
