"""Running the dlt worker (``worker/``) in the organization's sandbox, and reading what it says.

The job goes into a private folder of the organization's root (mode 0700, the worker's TMPDIR and
working folder too), wiped when the worker ends, so no secret outlives the run. Every line the worker or
dlt prints reaches the caller's log with the source's secrets (and the platform's environment values)
replaced by ``***``. A sync's worker asks one question, the source's catalog: ``DltRun`` answers it as
the connection's schema change policy says (``dalgo_core.connectors.changes``, as for Airbyte
connections). A failure raises ``WorkerFailed``, or for a connection ``DltSyncError`` naming the
organization and the connection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import orjson

from dalgo_assets.ingestion import StreamResult
from dalgo_assets.ingestion.dlt.job import Job, SourceJob
from dalgo_assets.warehouse import WarehouseResource
from dalgo_core import sandbox
from dalgo_core.connectors import changes
from dalgo_core.connectors.protocol import drain_stderr
from dalgo_core.egress import Unreachable
from dalgo_core.layout import OutsideRoot, scratch_dir
from dalgo_core.redact import redact
from dalgo_core.spec import ConnectionSpec, OrgSpec

WORKER = Path(__file__).with_name("worker")
# the worker package imported from its folder alone (nothing beside it on sys.path, with or without the sandbox)
START = (
    "import importlib.util as u, sys; folder = sys.argv.pop(1); "
    "spec = u.spec_from_file_location('worker', folder + '/__init__.py', submodule_search_locations=[folder]); "
    "sys.modules['worker'] = u.module_from_spec(spec); spec.loader.exec_module(sys.modules['worker']); "
    "from worker.main import main; main()"
)
LogFn = Callable[[str, str], None]  # (level, message)
Answer = Callable[[dict[str, Any]], dict[str, Any]]  # a question of the worker (its catalog) -> the answer
_LEVELS = {"debug", "info", "warning", "error"}


class WorkerFailed(Exception):
    """The worker could not do its job; the message (redacted) says why."""


def run_worker(job: SourceJob, mode: str, content: dict[str, Any], log: LogFn, answer: Answer | None = None) -> Any:
    """Run the worker on a job in its sandbox; its result."""
    try:
        policy = job.policy(mode)
    except (LookupError, OutsideRoot, ValueError) as exc:
        raise WorkerFailed(str(exc)) from None
    try:
        workdir = scratch_dir(policy.root, "dlt-")
    except OutsideRoot as exc:
        raise WorkerFailed(str(exc)) from None
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
        argv = [sys.executable, "-I", "-c", START, str(WORKER), str(job_path)]
        return _Conversation(job.secrets, log, answer).run(policy, argv)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Conversation:
    """One worker's lines: logs, a question answered on its stdin, then its result or error."""

    def __init__(self, secrets: list[str], log: LogFn, answer: Answer | None):
        self.secrets, self.log, self.answer = secrets, log, answer
        self.result: Any = None
        self.error: str | None = None

    def run(self, policy: sandbox.Policy, argv: list[str]) -> Any:
        env = policy.environment()
        stderr: deque[str] = deque(maxlen=40)
        try:
            with sandbox.sandboxed(policy, argv, env) as args:
                proc = subprocess.Popen(
                    args,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.PIPE,
                    env=env if sandbox.mode() == "off" else {"PATH": env["PATH"]},
                    cwd=policy.cwd,
                )
                reader = threading.Thread(target=drain_stderr, args=(proc, stderr), daemon=True)
                reader.start()
                assert proc.stdout is not None and proc.stdin is not None
                with proc.stdin:
                    for line in proc.stdout:
                        self._read(line, proc.stdin)
                proc.wait()
                reader.join(timeout=5)
        except sandbox.SandboxUnavailable as exc:
            raise WorkerFailed(str(exc)) from None
        except Unreachable as exc:  # the source's or warehouse's host: on the platform's network, or no such host
            raise WorkerFailed(f"cannot connect: {exc}") from None
        for line in stderr:
            self.log("debug", redact(line, self.secrets))
        if self.error is not None:
            raise WorkerFailed(self.error)
        if proc.returncode != 0 or self.result is None:
            tail = redact("\n".join(list(stderr)[-15:]), self.secrets)
            raise WorkerFailed(f"the dlt worker exited with code {proc.returncode}" + (f": {tail}" if tail else ""))
        return self.result

    def _read(self, line: bytes, stdin: IO[bytes]) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.log("debug", redact(line.decode(errors="replace").rstrip(), self.secrets))
            return
        if "log" in message:
            level = message["log"] if message["log"] in _LEVELS else "info"
            self.log(level, redact(str(message.get("message", "")), self.secrets))
        elif "catalog" in message:
            reply = self.answer(message["catalog"]) if self.answer is not None else {}
            stdin.write(orjson.dumps(reply) + b"\n")
            stdin.flush()
        elif "result" in message:
            self.result = message["result"]
        elif "error" in message:
            self.error = redact(str(message["error"]), self.secrets)
            self.log("debug", redact(str(message.get("detail", "")), self.secrets))


class DltSyncError(Exception):
    """A sync or reset of a database or file connection that failed, naming the organization and connection."""

    def __init__(self, org: str, connection: str, message: str):
        super().__init__(f"organization '{org}', connection '{connection}': {message}")


class DltRun:
    """The worker's runs for one connection: ``sync`` of streams, ``reset`` of streams."""

    def __init__(
        self,
        spec: OrgSpec,
        connection: ConnectionSpec,
        warehouse: WarehouseResource,
        log: LogFn,
        report: Callable[[changes.Outcome], None] | None = None,
    ):
        self.spec, self.connection, self.warehouse = spec, connection, warehouse
        self.log = log
        self.report = report  # the outcome of the schema change policy, per stream (changes.observations)

    def error(self, message: str) -> DltSyncError:
        return DltSyncError(self.spec.slug, self.connection.name, message)

    def sync(self, streams: list[str]) -> list[StreamResult]:
        held: list[str] = []

        def answer(catalog: dict[str, Any]) -> dict[str, Any]:
            """The connection's policy on the source's catalog: stop, or the streams and columns to load."""
            try:
                outcome = changes.follow_policy(self.spec.slug, self.connection, catalog, self.log, self.report)
            except changes.SchemaChangesHeld as exc:
                held.append(str(exc))
                return {"stop": True}
            columns = {}
            if self.connection.schema_change_policy == "ignore":  # new columns are not loaded
                columns = {s: list(schema.get("properties") or {}) for s, schema in outcome.applied.streams.items()}
            return {"skip": outcome.skipped, "columns": columns}

        result = self._run("sync", streams, answer)
        if held:
            raise self.error(held[0])
        self._log_rebuilt(result)
        rows, schema = result.get("rows", {}), self.connection.destination_schema
        modes = {s.name: s.sync_mode for s in self.connection.streams}
        return [StreamResult(s, f"{schema}.{s.lower()}", modes[s], int(rows[s])) for s in streams if s in rows]

    def _log_rebuilt(self, result: dict[str, Any]) -> None:
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

    def _run(self, mode: str, streams: list[str], answer: Answer | None = None) -> dict[str, Any]:
        job = Job(self.spec, self.connection, self.warehouse)
        try:
            content = job.build(mode, streams)
            return run_worker(job, mode, content, self.log, answer)
        except (LookupError, OutsideRoot, ValueError, WorkerFailed) as exc:
            raise self.error(str(exc)) from None
