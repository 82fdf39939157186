"""The ``exoscale`` driver: Exoscale's compute through the official SDK's v2 client.

The SDK is imported here, and this module is imported only when an exoscale
cloud is used (see :class:`slipway.connectors.registry.CloudDriver`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from slipway.connectors.exoscale._api import (
    DEFAULT_ENDPOINT,
    ApiSettings,
    ExoscaleApi,
    timed_session,
)
from slipway.connectors.exoscale._errors import CREDENTIALS_HINT
from slipway.connectors.exoscale.connector import EXOSCALE_STATES, TOKEN_LABEL, ExoscaleConnector
from slipway.errors import CloudError

__all__ = ["EXOSCALE_STATES", "TOKEN_LABEL", "ExoscaleConnector", "connect", "settings_of"]


def settings_of(options: Mapping[str, Any]) -> ApiSettings:
    """The API settings among ``options``; durations in seconds."""
    defaults = ApiSettings()
    return ApiSettings(
        endpoint=str(options.get("endpoint") or DEFAULT_ENDPOINT),
        timeout=float(options.get("timeout", defaults.timeout)),
        attempts=max(1, int(options.get("max_attempts", defaults.attempts))),
        poll_interval=float(options.get("poll_interval", defaults.poll_interval)),
        operation_timeout=float(options.get("operation_timeout", defaults.operation_timeout)),
    )


def connect(cloud: str, options: Mapping[str, Any]) -> ExoscaleConnector:
    """An Exoscale connector for the zone named by ``region`` (the cloud
    definition's). From the operator's configuration only: ``api_key`` and
    ``api_secret`` (else ``EXOSCALE_API_KEY`` and ``EXOSCALE_API_SECRET`` from
    the environment; never from a definition), ``endpoint`` (the v2 API's URL,
    ``{zone}`` standing for the zone; default Exoscale's own), ``timeout``
    (per request, default 30 s), ``max_attempts`` (default 4), ``poll_interval``
    and ``operation_timeout`` (for asynchronous operations, default 1 s and 600 s).
    Nothing is sent until the connector is first used."""
    zone = str(options.get("region") or "")
    if not zone:
        raise CloudError("connect: the cloud names no zone", cloud=cloud,
                         hint="set the cloud definition's region, e.g. ch-gva-2")  # fmt: skip
    key = str(options.get("api_key") or os.environ.get("EXOSCALE_API_KEY", ""))
    secret = str(options.get("api_secret") or os.environ.get("EXOSCALE_API_SECRET", ""))
    if not key or not secret:
        raise CloudError("connect: no API key and secret", cloud=cloud, hint=CREDENTIALS_HINT)
    from exoscale.api.v2 import Client

    settings = settings_of(options)
    client = Client(key, secret, url=settings.url(zone))
    timed_session(client.http_client, settings.timeout)
    return ExoscaleConnector(cloud, ExoscaleApi(cloud, zone, client, settings))
