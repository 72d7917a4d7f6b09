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


def code_server_processes(port: int) -> list[psutil.Process]:
    """An organization's code server: the proxy listening on ``port`` and the ``dagster api grpc`` it
    started, found by the Unix socket the proxy named for it (forked by the fork server, that server is
    not the proxy's child; its ``dalgo-fork-python`` is)."""
    proxy = listening_process(port)
    found = [proxy]
    sockets = {c.laddr: c.pid for c in psutil.net_connections("unix") if c.laddr and c.pid}
    for child in proxy.children(recursive=True):
        try:
            args = child.cmdline()
        except (psutil.ZombieProcess, psutil.NoSuchProcess):  # a server a reload replaced, not yet reaped
            continue
        if "--socket" in args and (pid := sockets.get(args[args.index("--socket") + 1])) is not None:
            found.append(psutil.Process(pid))
        found.append(child)
    return list(dict.fromkeys(found))
