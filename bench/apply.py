"""How long an API change takes to be live, against reloading the location through Dagit's GraphQL.

For the embedded default (``dalgo up``: SQLite) and production (``dalgo serve``: PostgreSQL), one
organization is loaded; then, through the API, a dbt project is added and a pipeline is added. Each is
timed from the request to the API's answer (the API answers once the change is live: the new assets
are in the webserver). The baseline, in the same run, is the webserver's own
``reloadRepositoryLocation`` of that location (what an operator's "Reload" in Dagit does) right after
the change, so of the same definitions: each dbt project makes a reload slower, and a reload from
before the change (printed too) would credit the API with loading one project less. The first dbt
project an organization gets starts its warm dbt parser (``dalgo_core.dbt_parser``, five minutes
idle): that first figure is printed apart. Median of ``ROUNDS`` each.

    .venv/bin/python bench/apply.py
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.orgs import write_dbt_project, write_spec  # noqa: E402
from tests.support.postgres import PostgresServer, free_port, free_port_range  # noqa: E402

BIN = Path(sys.executable).parent
ROUNDS = 5
PASSWORD = "Bench-apply-pass-2024"
RELOAD = """mutation($n: String!) { reloadRepositoryLocation(repositoryLocationName: $n) { __typename } }"""
MODEL = "{{ config(materialized='table') }}\nselect 1 as x\n"


def start(root: Path, mode: str, postgres: PostgresServer | None) -> tuple[subprocess.Popen, dict, dict]:
    home, orgs = root / "home", root / "orgs"
    project = write_dbt_project(root / "dbt_projects" / "bench", "base", {"models/base.sql": MODEL})
    spec = {"slug": "bench", "name": "Bench", "dbt_projects": [{"name": "base", "path": str(project)}]}
    write_spec(orgs, "bench", spec)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_"))},
        "DALGO_HOME": str(home),
        "DALGO_ORGS_DIR": str(orgs),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DALGO_API_SECRET_KEY": "bench-" + "k" * 60,
    }
    ports = {"web": free_port(), "api": free_port(), "grpc": free_port_range()}
    if mode == "up":
        argv = [str(BIN / "dalgo"), "up", "--port", str(ports["web"]), "--api-port", str(ports["api"])]
    else:
        assert postgres is not None
        dsn = postgres.create_database(f"dagster_{time.time_ns()}", owner=f"bench_{time.time_ns()}", password="b")
        argv = [str(BIN / "dalgo"), "serve", "--postgres-url", dsn]
        argv += ["--webserver-port", str(ports["web"]), "--api-port", str(ports["api"])]
    argv += ["--grpc-base-port", str(ports["grpc"])]
    log = root / "platform.log"
    proc = subprocess.Popen(argv, env=env, cwd=root, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while "dalgo serve: ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        time.sleep(0.5)
    if mode == "serve":
        env["DALGO_API_DATABASE_URL"] = dsn
    setup = (
        "from dalgo_api.accounts.models import User; "
        f"User.objects.create_superuser('root@bench.org', '{PASSWORD}')"  # the bench org: adopted at start
    )
    subprocess.run([str(BIN / "python"), "manage.py", "shell", "-c", setup], cwd=REPO, env=env, check=True)
    return proc, env, ports


def timed(call, *args: object) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def measure(root: Path, mode: str, postgres: PostgresServer | None) -> dict[str, float]:
    proc, _env, ports = start(root, mode, postgres)
    api, web = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['web']}"
    try:
        token = requests.post(f"{api}/api/login/", json={"email": "root@bench.org", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['token']}", "x-dalgo-org": "bench"}

        def ok(method: str, path: str, body: dict) -> None:
            response = requests.request(method, f"{api}{path}", json=body, headers=headers, timeout=600)
            assert response.status_code in (200, 201), response.text

        def reload() -> None:
            data = requests.post(f"{web}/graphql", json={"query": RELOAD, "variables": {"n": "org_bench"}}).json()
            assert data["data"]["reloadRepositoryLocation"]["__typename"] == "WorkspaceLocationEntry", data

        # each change is compared with a reload of the location it produced: the same definitions
        # (a location with one dbt project more reloads more slowly than before the change)
        before, project, after_project, pipeline, after_pipeline = [], [], [], [], []
        for i in range(ROUNDS):
            before.append(timed(reload))
            folder = write_dbt_project(root / "dbt_projects" / "bench", f"p{i}", {f"models/m{i}.sql": MODEL})
            project.append(timed(ok, "POST", "/api/dbt/projects/", {"name": f"p{i}", "path": str(folder)}))
            after_project.append(timed(reload))
            body = {"name": f"nightly_{i}", "assets": [f"p{i}/*"], "schedule": {"cron": "0 2 * * *"}}
            pipeline.append(timed(ok, "POST", "/api/pipelines/", body))
            after_pipeline.append(timed(reload))
        return {
            "reload before": statistics.median(before),
            "reload": statistics.median(after_project),
            "project": statistics.median(project),
            "first project": project[0],  # the organization's warm dbt parser starts with it
            "pipeline reload": statistics.median(after_pipeline),
            "pipeline": statistics.median(pipeline),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory(prefix="dalgo-bench-apply-") as tmp:
        results["dev"] = measure(Path(tmp) / "up", "up", None)
        postgres = PostgresServer().start()
        try:
            results["production"] = measure(Path(tmp) / "serve", "serve", postgres)
        finally:
            postgres.stop()
    parts = []
    for mode, r in results.items():
        print(
            f"{mode}: add dbt project {r['project']:.2f} s against a reload of the result {r['reload']:.2f} s "
            f"(the first, its parser starting: {r['first project']:.2f} s; a reload before the change "
            f"{r['reload before']:.2f} s), add pipeline {r['pipeline']:.2f} s against {r['pipeline reload']:.2f} s "
            f"(median of {ROUNDS})",
            flush=True,
        )
        parts.append(
            f"{mode}: dbt project {r['project'] / r['reload']:.2f}x (first {r['first project'] / r['reload']:.2f}x), "
            f"pipeline {r['pipeline'] / r['pipeline reload']:.2f}x"
        )
    print("apply vs GraphQL reload: " + "; ".join(parts))


if __name__ == "__main__":
    main()
