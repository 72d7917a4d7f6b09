"""Benchmark: listing runs and reading a run's logs through the API vs straight from Dagster's GraphQL,
with 10,000 runs stored, under 20 concurrent clients; and the time from ``POST /api/runs/`` to the run
leaving Dagster's queue, on the embedded default (SQLite instance, queued run coordinator, daemon).

Everything runs in one temporary folder: a Dagster instance (``deploy/dagster/dagster.yaml``) seeded
through the instance API with 10,000 runs of two organizations (tags, statuses, and events for some),
the Dagster webserver (GraphQL) and daemon, and the API under gunicorn as ``dalgo serve`` starts it
(``dalgo_ops.gunicorn_conf``; SQLite). Each phase runs 20 client processes (one connection each, kept
alive where the server allows it) for a few seconds; the same client code measures both servers.

Run with no arguments: ``.venv/bin/python bench/api_runs.py``. The last line is
``runs api ratio <api req/s / graphql req/s>: api ... p50 ... p99 ..., graphql ...; post-to-start ...``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _http import QUIET, Client, api_env, api_server, free_port, pct, print_phases, run_clients, stop_all, wait_http

from dalgo_ops.serve import gunicorn_argv

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"
CLIENTS = 20
SECONDS = 6.0
RUNS = 10_000
ORG = "bench_ngo"
OTHER = "other_ngo"
PAGE = 20
LOG_PAGE = 100
POSTS = 3

RUNS_QUERY = """query($loc: String!, $limit: Int!) {
  runsOrError(filter: {tags: [{key: "dagster/code_location", value: $loc}]}, limit: $limit) {
  ... on Runs { results { runId status jobName creationTime startTime endTime
  tags { key value } assetSelection { path } } } } }"""
LOGS_QUERY = """query($runId: ID!, $limit: Int) { logsForRun(runId: $runId, limit: $limit) { __typename
  ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { message timestamp level
  stepKey eventType } } } } }"""


def prepare_api(env: dict[str, str], root: Path) -> str:
    """Migrate; create the organization (spec + workspace), a tiny dbt project, a member and a token."""
    project = root / "dbt_projects" / ORG / "tiny"  # the operator's projects root (beside the orgs folder)
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: tiny\nversion: '1.0.0'\nconfig-version: 2\nprofile: dalgo\n")
    (project / "models" / "numbers.sql").write_text("select 1 as n\n")
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    script = f"""
from dalgo_api.accounts.models import ApiToken, Role, User
from dalgo_api.orgs import services
from dalgo_api.specs import store as specs
from dalgo_core.spec import DbtProjectSpec
from dalgo_core.dbt_projects import prepare_projects
org = services.create_org("Bench NGO", slug="{ORG}")
services.create_org("Other NGO", slug="{OTHER}")
spec = specs.load_spec("{ORG}")
spec.dbt_projects.append(DbtProjectSpec(name="tiny", path="{project}"))
prepare_projects(specs.save_spec(spec))
user = User.objects.create_user("manager@bench.example.org", "Bench-pass-2024")
services.add_member(org, user, Role.objects.get(slug="pipeline-manager"))
print(ApiToken.issue(user)[1])
"""
    out = subprocess.run(
        [str(BIN / "python"), "manage.py", "shell", "-c", script],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def seed_runs(dagster_home: Path) -> str:
    """10,000 runs (90% of them the benchmarked organization's) written in one transaction with the run
    storage's own insert values, and events for 20 of them; returns the id of the run whose logs are
    read (300 events)."""
    import dagster as dg
    from dagster._core.events.log import EventLogEntry
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.storage.runs.schema import RunsTable, RunTagsTable
    from dagster._time import get_current_datetime

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    storage = instance.run_storage
    statuses = [dg.DagsterRunStatus.SUCCESS] * 7 + [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    runs = []
    for i in range(RUNS):
        org = ORG if i % 10 else OTHER
        runs.append(
            DagsterRun(
                job_name="__ASSET_JOB",
                run_id=str(uuid.uuid4()),
                status=statuses[i % len(statuses)],
                tags={
                    "dalgo/org": org,
                    "dagster/code_location": f"org_{org}",
                    "dalgo/trigger": "manual",
                    "dalgo/user": "seed@bench.example.org",
                },
            )
        )
    now = get_current_datetime()
    with storage.connect() as conn:
        conn.execute(RunsTable.insert(), [storage._get_run_insertion_values(r, now) for r in runs])
        conn.execute(
            RunTagsTable.insert(),
            [{"run_id": r.run_id, "key": k, "value": v} for r in runs for k, v in r.tags_for_storage().items()],
        )
    hot = runs[-1].run_id  # the newest run of the benchmarked organization
    events = instance.event_log_storage
    for run in [runs[-1], *runs[1:50:10]]:
        entries = [
            EventLogEntry(
                error_info=None,
                level=20,
                user_message=f"step output line {n} " + "x" * 60,
                run_id=run.run_id,
                timestamp=time.time() + n / 1000,
                step_key="tiny",
            )
            for n in range(300 if run.run_id == hot else 10)
        ]
        with events.run_connection(run.run_id) as conn:  # one insert per run, as store_event_batch would
            conn.execute(events.prepare_insert_event_batch(entries))
    instance.dispose()
    return hot


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def load(port: int, call) -> tuple[float, list[float]]:
    """``call(client)`` in CLIENTS client processes for SECONDS; returns (requests/s, latencies)."""
    return run_clients(port, call, CLIENTS, SECONDS)


def post_to_start(port: int, headers: dict[str, str]) -> list[float]:
    """POST a run and poll it until it leaves the queue, then let it end (the next one would wait for
    the project's pool). A first run warms up the daemon's code server and is not counted."""
    client = Client(port)
    times = []
    for attempt in range(POSTS + 1):
        begin = time.perf_counter()
        run, _ = client.request("POST", "/api/runs/", {"assets": ["tiny/numbers"]}, headers)
        while run["state"] == "queued":
            time.sleep(0.05)
            run, _ = client.request("GET", f"/api/runs/{run['run_id']}", headers=headers)
        if attempt:
            times.append(time.perf_counter() - begin)
        while run["state"] == "running":  # let it end before the next POST or the shutdown
            time.sleep(0.5)
            run, _ = client.request("GET", f"/api/runs/{run['run_id']}", headers=headers)
    return times


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dalgo-runs-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        dagster_home = root / "dagster"
        dagster_home.mkdir()
        shutil.copy(REPO / "deploy" / "dagster" / "dagster.yaml", dagster_home / "dagster.yaml")
        gql_port, api_port = free_port(), free_port()
        env = api_env(
            root,
            DAGSTER_HOME=str(dagster_home),
            DALGO_DAGSTER_URL=f"http://127.0.0.1:{gql_port}",
            DAGSTER_DISABLE_TELEMETRY="1",
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            PATH=f"{BIN}:{os.environ.get('PATH', '')}",
        )
        token = prepare_api(env, root)
        headers = {"Authorization": f"Bearer {token}", "x-dalgo-org": ORG}
        began = time.monotonic()
        os.environ["DAGSTER_HOME"] = str(dagster_home)
        hot = seed_runs(dagster_home)
        seeded = time.monotonic() - began
        workspace = str(root / "workspace.yaml")
        procs.append(
            start(
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(gql_port), "-w", workspace],
                env,
                root / "webserver.log",
            )
        )
        wait_http(gql_port, "/server_info")
        procs.append(start([str(BIN / "dagster-daemon"), "run", "-w", workspace], env, root / "daemon.log"))
        procs.append(
            start(
                [*gunicorn_argv(f"127.0.0.1:{api_port}"), *QUIET],
                env,
                root / "gunicorn.log",
            )
        )
        wait_http(api_port, "/api/health")

        def gql(query: str, variables: dict):
            return lambda c: c.request("POST", "/graphql", {"query": query, "variables": variables})[1]

        def api(path: str):
            return lambda c: c.request("GET", path, headers=headers)[1]

        listed, _ = Client(api_port).request("GET", f"/api/runs/?limit={PAGE}", headers=headers)
        assert len(listed["runs"]) == PAGE, listed
        results = {
            "graphql list": load(gql_port, gql(RUNS_QUERY, {"loc": f"org_{ORG}", "limit": PAGE})),
            "api list": load(api_port, api(f"/api/runs/?limit={PAGE}")),
            "graphql logs": load(gql_port, gql(LOGS_QUERY, {"runId": hot, "limit": LOG_PAGE})),
            "api logs": load(api_port, api(f"/api/runs/{hot}/logs?limit={LOG_PAGE}")),
        }
        starts = post_to_start(api_port, headers)
    finally:
        stop_all(procs)
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"seeded {RUNS} runs in {seeded:.1f} s; {CLIENTS} clients, {SECONDS:g} s per phase; "
        f"API: {api_server()}; cpus {os.cpu_count()}"
    )
    print_phases(results)
    print("post-to-start (POST until the run leaves the queue): " + ", ".join(f"{s:.2f} s" for s in starts))
    api_rps = (results["api list"][0] + results["api logs"][0]) / 2
    gql_rps = (results["graphql list"][0] + results["graphql logs"][0]) / 2
    api_lat = results["api list"][1] + results["api logs"][1]
    print(
        f"runs api ratio {api_rps / gql_rps:.2f}: api {api_rps:.0f} req/s p50 {pct(api_lat, 50):.0f} ms "
        f"p99 {pct(api_lat, 99):.0f} ms, graphql {gql_rps:.0f} req/s; post-to-start {statistics.median(starts):.1f} s"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
