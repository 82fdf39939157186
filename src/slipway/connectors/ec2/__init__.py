"""The ``ec2`` driver: Amazon EC2 (or anything speaking its API) through boto3.

boto3 is imported here, and this module is imported only when an ec2 cloud is
used (see :class:`slipway.connectors.registry.CloudDriver`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.connectors.ec2._errors import translated
from slipway.connectors.ec2.connector import EC2_STATES, Ec2Connector

__all__ = ["EC2_STATES", "Ec2Connector", "connect"]

DEFAULT_MAX_ATTEMPTS = 8


def connect(cloud: str, options: Mapping[str, Any]) -> Ec2Connector:
    """An EC2 connector. ``options``: ``region`` (required), ``credentials``
    (the AWS profile the cloud definition names; ``default`` or none: boto3's
    usual chain, environment first — never inline keys) and, from the
    operator's configuration only, ``profile`` (overrides it), ``endpoint_url``,
    ``subnet_id``, ``max_attempts``
    (retry mode ``standard``, default 8), ``connect_timeout`` and
    ``read_timeout`` (seconds, default 10 and 30)."""
    import boto3
    from botocore.config import Config

    attempts = int(options.get("max_attempts", DEFAULT_MAX_ATTEMPTS))

    def config(max_attempts: int) -> Config:
        return Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=float(options.get("connect_timeout", 10)),
            # One connection per worker thread, kept: the default pool of 10
            # makes a busy worker reconnect on every call.
            max_pool_connections=int(options.get("max_pool_connections", 64)),
            read_timeout=float(options.get("read_timeout", 30)),
            user_agent_extra="slipway",
        )

    # "default" is what boto3 reads when no profile is named, after the
    # environment; naming it explicitly would fail where only AWS_* variables
    # hold the credentials (CI, containers).
    profile = options.get("profile") or options.get("credentials") or None
    if profile == "default":
        profile = None
    with translated(cloud, "connect"):
        session = boto3.session.Session(profile_name=profile)
        region, endpoint = options["region"], options.get("endpoint_url")
        client = session.client(
            "ec2", region_name=region, endpoint_url=endpoint, config=config(attempts)
        )
        # RunInstances is retried by the connector, which looks its token up first.
        create_client = session.client(
            "ec2", region_name=region, endpoint_url=endpoint, config=config(1)
        )
        ebs_client = session.client(
            "ebs", region_name=region, endpoint_url=endpoint, config=config(attempts)
        )
    return Ec2Connector(
        cloud,
        client,
        create_client=create_client,
        create_attempts=attempts,
        subnet_id=options.get("subnet_id"),
        ebs_client=ebs_client,
    )
