"""The outside half of the sandbox's network: one unix socket per allowed endpoint, relayed to it, and an
egress proxy (HTTP CONNECT and plain HTTP) that refuses the platform's own addresses.

Tenant code has its own network namespace; the only ways out are the sockets made here, which exist for
the length of one call. The egress proxy and the relay of each endpoint (the organization's warehouse, a
database source: hosts a tenant gives) resolve the host themselves at each connection and refuse loopback, private,
link-local and reserved addresses unless the operator allows them (``dalgo_core.egress``: networks in
``DALGO_PRIVATE_NETWORKS``; any address with ``DALGO_SANDBOX_ALLOW_PRIVATE=1``, for development), then
connect to the address they checked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

from dalgo_core.egress import tenant_address
from dalgo_core.sandbox.forward import pipe

PROXY_PORT = 3128


def _splice(a: socket.socket, b: socket.socket) -> None:
    threading.Thread(target=pipe, args=(a, b), daemon=True).start()
    threading.Thread(target=pipe, args=(b, a), daemon=True).start()


class Relays:
    """Unix sockets in ``folder``, each relayed by threads of this process; closed on exit."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._sockets: list[socket.socket] = []

    def _listen(self, name: str, handle: Callable[[socket.socket], None]) -> str:
        path = str(self.folder / name)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(64)
        self._sockets.append(server)

        def accept() -> None:
            while True:
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                threading.Thread(target=handle, args=(client,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return path

    def endpoint(self, index: int, host: str, port: int) -> str:
        def handle(client: socket.socket) -> None:
            try:
                upstream = socket.create_connection((tenant_address(host, port), port), timeout=30)
                upstream.settimeout(None)
            except OSError:
                client.close()
                return
            _splice(client, upstream)

        return self._listen(f"endpoint-{index}", handle)

    def egress(self) -> str:
        return self._listen("egress", _proxy)

    def close(self) -> None:
        for s in self._sockets:
            s.close()


def _proxy(client: socket.socket) -> None:
    """One proxied request: ``CONNECT host:port`` is tunnelled, an absolute-URI request forwarded."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = client.recv(4096)
        if not chunk:
            client.close()
            return
        head += chunk
    line, _, rest = head.partition(b"\r\n")
    try:
        method, target, version = line.decode("latin-1").split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            host, port = host.strip("[]"), int(port)
        else:
            scheme, _, remainder = target.partition("://")
            if scheme != "http":
                raise ValueError(target)
            hostport, _, path = remainder.partition("/")
            host, _, port = hostport.partition(":")
            port = int(port or 80)
        upstream = socket.create_connection((tenant_address(host, port), port), timeout=30)
        upstream.settimeout(None)
    except (ValueError, OSError, PermissionError) as exc:
        client.sendall(f"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nX-Dalgo-Refused: {exc}\r\n\r\n".encode())
        client.close()
        return
    if method == "CONNECT":
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    else:
        upstream.sendall(f"{method} /{path} {version}\r\n".encode("latin-1") + rest)
    _splice(client, upstream)
