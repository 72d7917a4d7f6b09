"""``dalgo-fork``: run ``dagster <args>`` as a process forked by the fork server, as if it ran here
(and ``dalgo-fork-python``, the same for the ``python -m dagster api grpc`` a forked proxy starts).

It hands the fork server its arguments, environment, folder and standard streams, forwards every
signal it gets to the forked process, and exits with that process's status; if the fork server is not
there (not started, stopped, or this host does not use one), it runs ``dagster`` itself. A supervisor
(supervisord, a shell) sees one ordinary process whatever happens. Imports nothing of Dagster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dalgo_core import unix_socket

SOCKET_ENV = "DALGO_FORKSERVER_SOCKET"
WAIT_FOR_SERVER_ENV = "DALGO_FORKSERVER_WAIT_SECONDS"  # a fork server starting beside its first requesters
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _lines(conn: socket.socket):
    data = b""
    while True:
        while b"\n" in data:
            line, data = data.split(b"\n", 1)
            yield json.loads(line)
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return
        data += chunk


def _server(path: Path) -> socket.socket | None:
    deadline = time.monotonic() + float(os.environ.get(WAIT_FOR_SERVER_ENV, "30"))
    while True:
        try:
            return unix_socket.connect(path, None)
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)


def _exec(name: str, args: list[str]) -> None:
    """Become ``name`` (beside this Python: ``dagster``, or the Python itself) with ``args``."""
    path = str(Path(sys.executable).with_name(name)) if name != "python" else sys.executable
    os.execv(path, [path, *args])


def _until_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _forked(args: list[str], here: Callable[[], None]) -> None:
    """Run ``dagster <args>`` forked by the fork server, or ``here()`` without one; never returns."""
    where = os.environ.get(SOCKET_ENV)
    conn = _server(Path(where)) if where else None
    if conn is None:
        here()
        return
    request = {"argv": args, "env": dict(os.environ), "cwd": os.getcwd()}
    socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
    replies = _lines(conn)
    first = next(replies, None)
    if not first or "pid" not in first:
        sys.exit(f"dalgo-fork: the fork server refused: {(first or {}).get('error', 'no answer')}")
    pid = int(first["pid"])
    for sig in FORWARDED:  # to its process group, as a supervisor signals this one's
        signal.signal(sig, lambda number, _frame: os.killpg(pid, number))
    for reply in replies:
        if "exit" in reply:
            code = int(reply["exit"])
            sys.exit(code if code >= 0 else 128 - code)
    # the fork server went away (its children die with it): make sure, then fail so a supervisor restarts
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if not _until_gone(pid, 10):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    sys.exit(1)


def main() -> None:
    """``dalgo-fork <dagster arguments>``: what supervisord runs for an organization's code server."""
    args = sys.argv[1:]
    _forked(args, lambda: _exec("dagster", args))


def python_main() -> None:
    """``dalgo-fork-python``: the Python a forked code server names as its own (``sys.executable``), so
    the ``python -m dagster api grpc`` its proxy starts is forked too; anything else it is asked to run
    (a run worker, a subprocess) runs on the real Python, unchanged."""
    args = sys.argv[1:]
    if args[:4] == ["-m", "dagster", "api", "grpc"]:
        _forked(args[2:], lambda: _exec("python", args))
    _exec("python", args)


if __name__ == "__main__":
    main()
