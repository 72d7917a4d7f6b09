"""Where the platform may connect on a tenant's behalf: public internet addresses only, unless the operator
allows private ones. Every host a tenant gives is held to this rule where the platform connects to it: the
sandbox's egress proxy, the relays to a tenant's databases (its PostgreSQL warehouse, a database source),
the platform's own connections to that warehouse (the warehouse test, data statistics, loaders) and the
alert webhooks. Each resolves the host here, once, and connects to the address it returns, so a name
cannot point it at the platform's own services (Dagit, the API, Dagster's database, cloud metadata
endpoints) or at anything else on the platform's network.

The operator widens the rule with ``DALGO_PRIVATE_NETWORKS`` (networks, comma separated, such as
``10.20.0.0/16``: where tenant databases live inside the platform's network) or, on a development machine
only, ``DALGO_SANDBOX_ALLOW_PRIVATE=1`` (any address, loopback included).
"""

from __future__ import annotations

import ipaddress
import os
import socket

ALLOW_PRIVATE_ENV = "DALGO_SANDBOX_ALLOW_PRIVATE"
NETWORKS_ENV = "DALGO_PRIVATE_NETWORKS"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Unreachable(OSError):
    """A host the platform does not connect to for a tenant (``NotPublic`` or ``NoSuchHost``)."""


class NotPublic(Unreachable, PermissionError):
    """The host resolves to no address the platform may reach for a tenant."""


class NoSuchHost(Unreachable):
    """The host name resolves nowhere (or cannot be a name)."""


def private_networks(text: str | None = None) -> tuple[Network, ...]:
    """The networks of ``DALGO_PRIVATE_NETWORKS`` (or ``text``); ValueError naming a malformed one."""
    text = os.environ.get(NETWORKS_ENV, "") if text is None else text
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{NETWORKS_ENV}: {item!r} is not a network (write 10.20.0.0/16 or fd00::/8)") from None
    return tuple(networks)


def operator_networks() -> tuple[Network, ...]:
    """The operator's networks; none while the setting is malformed (``status`` names it at the start)."""
    try:
        return private_networks()
    except ValueError:
        return ()


def public_address(host: str, port: int, *, allow_private: bool = False, networks: tuple[Network, ...] = ()) -> str:
    """The first address of ``host`` on the public internet or in ``networks`` (any address when
    ``allow_private``); raises ``NotPublic`` for loopback, private, link-local, reserved and multicast
    addresses outside them, and ``OSError`` when the host does not resolve (or cannot be a name)."""
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address as a URL writes it
        host = host[1:-1]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:  # an empty or overlong label ("a..b"): no name at all
        raise socket.gaierror(socket.EAI_NONAME, "not a host name") from None
    for _family, _, _, _, addr in found:
        ip = ipaddress.ip_address(addr[0])
        if allow_private or ip.is_global or any(ip in network for network in networks):
            return addr[0]
    raise NotPublic(f"{host}: not a public address")


def tenant_address(host: str, port: int) -> str:
    """The address to connect to for a host a tenant gave (a database, a proxied web request), under the
    operator's rule (``DALGO_PRIVATE_NETWORKS``, ``DALGO_SANDBOX_ALLOW_PRIVATE``). ``NotPublic`` says
    what the operator can set; ``NoSuchHost`` names a host that does not resolve."""
    allow_private = os.environ.get(ALLOW_PRIVATE_ENV) == "1"
    try:
        return public_address(host, port, allow_private=allow_private, networks=operator_networks())
    except NotPublic:
        raise NotPublic(
            f"{host}: not a public address; the platform connects to a tenant's hosts on the public internet "
            f"only (an operator allows private networks with {NETWORKS_ENV})"
        ) from None
    except socket.gaierror as exc:
        raise NoSuchHost(f"{host}: the host name does not resolve ({exc.strerror})") from None


def status() -> str:
    """One line for the start of ``dalgo up`` / ``dalgo serve``: where the platform connects for tenants."""
    if os.environ.get(ALLOW_PRIVATE_ENV) == "1":
        return (
            f"WARNING: {ALLOW_PRIVATE_ENV}=1: tenants' hosts may be any address, the platform's own included; "
            "for development only"
        )
    try:
        networks = private_networks()
    except ValueError as exc:
        return f"ERROR: {exc}; tenants' hosts are held to public addresses until it is mended"
    allowed = " and ".join(["public addresses", *map(str, networks)])
    return f"tenants' hosts (databases, web requests, webhooks): {allowed}"
