"""Running the dlt worker for one connection in the organization's sandbox, and reading what it says.

The job goes into a private folder of the organization's root (mode 0700, the worker's TMPDIR and
working folder too), wiped when the worker ends, so no secret outlives the run. Every line the worker or
dlt prints reaches the run's log with the connection's secrets (and the platform's environment values)
replaced by ``***``; a failure raises ``DltSyncError`` naming the organization and the connection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from dalgo_assets.ingestion import StreamResult
from dalgo_assets.ingestion.dlt.job import Job
from dalgo_assets.warehouse import WarehouseResource
from dalgo_core import sandbox
from dalgo_core.connectors.protocol import drain_stderr
from dalgo_core.layout import OutsideRoot
from dalgo_core.redact import redact
from dalgo_core.spec import ConnectionSpec, OrgSpec

WORKER = Path(__file__).with_name("worker.py")
LogFn = Callable[[str, str], None]  # (level, message)
_LEVELS = {"debug", "info", "warning", "error"}


class DltSyncError(Exception):
    """A sync or reset of a database or file connection that failed, naming the organization and connection."""

    def __init__(self, org: str, connection: str, message: str):
        super().__init__(f"organization '{org}', connection '{connection}': {message}")


class DltRun:
    """The worker's runs for one connection: ``sync`` of streams, ``reset`` of streams."""

    def __init__(self, spec: OrgSpec, connection: ConnectionSpec, warehouse: WarehouseResource, log: LogFn):
        self.spec, self.connection, self.warehouse = spec, connection, warehouse
        self.log = log

    def error(self, message: str) -> DltSyncError:
        return DltSyncError(self.spec.slug, self.connection.name, message)

    def sync(self, streams: list[str]) -> list[StreamResult]:
        result = self._run("sync", streams)
        schema = self.connection.destination_schema
        for rebuilt in result.get("rebuilt", []):
            for change in rebuilt["changes"]:
                self.log(
                    "warning",
                    f"table {rebuilt['table']}: column '{change['column']}' changed type from {change['old']} to "
                    f"{change['new']} at the source; the table is rebuilt: dropped, created with the new types, its "
                    f"state dropped, and stream '{rebuilt['stream']}' synced in full",
                )
        for name in result.get("dropped", []):
            self.log("warning", f"dropped {name} (rebuilt from the source; dbt builds its views again)")
        rows = result.get("rows", {})
        modes = {s.name: s.sync_mode for s in self.connection.streams}
        return [StreamResult(s, f"{schema}.{s.lower()}", modes[s], int(rows.get(s, 0))) for s in streams]

    def reset(self, streams: list[str]) -> list[str]:
        """Drop the streams' tables and state; what was done, one line each."""
        result = self._run("reset", streams)
        lines = [f"dropped {name}" for name in result.get("dropped", [])]
        lines += [f"dropped the state of stream '{s}'" for s in result.get("states", [])]
        if not lines:
            lines.append("nothing to drop: no table or state of these streams in the warehouse")
        lines.append(
            f"connection '{self.connection.name}': {', '.join(streams)} will be synced in full at the next sync"
        )
        return lines

    def _run(self, mode: str, streams: list[str]) -> dict[str, Any]:
        job = Job(self.spec, self.connection, self.warehouse)
        try:
            content, policy = job.build(mode, streams), job.policy(mode)
        except (LookupError, OutsideRoot, ValueError) as exc:
            raise self.error(str(exc)) from None
        tmp = Path(policy.root) / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="dlt-", dir=tmp))
        os.chmod(workdir, 0o700)
        try:
            job_path = workdir / "job.json"
            fd = os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(content))
            policy = replace(
                policy,
                read_only=(*policy.read_only, str(WORKER)),
                setenv={**policy.setenv, "TMPDIR": str(workdir)},
                cwd=str(workdir),
            )
            return self._execute(policy, [sys.executable, "-I", str(WORKER), str(job_path)], job.secrets)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, policy: sandbox.Policy, argv: list[str], secrets: list[str]) -> dict[str, Any]:
        env = policy.environment()
        stderr: deque[str] = deque(maxlen=40)
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            with sandbox.sandboxed(policy, argv, env) as args:
                proc = subprocess.Popen(
                    args,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env=env if sandbox.mode() == "off" else {"PATH": env["PATH"]},
                    cwd=policy.cwd,
                )
                reader = threading.Thread(target=drain_stderr, args=(proc, stderr), daemon=True)
                reader.start()
                assert proc.stdout is not None
                for line in proc.stdout:
                    try:
                        message = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        self.log("debug", redact(line.decode(errors="replace").rstrip(), secrets))
                        continue
                    if "log" in message:
                        level = message["log"] if message["log"] in _LEVELS else "info"
                        self.log(level, redact(str(message.get("message", "")), secrets))
                    elif "result" in message:
                        result = message["result"]
                    elif "error" in message:
                        error = redact(str(message["error"]), secrets)
                        self.log("debug", redact(str(message.get("detail", "")), secrets))
                proc.wait()
                reader.join(timeout=5)
        except sandbox.SandboxUnavailable as exc:
            raise self.error(str(exc)) from None
        for line in stderr:
            self.log("debug", redact(line, secrets))
        if error is not None:
            raise self.error(error)
        if proc.returncode != 0 or result is None:
            tail = redact("\n".join(list(stderr)[-15:]), secrets)
            raise self.error(f"the dlt worker exited with code {proc.returncode}" + (f": {tail}" if tail else ""))
        return result
