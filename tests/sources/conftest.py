"""A live platform for the sources and connections flows: the API under gunicorn (two sync worker
processes, as production runs it, so a task started by one is polled through the other) on a SQLite
file, Dagster's webserver and daemon, and the organizations of the module, each with an Account
Manager's token.

Tasks run as the API starts them in production: a detached worker process per task, writing its row in
the API's database. Connector venvs are shared by the test session (``embedded_env``'s folder).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from dalgo_core.code_locations import write_workspace
from dalgo_ops.serve import gunicorn_argv
from tests.support.dagster import Daemon, Webserver, dagster_env
from tests.support.orgs import REPO, write_spec
from tests.support.postgres import free_port

PASSWORD = "Sources-flow-2024"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Platform:
    root: Path
    url: str
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, body: Any = None, *, org: str, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token or self.tokens[org]}", "x-dalgo-org": org}
        return self.session.request(method, self.url + path, json=body, headers=headers, timeout=120)

    def ok(self, method: str, path: str, body: Any = None, *, org: str, status: int = 200) -> Any:
        response = self.call(method, path, body, org=org)
        assert response.status_code == status, (method, path, response.status_code, response.text[:2000])
        return response.json() if response.content else None

    def task(self, started: dict[str, Any], *, org: str, timeout: float = 600) -> dict[str, Any]:
        """Poll a task (as the frontend does) until it ends; the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.ok("GET", started["poll"], org=org)
            if found["status"] in ("succeeded", "failed"):
                return found
            assert time.monotonic() < deadline, f"task still {found['status']}: {found['progress']}"
            time.sleep(0.5)

    def run(self, run_id: str, *, org: str, timeout: float = 600) -> dict[str, Any]:
        """Wait for a run to end; the run as ``GET /api/runs/{id}`` answers it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.ok("GET", f"/api/runs/{run_id}", org=org)
            if found["status"] in TERMINAL:
                return found
            assert time.monotonic() < deadline, f"run {run_id} still {found['status']}"
            time.sleep(1)

    def api_db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / "api.sqlite3")

    def logs(self) -> str:
        """Everything the platform's processes and task workers logged."""
        files = [*self.root.glob("*.log"), *(self.root / "home").rglob("*.log")]
        return "\n".join(p.read_text(errors="replace") for p in files)


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the API did not answer:\n{log.read_text()[-3000:]}")


def start_platform(root: Path, connectors: Path, orgs: dict[str, dict[str, Any]], extra_env: dict[str, str]):
    """Write the organizations, prepare the API's database and members, start Dagster and the API;
    a generator: yields the platform, then stops every process it started."""
    env = {
        **os.environ,
        "DALGO_HOME": str(root / "home"),
        "DALGO_ORGS_DIR": str(root / "orgs"),
        "DAGSTER_HOME": str(root / "dagster"),
        "DALGO_CONNECTORS_DIR": str(connectors),
        "DALGO_WORKSPACE_FILE": str(root / "workspace.yaml"),
        "DALGO_API_DATABASE_URL": f"sqlite:///{root / 'api.sqlite3'}",
        "DALGO_API_SECRET_KEY": "sources-flow-" + "k" * 40,
        **extra_env,
    }
    for sub in ("home", "orgs", "dagster"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "dagster" / "dagster.yaml").write_text((REPO / "deploy" / "dagster" / "dagster.yaml").read_text())
    for slug, spec in orgs.items():
        write_spec(root / "orgs", slug, spec)
    _manage(env, "migrate", "-v0")
    for slug in orgs:
        _manage(env, "createorganduser", slug, f"manager@{slug.replace('_', '-')}.example.org", "--password", PASSWORD)
    _manage(
        env, "createorganduser", next(iter(orgs)), "root@example.org", "--role", "super-admin", "--password", PASSWORD
    )
    write_workspace(root / "workspace.yaml", root / "orgs")
    processes: list[Any] = []
    gunicorn = None
    try:
        dagster = dagster_env(root / "dagster", **{k: v for k, v in env.items() if k.startswith("DALGO_")})
        webserver = Webserver(root / "workspace.yaml", dagster, root)
        processes.append(webserver)
        webserver.wait_ready()
        processes.append(Daemon(root / "workspace.yaml", dagster, root))
        env["DALGO_DAGSTER_URL"] = webserver.url
        port = free_port()
        log = root / "api.log"
        with log.open("wb") as out:
            gunicorn = subprocess.Popen(
                [*gunicorn_argv(f"127.0.0.1:{port}", workers=2), "--log-level", "warning"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        platform = Platform(root, f"http://127.0.0.1:{port}", env)
        _wait_http(platform.url + "/api/health", gunicorn, log)
        for slug in orgs:
            email = f"manager@{slug.replace('_', '-')}.example.org"
            answer = requests.post(platform.url + "/api/login/", json={"email": email, "password": PASSWORD})
            assert answer.ok, answer.text
            platform.tokens[slug] = answer.json()["token"]
        answer = requests.post(platform.url + "/api/login/", json={"email": "root@example.org", "password": PASSWORD})
        platform.tokens["root"] = answer.json()["token"]
        yield platform
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(30)
            _stop_task_workers(root)
        for process in reversed(processes):
            process.stop()


def _stop_task_workers(root: Path) -> None:
    """End the task workers the API started that still run (a failed test may leave one mid-install)."""
    try:
        with sqlite3.connect(root / "api.sqlite3") as db:
            pids = [p for (p,) in db.execute("select pid from tasks_task where status = 'running' and pid is not null")]
    except sqlite3.Error:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue


@pytest.fixture(scope="session")
def connectors_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The connector venvs of the test session (as ``embedded_env``): installed once per worker."""
    return tmp_path_factory.getbasetemp() / "airbyte-connectors"


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value
