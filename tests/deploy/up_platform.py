"""``dalgo up`` driven as a user does, for the tests: started on its own ports, its console in a log
file, stopped with SIGTERM (returning what is left of it)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import requests

from tests.deploy.topology import BIN
from tests.support.postgres import free_port, free_port_range

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
ROOT_TOKEN = """
import json
from dalgo_api.accounts.models import ApiToken, User
user = User.objects.create_superuser("root@example.org", "Root-pass-2024")
print(json.dumps({"token": ApiToken.issue(user)[1]}))
"""


class Up:
    """``./scripts/up`` of a clone, on its own ports, its output in a log file."""

    def __init__(self, clone: Path, env: dict[str, str], command: tuple[str, ...] = ("./scripts/up",)) -> None:
        self.clone, self.env, self.command = clone, env, command
        self.ports = {"web": free_port(), "api": free_port(), "grpc": free_port_range()}
        self.api, self.web = f"http://127.0.0.1:{self.ports['api']}", f"http://127.0.0.1:{self.ports['web']}"
        self.proc: subprocess.Popen | None = None
        self.log = clone.parent / "up.log"
        self.first_output = ""  # what the first start printed (its demo login)
        self.readme_run = ""  # the run the README's API section launched

    def start(self) -> str:
        argv = [*self.command, "--port", str(self.ports["web"]), "--api-port", str(self.ports["api"])]
        self.log.write_bytes(b"")
        self.proc = subprocess.Popen(
            [*argv, "--grpc-base-port", str(self.ports["grpc"])],
            env=self.env,
            cwd=self.clone,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 900
        while "dalgo serve: ready" not in self.output():
            assert self.proc.poll() is None and time.time() < deadline, self.output()[-4000:]
            time.sleep(0.5)
        return self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def locations(self) -> dict[str, str]:
        answer = requests.post(f"{self.web}/graphql", json={"query": LOCATIONS}, timeout=60).json()
        return {e["name"]: e["loadStatus"] for e in answer["data"]["workspaceOrError"]["locationEntries"]}

    def stop(self) -> list[int]:
        """SIGTERM, as a service manager sends it; the processes of the platform still alive after it."""
        assert self.proc is not None
        family = [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        deadline = time.time() + 60
        while (alive := [p for p in family if _alive(p)]) and time.time() < deadline:
            time.sleep(0.5)
        return alive

    def manage(self, *args: str) -> str:
        python = self.clone / ".venv" / "bin" / "python"
        done = subprocess.run(
            [str(python if python.exists() else BIN / "python"), "manage.py", *args],
            cwd=self.clone,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_state(up: Up, run_id: str, headers: dict[str, str]) -> str:
    return requests.get(f"{up.api}/api/runs/{run_id}", headers=headers, timeout=60).json()["state"]
