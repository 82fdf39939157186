"""The server's own network is not the user's to reach: a host a user names
(an image URL, a registry, a list) must resolve to global addresses only,
unless the operator allows private ones (``fetch_private_addresses``)."""

from __future__ import annotations

import ipaddress
import socket

from slipway.errors import InputError

__all__ = ["refuse_private_host"]


def refuse_private_host(host: str, *, field: str = "url") -> None:
    """Raise :class:`InputError` (naming ``field``) when ``host`` does not
    resolve, or resolves to a loopback, link-local, private or reserved address."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise InputError(f"{host}: cannot be resolved: {exc.strerror}", field=field) from None
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if not ip.is_global:
            raise InputError(
                f"{host} is a {_kind(ip)} address ({ip}): the server does not fetch from "
                "or send to its own network",
                field=field,
                hint="the operator allows it with fetch_private_addresses = yes",
            )


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    return "private or reserved"
