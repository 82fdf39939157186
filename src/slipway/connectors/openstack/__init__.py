"""The ``openstack`` driver: any OpenStack cloud through openstacksdk.

openstacksdk is imported here, and this module is imported only when an
openstack cloud is used (see :class:`slipway.connectors.registry.CloudDriver`).
Credentials come from ``clouds.yaml`` (and its ``secure.yaml``), by cloud name:
passwords, application credentials, or OIDC access tokens
(``auth_type: v3oidcaccesstoken``, as EGI Check-in issues them). A definition
only ever names the clouds.yaml entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slipway.connectors.openstack._errors import translated
from slipway.connectors.openstack.connector import NOVA_STATES, OpenStackConnector
from slipway.errors import CloudError

if TYPE_CHECKING:
    from openstack.config.cloud_region import CloudRegion

__all__ = ["NOVA_STATES", "OpenStackConnector", "cloud_region", "connect"]

DEFAULT_API_TIMEOUT_S = 60.0


def cloud_region(cloud: str, options: Mapping[str, Any]) -> CloudRegion:
    """The clouds.yaml entry for ``cloud``, with its credentials resolved (no
    request is made). ``options``: ``credentials`` (the entry the definition
    names), and from the operator's configuration only ``cloud`` (overrides
    it), ``clouds_yaml`` (the file; default: openstacksdk's search path,
    ``OS_CLIENT_CONFIG_FILE`` first), ``access_token_file`` (an OIDC access
    token kept fresh by an agent, read now, replacing ``auth.access_token``),
    ``region`` and ``api_timeout`` (seconds, default 60)."""
    from openstack import config

    entry = str(options.get("cloud") or options.get("credentials") or cloud)
    files = [str(options["clouds_yaml"])] if options.get("clouds_yaml") else None
    overrides: dict[str, Any] = {
        "api_timeout": float(options.get("api_timeout", DEFAULT_API_TIMEOUT_S))
    }
    if options.get("region"):
        overrides["region_name"] = str(options["region"])
    token_file = options.get("access_token_file")
    if token_file:
        try:
            overrides["auth"] = {"access_token": Path(str(token_file)).read_text().strip()}
        except OSError as exc:
            raise CloudError(
                f"cannot read the access token file: {exc}", cloud=cloud,
                hint="set access_token_file in the operator's [clouds] table to a readable file",
            ) from exc  # fmt: skip
    with translated(cloud, f"clouds.yaml entry {entry!r}"):
        # Environment variables (OS_*) are not a cloud of their own here: the
        # operator's configuration names the entry.
        loader = config.OpenStackConfig(config_files=files, load_envvars=False)
        return loader.get_one(cloud=entry, **overrides)


def connect(cloud: str, options: Mapping[str, Any]) -> OpenStackConnector:
    """An OpenStack connector (see :func:`cloud_region` for ``options``), plus
    ``network`` (the network new machines join, by name or id; default: the
    one network the project sees) and ``create_attempts`` (default 4)."""
    from openstack.connection import Connection

    region = cloud_region(cloud, options)
    with translated(cloud, "connect"):
        connection = Connection(config=region)
    return OpenStackConnector(
        cloud,
        connection,
        network=str(options["network"]) if options.get("network") else None,
        create_attempts=int(options.get("create_attempts", 4)),
    )
