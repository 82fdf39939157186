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
    "local": {
        Capability.IMAGE_FROM_URL: "the local cloud stores image files; download the file first",
        Capability.IMAGE_SHARING: "the local cloud has no projects to share an image with",
        Capability.IMAGE_STREAMING: (
            "the local image store takes a finished file by a hard link, at no cost"
        ),
    },
    "ec2": {
        Capability.IMAGE_FROM_URL: "EC2 does not fetch images from a URL; upload the file",
        Capability.IMAGE_STREAMING: ("Slipway sends EC2 a finished file, as EBS snapshot blocks"),
    },
    "exoscale": {
        Capability.IMAGE_UPLOAD: (
            "Exoscale registers a template by downloading it from a URL, given with "
            "its MD5 checksum, rather than from an uploaded file; publish the qcow2 at "
            "a URL Exoscale can reach and register it with Exoscale's tools"
        ),
        Capability.IMAGE_SHARING: (
            "Exoscale templates belong to one organization and cannot be shared with another"
        ),
        Capability.IMAGE_STREAMING: "Exoscale downloads templates itself, from a URL",
        Capability.CONSOLE_LOG: (
            "Exoscale's API offers an instance's console only as a VNC session "
            "(a console-proxy URL), not as text to read"
        ),
    },
    "openstack": {
        Capability.IMAGE_FROM_URL: (
            "Slipway uploads the file to Glance itself rather than using Glance's "
            "web-download import, which many clouds turn off"
        ),
    },
}


def limits_of(driver: str) -> Mapping[Capability, str]:
    """What clouds of ``driver`` cannot do (empty for an unknown driver)."""
    return DRIVER_LIMITS.get(driver, {})
