"""Asking an organization's warm dbt parser, starting it in the organization's sandbox when none runs.

A parser's record (its PID, start time and what it was started with) lives in the platform's folder,
out of tenant code's reach: only a process whose start time matches is ever signalled. Its socket lives
in the organization's root (the sandbox's one writable place), so whatever answers there is at most
that organization's own code; an answer that is not a plain success makes the caller parse the cold way.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from dalgo_core import layout, pids, unix_socket
from dalgo_core.sandbox.policy import Policy
from dalgo_core.sandbox.runner import SandboxUnavailable, mode, sandboxed

IDLE_ENV = "DALGO_DBT_PARSER_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 300.0
STARTUP_SECONDS = 60.0
SOCKET_FOLDER = ".dbt-parser"  # in the organization's root
_SERVER = Path(__file__).with_name("server.py")
_SOCKET_NAME = "dbt-parser.sock"  # server.SOCKET_NAME (the server imports nothing of the platform)


def idle_seconds() -> float:
    """How long a parser waits for its next request before it exits; 0 turns warm parsing off."""
    try:
        return max(0.0, float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def parse(policy: Policy, adapter: str, cwd: Path, env: dict[str, str], args: list[str], timeout: float) -> bool:
    """Run ``dbt <args>`` in the organization's warm parser (``policy.org``), in ``cwd`` with exactly ``env``.

    True when dbt succeeded there; False when it failed or no parser could be reached: the caller then
    runs dbt the cold way, which says what went wrong. Raises ``TimeoutError`` (the parser is stopped)
    when dbt took longer than ``timeout`` seconds."""
    if idle_seconds() <= 0:
        return False
    try:
        with _locked(policy.org):
            path = _running(policy, adapter)
    except (OSError, SandboxUnavailable, TimeoutError):
        return False
    request = json.dumps({"cwd": str(cwd), "env": env, "args": args}).encode() + b"\n"
    try:
        reply = _ask(path, request, timeout)
    except TimeoutError:
        stop(policy.org)
        raise
    except (OSError, ValueError):
        return False
    return reply == {"ok": True}


def stop(org: str) -> None:
    """Stop the organization's parser, if one runs (a deleted organization, a parse that timed out)."""
    with _locked(org):
        record = _read_record(org)
        if record is not None:
            _kill(record)
        _record_path(org).unlink(missing_ok=True)


def running_pid(org: str) -> int | None:
    """The PID of the organization's parser (its sandbox), if one runs."""
    record = _read_record(org)
    return record["pid"] if record is not None and _alive(record) else None


@contextlib.contextmanager
def _locked(org: str) -> Iterator[None]:
    with layout.lock_file(f"{org}.dbt-parser").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _record_path(org: str) -> Path:
    folder = layout.platform_dir() / "dbt-parsers"
    folder.mkdir(parents=True, exist_ok=True)
    return layout.inside(folder, f"{org}.json")


def _read_record(org: str) -> dict | None:
    try:
        record = json.loads(_record_path(org).read_text())
        return record if isinstance(record.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def _alive(record: dict) -> bool:
    return pids.alive(record["pid"]) and pids.start_time(record["pid"]) == record.get("start")


def _kill(record: dict) -> None:
    if _alive(record):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record["pid"], signal.SIGKILL)  # its own session: the sandbox and all inside


@functools.cache
def _server_source() -> str:
    return _SERVER.read_text()


def _fingerprint(policy: Policy, adapter: str) -> str:
    text = "\n".join([policy.to_json(), adapter, sys.executable, mode(), _server_source()])
    return hashlib.sha256(text.encode()).hexdigest()


def _running(policy: Policy, adapter: str) -> Path:
    """The socket of a parser started with ``policy``: the running one, or a new one (an earlier parser
    started with another policy, say before a project was added elsewhere, is stopped)."""
    folder = Path(policy.root) / SOCKET_FOLDER
    path = folder / _SOCKET_NAME
    fingerprint = _fingerprint(policy, adapter)
    record = _read_record(policy.org)
    if record is not None and record.get("fingerprint") == fingerprint and _alive(record) and path.exists():
        return path
    if record is not None:
        _kill(record)
    folder.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    proc = _spawn(policy, adapter, folder)
    record = {"pid": proc.pid, "start": pids.start_time(proc.pid), "fingerprint": fingerprint}
    tmp = _record_path(policy.org).with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(_record_path(policy.org))
    deadline = time.monotonic() + STARTUP_SECONDS
    while not path.exists():
        if proc.poll() is not None:
            raise OSError(f"the dbt parser exited at start ({proc.returncode})")
        if time.monotonic() > deadline:
            _kill(record)
            raise TimeoutError("the dbt parser did not start")
        time.sleep(0.05)
    return path


def _spawn(policy: Policy, adapter: str, folder: Path) -> subprocess.Popen:
    """Start the parser in ``policy``'s sandbox, from a thread that waits for it: the sandbox's files live
    while it runs, bubblewrap's ``--die-with-parent`` follows that thread, and it is reaped."""
    policy = replace(policy, read_only=(*policy.read_only, str(_SERVER)), cwd=str(folder), setenv={})
    argv = [sys.executable, "-I", str(_SERVER), str(folder), str(idle_seconds()), adapter]
    started = threading.Event()
    outcome: dict[str, object] = {}

    def supervise() -> None:
        env = policy.environment()
        try:
            with sandboxed(policy, argv, env) as args:
                proc = subprocess.Popen(
                    args,
                    env=env if mode() == "off" else {"PATH": env["PATH"]},
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                outcome["proc"] = proc
                started.set()
                proc.wait()
        except Exception as exc:  # handed to the starting caller
            outcome["error"] = exc
        finally:
            started.set()

    threading.Thread(target=supervise, name=f"dbt-parser-{policy.org}", daemon=True).start()
    started.wait()
    if "proc" not in outcome:
        raise outcome.get("error") or OSError("the dbt parser did not start")  # type: ignore[misc]
    return outcome["proc"]  # type: ignore[return-value]


def _ask(path: Path, request: bytes, timeout: float) -> dict:
    """Send one request and read its one-line answer."""
    with unix_socket.connect(path, timeout) as conn:
        conn.sendall(request)
        data = b""
        while not data.endswith(b"\n") and len(data) < 4096:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data)
    if not isinstance(reply, dict):
        raise ValueError("not an answer")
    return reply
