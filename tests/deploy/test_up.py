"""The README's first command, as a new user meets it: ``./scripts/up`` in a clean clone with no state
folder installs and brings up the whole platform (Dagster's storage created once, before any process),
every location loads, the printed demo login works, the README's API section runs command by command
and its run of the demo organization succeeds, the console shows run summaries and no events, nothing
tracked changes, SIGTERM stops every process, and the next start works. Then four more fresh starts
(Dagster's storage and the API's database removed each time) load with no corruption."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest
import requests

from tests.deploy.live_changes import Platform, first_hour_of_an_organization
from tests.deploy.topology import REPO
from tests.support.postgres import free_port, free_port_range

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
LOGIN = re.compile(r"demo login: (\S+) / (\S+) ")
TERMINAL = {"succeeded", "failed", "cancelled"}


def _readme_block(heading: str) -> str:
    """The first ```bash block of a README section."""
    section = (REPO / "README.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


class Up:
    """``./scripts/up`` of a clone, on its own ports, its output in a log file."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.clone, self.env = clone, env
        self.ports = {"web": free_port(), "api": free_port(), "grpc": free_port_range()}
        self.api, self.web = f"http://127.0.0.1:{self.ports['api']}", f"http://127.0.0.1:{self.ports['web']}"
        self.proc: subprocess.Popen | None = None
        self.log = clone.parent / "up.log"

    def start(self) -> str:
        argv = ["./scripts/up", "--port", str(self.ports["web"]), "--api-port", str(self.ports["api"])]
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
        done = subprocess.run(
            [".venv/bin/python", "manage.py", *args], cwd=self.clone, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _state(up: Up, run_id: str, headers: dict[str, str]) -> str:
    return requests.get(f"{up.api}/api/runs/{run_id}", headers=headers, timeout=60).json()["state"]


def _git_status(clone: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout


def _readme_api_section(up: Up) -> str:
    """Run the README's API commands as written (only the ports are the test's); the run id they launched."""
    script = _readme_block("The API").replace("127.0.0.1:8000", f"127.0.0.1:{up.ports['api']}")
    done = subprocess.run(
        ["bash", "-euxo", "pipefail", "-c", script + "\nprintf '\\nRUN=%s\\n' \"$RUN\"\n"],
        cwd=up.clone,
        env=up.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return re.findall(r"^RUN=(\S+)$", done.stdout, re.M)[-1]


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    folder = tmp_path / "dalgo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(folder)], check=True)
    assert not (folder / ".dalgo").exists()
    return folder


def test_the_readme_first_command_on_a_clean_clone_and_every_start_after(clone: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_", "VIRTUAL_ENV"))}
    # the operator's knobs the first hour below needs: local git repositories, a quick automation tick
    knobs = {"DALGO_GIT_SCHEMES": "https,ssh,file", "DALGO_AUTOMATION_INTERVAL_SECONDS": "5"}
    up = Up(clone, {**env, **knobs, "DAGSTER_DISABLE_TELEMETRY": "1"})
    first = up.start()
    try:
        assert up.locations() == {"org_demo_ngo": "LOADED"}
        email, password = LOGIN.search(first).groups()
        token = requests.post(f"{up.api}/api/login/", json={"email": email, "password": password}, timeout=30)
        headers = {"Authorization": f"Bearer {token.json()['token']}", "x-dalgo-org": "demo_ngo"}
        assert {"faker/users", "analytics/daily_revenue"} <= {
            a["key"] for a in requests.get(f"{up.api}/api/assets/", headers=headers, timeout=60).json()
        }
        docs = requests.get(f"{up.api}/api/docs", timeout=30)
        assert docs.status_code == 200 and "cdn." not in docs.text  # Swagger UI from the API itself

        run_id = _readme_api_section(up)
        deadline = time.time() + 900
        while (state := _state(up, run_id, headers)) not in TERMINAL:
            assert time.time() < deadline, state
            time.sleep(2)
        assert state == "succeeded", requests.get(f"{up.api}/api/runs/{run_id}", headers=headers, timeout=60).text
        deadline = time.time() + 60
        while f"run {run_id[:8]} of demo_ngo" not in up.output() and time.time() < deadline:
            time.sleep(1)
        console = up.output()
        assert re.search(rf"run {run_id[:8]} of demo_ngo \(.*\) success in \d+ s", console), console[-3000:]
        assert " - DEBUG - " not in console and '"type": "RECORD"' not in console  # summaries, not events
        assert _git_status(clone) == "", "dalgo up changed or left files git tracks"

        # the same first hour of an organization as on the production topology
        root = json.loads(up.manage("shell", "-c", ROOT_TOKEN))
        first_hour_of_an_organization(Platform(up.api, up.web, root["token"], clone / "dbt_projects"))
    finally:
        left = up.stop()
    assert not left, f"still running after SIGTERM: {left}"

    again = up.start()  # the second start, on the storage the first one made
    try:
        assert up.locations() == {"org_demo_ngo": "LOADED"}
        assert LOGIN.search(again).groups() == (email, password)  # the same demo login
        # a run in flight when SIGTERM comes is ended and marked so, never left running unowned
        token = requests.post(f"{up.api}/api/login/", json={"email": email, "password": password}, timeout=30)
        headers = {"Authorization": f"Bearer {token.json()['token']}", "x-dalgo-org": "demo_ngo"}
        assets = requests.get(f"{up.api}/api/assets/", headers=headers, timeout=60).json()
        selection = [a["key"] for a in assets if a["materializable"]]  # long enough to be in flight
        launched = requests.post(f"{up.api}/api/runs/", json={"assets": selection}, headers=headers, timeout=300)
        in_flight = launched.json()["run_id"]
        deadline = time.time() + 300
        while (state := _state(up, in_flight, headers)) == "queued":
            assert time.time() < deadline
            time.sleep(0.5)
        assert state == "running", state
    finally:
        assert not up.stop()
    instance = dg.DagsterInstance.from_config(str(clone / ".dalgo" / "platform" / "dagster"))
    assert instance.get_run_by_id(in_flight).status == dg.DagsterRunStatus.CANCELED
    assert "ending 1 run(s) in progress" in up.output()
    instance.dispose()

    for _ in range(4):  # fresh starts: Dagster's storage and the API's database made again each time
        shutil.rmtree(clone / ".dalgo" / "platform" / "dagster")
        (clone / ".dalgo" / "platform" / "api.sqlite3").unlink()
        up.start()
        try:
            assert up.locations() == {"org_demo_ngo": "LOADED"}
        finally:
            assert not up.stop()


ROOT_TOKEN = """
import json
from dalgo_api.accounts.models import ApiToken, User
user = User.objects.create_superuser("root@example.org", "Root-pass-2024")
print(json.dumps({"token": ApiToken.issue(user)[1]}))
"""
