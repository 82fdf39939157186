"""What each driver's clouds cannot do, and why — known without importing a
cloud SDK, so ``clouds list``, the API and the Deploy dialog show a cloud's
real capabilities, whatever its definition claims.

Each connector declares its ``unsupported`` from this table, so the two
never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from slipway.domain.machines import Capability

__all__ = ["DRIVER_LIMITS", "limits_of"]

DRIVER_LIMITS: Mapping[str, Mapping[Capability, str]] = {
    "local": {},
    "ec2": {
        Capability.IMAGE_UPLOAD: (
            "EC2 imports images through an S3 bucket and the vmimport service role, "
            "which Slipway does not set up yet; register the AMI yourself"
        ),
    },
    "exoscale": {
        Capability.IMAGE_UPLOAD: (
            "Exoscale registers a template by downloading it from a URL, given with "
            "its MD5 checksum, rather than from an uploaded file; publish the qcow2 at "
            "a URL Exoscale can reach and register it with Exoscale's tools"
        ),
        Capability.CONSOLE_LOG: (
            "Exoscale's API offers an instance's console only as a VNC session "
            "(a console-proxy URL), not as text to read"
        ),
    },
    "openstack": {},
}


def limits_of(driver: str) -> Mapping[Capability, str]:
    """What clouds of ``driver`` cannot do (empty for an unknown driver)."""
    return DRIVER_LIMITS.get(driver, {})
