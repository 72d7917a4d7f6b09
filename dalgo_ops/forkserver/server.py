"""The fork server: imports Dagster once, freezes what it loaded, and forks a process per request.

Single-threaded on purpose (a process with threads cannot be forked safely): one ``selectors`` loop
accepts requests, forks, reaps children and tells each requester its child's PID and exit status. A
child starts a new session, dies with the fork server (``PR_SET_PDEATHSIG``), takes the requester's
standard streams, environment and folder, and runs ``dagster <argv>``. A requester that goes away takes
its child with it. See ``dalgo_ops.forkserver``.

    python -m dalgo_ops.forkserver.server SOCKET
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from dalgo_core import unix_socket

# What every forked code server would import anyway: Dagster, its CLI and its gRPC servers (by name: a
# module Dagster renames is only not preloaded).
PRELOAD = (
    "dagster",
    "dagster._cli",
    "dagster._grpc.proxy_server",
    "dagster._grpc.server",
    "dagster._grpc.client",
    "multiprocessing.spawn",  # its Python for run workers is read once, here: the real one
    # what Dagster's CLI imports as it configures its loggers (structlog's console renderer, with rich
    # and pygments) and gRPC's server and channel: otherwise each forked process imports them itself
    "structlog.dev",
    "structlog.stdlib",
    "grpc._server",
    "grpc._channel",
    # what a code server imports as it loads: the instance's storages (SQLite under ``dalgo up``,
    # PostgreSQL under ``dalgo serve``) with their migrations, the daemon's and scheduler's modules its
    # sensors use, the location's module (with everything organizations' definitions are built with)
    # and the embedded connectors' assets
    "dagster._core.instance.factory",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster_postgres",
    "alembic.config",
    "dagster._daemon.controller",
    "dagster._scheduler.scheduler",
    "dalgo_assets.locations",
    "dalgo_assets.ingestion.embedded.assets",
)


def dagster_cli() -> Callable[[], object]:
    """The ``dagster`` command's own entry point, as its console script calls it."""
    (script,) = entry_points(group="console_scripts", name="dagster")
    return script.load()


MAX_REQUEST = 1 << 20
_PR_SET_PDEATHSIG = 1


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    try:
        while not data.endswith(b"\n"):
            chunk, new_fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
            fds += new_fds
            if not chunk or len(data) + len(chunk) > MAX_REQUEST:
                raise ValueError("incomplete or oversized request")
            data += chunk
        request = json.loads(data)
        valid = isinstance(request, dict) and isinstance(request.get("argv"), list)
        if len(fds) != 3 or not valid or not isinstance(request.get("env"), dict):
            raise ValueError("a request is a JSON line with argv, env and cwd, and three descriptors")
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


def _run_child(request: dict, fds: list[int], parent: int) -> None:
    """In the forked child: become the requested ``dagster`` command; never returns."""
    code = 1
    try:
        os.setsid()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the fork server died before the line above
            os._exit(1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        os.chdir(request.get("cwd") or "/")
        stub = Path(sys.executable).with_name("dalgo-fork-python")
        if stub.exists():  # what a proxy starts its `dagster api grpc` with: forked too (client.python_main)
            sys.executable = str(stub)
        sys.argv = ["dagster", *(str(a) for a in request["argv"])]
        sys.modules["__main__"].__package__ = None  # click names the program from argv[0], as `dagster` does
        dagster_cli()()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class ForkServer:
    def __init__(self, path: Path):
        self.listener = unix_socket.listen(path)
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # child pid -> its requester
        self.requesters: dict[socket.socket, int | None] = {}  # requester -> its child (None: not yet)
        self.wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through the pipe
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "wakeup")

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def serve(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    conn, _ = self.listener.accept()
                    self.requesters[conn] = None
                    self.selector.register(conn, selectors.EVENT_READ, "requester")
                elif key.data == "wakeup":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_r, 4096)
                else:
                    self._requester_readable(key.fileobj)  # type: ignore[arg-type]
            self._reap()
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)

    def _requester_readable(self, conn: socket.socket) -> None:
        child = self.requesters.get(conn)
        if child is not None:  # a requester only ever closes: take its child with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)
            self._forget(conn)
            return
        try:
            request, fds = _read_request(conn)
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
            self._forget(conn)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self.selector.close()
            self.listener.close()
            for other in self.requesters:
                other.close()
            signal.set_wakeup_fd(-1)
            _run_child(request, fds, parent)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        self.requesters[conn] = pid
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")

    def _reap(self) -> None:
        while True:  # every exited child, a killed one whose requester is gone included
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                self.requesters[conn] = None
                self._forget(conn)

    def _forget(self, conn: socket.socket) -> None:
        child = self.requesters.pop(conn, None)
        if child is not None:
            self.children.pop(child, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        conn.close()


def main() -> None:
    path = Path(sys.argv[1])
    for module in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    dagster_cli()
    gc.collect()
    gc.freeze()  # the collector leaves what every child shares alone: its pages stay shared
    server = ForkServer(path)
    print(f"dalgo fork server: ready on {path} (pid {os.getpid()})", flush=True)
    try:
        server.serve()
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
