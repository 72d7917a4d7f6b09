"""Finding the platform's processes from outside, as an operator would."""

from __future__ import annotations

import psutil


def listening_process(port: int) -> psutil.Process:
    """The process listening on a local TCP port (an organization's code server: the proxy the fork
    server forked, which supervisord knows only through its ``dalgo-fork``)."""
    found = {c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    if len(found) != 1:
        raise LookupError(f"{len(found)} processes listen on port {port}")
    return psutil.Process(found.pop())
