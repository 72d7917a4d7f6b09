"""The README's first command, as a new user meets it: ``./scripts/up`` in a clean clone with no state
folder installs and brings up the whole platform (Dagster's storage created once, before any process),
every location loads, the printed demo login works, the README's API section runs command by command
and its run of the demo organization succeeds, the console shows run summaries and no events, nothing
tracked changes, SIGTERM stops every process, and the next start works. Then four more fresh starts
(Dagster's storage and the API's database removed each time) load with no corruption."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from tests.deploy.topology import REPO
from tests.deploy.up_platform import Up, run_state

LOGIN = re.compile(r"demo login: (\S+) / (\S+) ")
TERMINAL = {"succeeded", "failed", "cancelled"}


def _readme_block(heading: str) -> str:
    """The first ```bash block of a README section."""
    section = (REPO / "README.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


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


@pytest.mark.long
def test_the_readme_first_command_on_a_clean_clone_and_every_start_after(clone: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_", "VIRTUAL_ENV"))}
    up = Up(clone, {**env, "DAGSTER_DISABLE_TELEMETRY": "1"})
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
        while (state := run_state(up, run_id, headers)) not in TERMINAL:
            assert time.time() < deadline, state
            time.sleep(2)
        assert state == "succeeded", requests.get(f"{up.api}/api/runs/{run_id}", headers=headers, timeout=60).text
        summary = re.compile(rf"run {run_id[:8]} of demo_ngo \(.*\) success in \d+ s")
        deadline = time.time() + 60
        while not summary.search(console := up.output()) and time.time() < deadline:
            time.sleep(1)
        assert summary.search(console), console[-3000:]
        assert " - DEBUG - " not in console and '"type": "RECORD"' not in console  # summaries, not events
        assert _git_status(clone) == "", "dalgo up changed or left files git tracks"
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
        while (state := run_state(up, in_flight, headers)) == "queued":
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
