"""Running a connector as an Airbyte-protocol CLI: ``spec``, ``check``, ``discover``, ``read``.

(A sync does not run ``spec``: ``check`` validates the config against the connector's spec itself; the
API reads the spec once per connector version to render its form and validate configurations.)

Each call runs ``<connector> <command> --config ...`` in the organization's sandbox
(``dalgo_core.sandbox``: its root writable, the connector's environment read-only, the internet through
the egress proxy, nothing of the platform's), in a private folder of the organization's root (mode 0700,
also the process's TMPDIR) that holds the config with its secrets and is wiped afterwards, so no secret
outlives the sync. Output is one JSON message per line, parsed with orjson as it streams: RECORD and STATE
messages go to the caller, LOG and TRACE messages to the log callback; a TRACE ERROR or a non-zero exit
raises ``ConnectorError`` with the connector's own message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dalgo_core import layout, sandbox

LogFn = Callable[[str, str], None]  # (level, message)

_LEVELS = {"FATAL": "error", "ERROR": "error", "WARN": "warning", "WARNING": "warning", "INFO": "info"}


class ConnectorError(Exception):
    """The connector failed; the message is the connector's own."""


def _ignore(level: str, message: str) -> None:
    pass


class ConnectorProcess:
    """One connector executable and the private folder its calls share (config, catalog, state)."""

    def __init__(self, executable: Path, config: Mapping[str, Any], policy: sandbox.Policy, log: LogFn = _ignore):
        self.executable = executable
        self.log = log
        self._discovering: _Running | None = None
        self.workdir = layout.scratch_dir(policy.root, "airbyte-")
        # the connector's own environment (its venv) read-only; it reads and writes in its folder only
        self.policy = sandbox.Policy(
            **{
                **policy.__dict__,
                "read_only": (*policy.read_only, str(executable.parent.parent)),
                "setenv": {**policy.setenv, "TMPDIR": str(self.workdir), "DO_NOT_TRACK": "1"},
                "cwd": str(self.workdir),
                "egress": True,
            }
        )
        self.config_path = self._write("config.json", config)

    def __enter__(self) -> ConnectorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._discovering is not None:
            self._discovering.stop()
            self._discovering = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _write(self, name: str, content: Any) -> Path:
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(content))
        return path

    # -- commands ----------------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """The connector's specification (``connectionSpecification``, ``documentationUrl``, ...)."""
        for msg in self.messages("spec"):
            if msg.get("type") == "SPEC":
                return dict(msg.get("spec") or {})
        raise ConnectorError("the connector's spec returned no specification")

    def check(self) -> None:
        """Raise ConnectorError with the connector's message unless the connection check succeeds."""
        for msg in self.messages("check", "--config", str(self.config_path)):
            if msg.get("type") == "CONNECTION_STATUS":
                status = msg.get("connectionStatus") or {}
                if status.get("status") != "SUCCEEDED":
                    raise ConnectorError(status.get("message") or "the connection check failed")
                return
        raise ConnectorError("the connector's check reported no connection status")

    def start_discover(self) -> None:
        """Start ``discover`` now, to run alongside ``check`` (each start imports the CDK: seconds)."""
        if self._discovering is None:
            self._discovering = self._spawn("discover", "--config", str(self.config_path))

    def discover(self) -> dict[str, dict[str, Any]]:
        """The source's streams by name (json_schema, supported sync modes, default cursor and key)."""
        self.start_discover()
        running, self._discovering = self._discovering, None
        assert running is not None
        for msg in self._consume(running):
            if msg.get("type") == "CATALOG":
                return {s["name"]: s for s in msg["catalog"].get("streams", [])}
        raise ConnectorError("the connector's discover returned no catalog")

    def read(self, catalog: Mapping[str, Any], state: list[Any] | None) -> Iterator[dict[str, Any]]:
        """RECORD and STATE messages of a read, in the connector's order."""
        args = [
            "read",
            "--config",
            str(self.config_path),
            "--catalog",
            str(self._write("catalog.json", catalog)),
        ]
        if state:
            args += ["--state", str(self._write("state.json", state))]
        for msg in self.messages(*args):
            if msg.get("type") in ("RECORD", "STATE"):
                yield msg

    # -- the message stream -----------------------------------------------------------------------

    def messages(self, *args: str) -> Iterator[dict[str, Any]]:
        """Run one command; yield its messages except LOG and TRACE, which are logged."""
        return self._consume(self._spawn(*args))

    def _spawn(self, *args: str) -> _Running:
        env = self.policy.environment()
        scope = contextlib.ExitStack()
        try:
            argv = scope.enter_context(sandbox.sandboxed(self.policy, [str(self.executable), *args], env))
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env if sandbox.mode() == "off" else {"PATH": env["PATH"]},
                bufsize=1 << 20,
            )
        except sandbox.SandboxUnavailable as exc:
            scope.close()
            raise ConnectorError(str(exc)) from None
        except BaseException:
            scope.close()
            raise
        running = _Running(proc, deque(maxlen=200), scope=scope)
        running.reader = threading.Thread(target=drain_stderr, args=(proc, running.stderr_tail), daemon=True)
        running.reader.start()
        return running

    def _consume(self, running: _Running) -> Iterator[dict[str, Any]]:
        proc, stderr_tail = running.proc, running.stderr_tail
        error: str | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line[:1] != b"{":
                    if line.strip():
                        self.log("debug", line.decode(errors="replace").rstrip())
                    continue
                try:
                    msg = orjson.loads(line)
                except orjson.JSONDecodeError:
                    self.log("debug", line.decode(errors="replace").rstrip())
                    continue
                kind = msg.get("type")
                if kind == "LOG":
                    log = msg.get("log") or {}
                    self.log(_LEVELS.get(str(log.get("level")), "debug"), str(log.get("message", "")))
                elif kind == "TRACE":
                    error = self._trace(msg.get("trace") or {}) or error
                else:
                    yield msg
            proc.wait()
        finally:
            running.stop()
        for line in stderr_tail:  # logged here: the run's log is written from this thread only
            self.log("info", f"[stderr] {line}")
        if error:
            raise ConnectorError(error)
        if proc.returncode != 0:
            tail = "\n".join(list(stderr_tail)[-15:]).strip()
            raise ConnectorError(f"exited with code {proc.returncode}" + (f": {tail}" if tail else ""))

    def _trace(self, trace: dict[str, Any]) -> str | None:
        """Log a TRACE message; return the error message of a TRACE ERROR."""
        if trace.get("type") == "ERROR":
            err = trace.get("error") or {}
            message = str(err.get("message") or err.get("internal_message") or "the connector failed")
            self.log("error", message + (f"\n{err['stack_trace']}" if err.get("stack_trace") else ""))
            return message
        self.log("debug", orjson.dumps(trace).decode())
        return None


@dataclass
class _Running:
    """A started connector command."""

    proc: subprocess.Popen[bytes]
    stderr_tail: deque[str]
    reader: threading.Thread | None = None
    scope: contextlib.ExitStack | None = None  # the sandbox's relays, for as long as the process runs

    def stop(self) -> None:
        """Kill the connector if still running (the consumer stopped early, or failed); reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        if self.scope is not None:
            self.scope.close()


def drain_stderr(proc: subprocess.Popen[bytes], tail: deque[str]) -> None:
    assert proc.stderr is not None
    for raw in proc.stderr:
        line = raw.decode(errors="replace").rstrip()
        if line:
            tail.append(line)
