"""Dagster's own processes for tests: the webserver (with its GraphQL API) and the daemon, on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.postgres import free_port

BIN = Path(sys.executable).parent


class DagsterProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def dagster_env(dagster_home: Path, **extra: str) -> dict[str, str]:
    dagster_home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "DAGSTER_HOME": str(dagster_home), "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **extra}


class Webserver(DagsterProcess):
    def __init__(self, workspace: Path, env: dict[str, str], log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), "-w", str(workspace)],
            env,
            log_dir / "webserver.log",
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"webserver exited:\n{self.output()[-3000:]}")
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"webserver not ready:\n{self.output()[-3000:]}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]


class Daemon(DagsterProcess):
    def __init__(self, workspace: Path, env: dict[str, str], log_dir: Path):
        super().__init__([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, log_dir / "daemon.log")
