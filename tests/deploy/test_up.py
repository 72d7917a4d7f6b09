"""``dalgo up`` (what ``./scripts/up`` runs) on an empty state folder: Dagster's storage is created once
before any process starts, the whole platform comes up (code servers, webserver, daemon, API), an
organization created through the API is live at once and gone when deleted, SIGTERM stops every
process, and the second start on the same state works."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import requests

from tests.deploy.topology import BIN, PASSWORD, REPO
from tests.support.orgs import write_dbt_project, write_spec
from tests.support.postgres import free_port, free_port_range

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
ROOT = "root@example.org"


def _start(root: Path, env: dict[str, str], ports: dict[str, int]) -> tuple[subprocess.Popen, Path]:
    log = root / f"up-{time.time_ns()}.log"
    argv = [str(BIN / "dalgo"), "up", "--port", str(ports["web"]), "--api-port", str(ports["api"])]
    proc = subprocess.Popen(
        [*argv, "--grpc-base-port", str(ports["grpc"])],
        env=env,
        cwd=root,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 600
    while "dalgo serve: ready" not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.time() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(0.5)
    return proc, log


def _stop(proc: subprocess.Popen) -> list[int]:
    """SIGTERM, as a service manager sends it: every process of the platform ends."""
    family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)
    deadline = time.time() + 60
    while (alive := [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]) and (
        time.time() < deadline
    ):
        time.sleep(0.5)
    return alive


def _locations(web: int) -> dict[str, str]:
    data = requests.post(f"http://127.0.0.1:{web}/graphql", json={"query": LOCATIONS}, timeout=60).json()["data"]
    return {e["name"]: e["loadStatus"] for e in data["workspaceOrError"]["locationEntries"]}


def test_up_from_an_empty_state_folder_and_again(tmp_path: Path) -> None:
    home, orgs = tmp_path / "state", tmp_path / "orgs"
    project = write_dbt_project(tmp_path / "dbt_projects", "tiny", {"models/one.sql": "select 1 as x\n"})
    write_spec(
        orgs,
        "first_ngo",
        {"slug": "first_ngo", "name": "First", "dbt_projects": [{"name": "tiny", "path": str(project)}]},
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_"))},
        "DALGO_HOME": str(home),
        "DALGO_ORGS_DIR": str(orgs),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    ports = {"web": free_port(), "api": free_port(), "grpc": free_port_range()}
    proc, log = _start(tmp_path, env, ports)
    try:
        assert "Conflicting\n" not in log.read_text()
        assert _locations(ports["web"]) == {"org_first_ngo": "LOADED"}
        setup = f"from dalgo_api.accounts.models import User; User.objects.create_superuser('{ROOT}', '{PASSWORD}')"
        done = subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c", setup], cwd=REPO, env=env)
        assert done.returncode == 0
        api = f"http://127.0.0.1:{ports['api']}"
        token = requests.post(f"{api}/api/login/", json={"email": ROOT, "password": PASSWORD}, timeout=30).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        created = requests.post(f"{api}/api/organizations/", json={"name": "Second"}, headers=headers, timeout=300)
        assert created.status_code == 201, created.text
        assert _locations(ports["web"])["org_second"] == "LOADED"
        deleted = requests.delete(
            f"{api}/api/organizations/second", headers={**headers, "x-dalgo-org": "second"}, timeout=300
        )
        assert deleted.status_code == 204, deleted.text
        assert "org_second" not in _locations(ports["web"])
        docs = requests.get(f"{api}/api/docs", timeout=30)
        assert docs.status_code == 200 and "cdn." not in docs.text  # Swagger UI from the API itself
        assert requests.get(f"{api}/static/ninja/swagger-ui-bundle.js", timeout=30).status_code == 200
    finally:
        left = _stop(proc)
    assert not left, f"still running after SIGTERM: {left}"

    proc, log = _start(tmp_path, env, ports)  # the second start, on the storage the first one made
    try:
        assert _locations(ports["web"]) == {"org_first_ngo": "LOADED"}
    finally:
        assert not _stop(proc)
