"""Where the platform may connect on a tenant's behalf: public internet addresses only, unless the operator
allows private ones. The sandbox's egress proxy and the alert webhooks (tenant-given URLs) both resolve a
host here, once, and connect to the address it returns, so a name cannot point them at the platform's own
services (Dagit, the API, Dagster's database, cloud metadata endpoints)."""

from __future__ import annotations

import ipaddress
import socket


class NotPublic(PermissionError):
    """The host resolves to no address the platform may reach for a tenant."""


def public_address(host: str, port: int, *, allow_private: bool = False) -> str:
    """The first address of ``host`` on the public internet (any address when ``allow_private``); raises
    ``NotPublic`` for loopback, private, link-local, reserved and multicast addresses, and ``OSError``
    when the host does not resolve."""
    for _family, _, _, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        ip = ipaddress.ip_address(addr[0])
        if allow_private or ip.is_global:
            return addr[0]
    raise NotPublic(f"{host}: not a public address")
