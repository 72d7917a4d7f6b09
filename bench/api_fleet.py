"""Benchmark: the run endpoints on production storage at a fleet's scale, against Dagster's GraphQL.

Starts a throwaway PostgreSQL server holding Dagster's storage (``deploy/dagster/dagster.postgres.yaml``)
and the API's database, creates 100 organizations in the API and seeds 1,000 runs per organization
(100,000 runs) into Dagster's run storage with its own insertion values and tags, and ten events per
run into its event log with the storage's own row builder (a run's start, its step, dbt's output lines,
two materializations, the step's and the run's end; a failed run's error); the newest run of each
organization is still running. Then it serves the API under gunicorn as ``dalgo serve`` starts it
(``dalgo_ops.gunicorn_conf``: a sync worker per core and one more) and Dagster's webserver, and runs 20
client processes (one HTTP connection each, kept alive where the server allows it; each request for a
random organization and a random run of it) against both, a phase each:

- a run list (the first page, 20 runs: ``GET /api/runs/`` vs ``runsOrError`` by code location),
- a run's detail (``GET /api/runs/<id>`` vs ``runOrError``),
- a page of a run's log (``GET /api/runs/<id>/logs?limit=100`` vs ``logsForRun``).

Run with no arguments: ``.venv/bin/python bench/api_fleet.py`` (about 5 minutes on 2 cores, 2-3 of them
seeding and vacuuming). The last line is the API's p99 over the three phases (the target is 50 ms), each
phase's, and its throughput as a ratio of GraphQL's.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _http import QUIET, Client, api_env, api_server, free_port, pct, print_phases, run_clients, stop_all, wait_http

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402
from dagster._core.events import (  # noqa: E402
    DagsterEvent,
    DagsterEventType,
    JobFailureData,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry  # noqa: E402
from dagster._core.execution.plan.objects import StepFailureData, StepSuccessData  # noqa: E402
from dagster._utils.error import SerializableErrorInfo  # noqa: E402

from dalgo_ops.instance import pg_env_from_url, write_postgres_instance  # noqa: E402
from dalgo_ops.serve import gunicorn_argv  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

BIN = REPO / ".venv" / "bin"
ORGS = 100
RUNS_PER_ORG = 1000
CLIENTS = 20
SECONDS = 8.0
PAGE = 20
LOG_PAGE = 100
BATCH = 200  # runs per insert (one connection for the whole seeding)
PASSWORD = "Fleet-pass-2024"

RUNS_QUERY = """query($loc: String!, $limit: Int!) {
  runsOrError(filter: {tags: [{key: "dagster/code_location", value: $loc}]}, limit: $limit) {
  ... on Runs { results { runId status jobName creationTime startTime endTime
  tags { key value } assetSelection { path } } } } }"""
RUN_QUERY = """query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { runId status jobName
  creationTime startTime endTime tags { key value } assetSelection { path } } } }"""
LOGS_QUERY = """query($runId: ID!, $limit: Int) { logsForRun(runId: $runId, limit: $limit) { __typename
  ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent { message timestamp level
  stepKey eventType } } } } }"""


def org_slug(i: int) -> str:
    return f"ngo_{i:03d}"


def prepare_api(env: dict[str, str]) -> None:
    """Migrate; create the organizations and one Pipeline Manager per client, a member of every one."""
    subprocess.run([str(BIN / "python"), "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    script = f"""
from dalgo_api.accounts.models import Role, User
from dalgo_api.orgs import services
role = Role.objects.get(slug="pipeline-manager")
users = [User.objects.create_user(f"client{{i}}@fleet.example.org", "{PASSWORD}") for i in range({CLIENTS})]
for i in range({ORGS}):
    org = services.create_org(f"NGO {{i:03d}}", slug=f"ngo_{{i:03d}}")
    for user in users:
        services.add_member(org, user, role)
"""
    subprocess.run(
        [str(BIN / "python"), "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True, capture_output=True
    )


def _events(run_id: str, job: str, status: str, start: float) -> list[EventLogEntry]:
    """A run's event log as its run worker writes it (ten events; a failed run ends with its error)."""
    step = "ngo__dbt_build"

    def entry(offset: float, event: DagsterEvent | None = None, message: str = "") -> EventLogEntry:
        return EventLogEntry(
            error_info=None,
            level=20,
            user_message=message or (event.message if event and event.message else ""),
            run_id=run_id,
            timestamp=start + offset,
            step_key=event.step_key if event else step,
            job_name=job,
            dagster_event=event,
        )

    def event(kind: DagsterEventType, message: str, data: object = None, step_key: str | None = step) -> DagsterEvent:
        return DagsterEvent(kind.value, job, message=message, event_specific_data=data, step_key=step_key)

    entries = [
        entry(0.0, event(DagsterEventType.RUN_START, f'Started execution of run for "{job}".', step_key=None)),
        entry(0.4, event(DagsterEventType.STEP_START, f'Started execution of step "{step}".')),
    ]
    for n, line in enumerate(("Running with dbt=1.11", "Found 12 models, 20 data tests", "Concurrency: 1 threads")):
        entries.append(entry(0.5 + n / 10, message=line))
    if status == "FAILURE":
        error = SerializableErrorInfo("dbt build failed for 1 node(s): model.sales.orders", [], "Failure")
        entries.append(entry(8.0, event(DagsterEventType.STEP_FAILURE, "Step failed", StepFailureData(error, None))))
        entries.append(
            entry(8.1, event(DagsterEventType.RUN_FAILURE, "Execution failed", JobFailureData(error), step_key=None))
        )
        return entries
    for n, table in enumerate(("orders", "customers")):
        key = dg.AssetKey(["ngo", "sales", table])
        materialization = dg.AssetMaterialization(key, metadata={"dagster/row_count": 500 + n})
        entries.append(
            entry(5.0 + n, event(DagsterEventType.ASSET_MATERIALIZATION, "", StepMaterializationData(materialization)))
        )
    if status == "STARTED":
        return entries
    entries.append(entry(8.0, event(DagsterEventType.STEP_SUCCESS, "Finished", StepSuccessData(7600.0))))
    entries.append(entry(8.1, event(DagsterEventType.RUN_SUCCESS, "Finished execution of run.", step_key=None)))
    return entries


def seed_runs(dagster_home: Path) -> dict[str, list[str]]:
    """RUNS_PER_ORG runs of every organization, oldest first (one in ten failed, the newest running),
    with their events; returns each organization's run ids."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
    from dagster._core.storage.runs.schema import RunsTable, RunTagsTable

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    runs_storage, events_storage = instance.run_storage, instance.event_log_storage
    # the insertion values ask the database whether the runs table has a backfill column, on a new
    # connection per run (100,000 round trips): ask once
    runs_storage.has_backfill_id_column = functools.cache(runs_storage.has_backfill_id_column)
    ids: dict[str, list[str]] = {org_slug(i): [] for i in range(ORGS)}
    now = time.time()
    batch: list[tuple[DagsterRun, float]] = []

    def flush(conn: Any) -> None:
        run_rows, tag_rows, event_rows = [], [], []
        for run, start in batch:
            values = runs_storage._get_run_insertion_values(run, datetime.fromtimestamp(start, tz=UTC))
            values["start_time"] = start
            values["end_time"] = start + 8.1 if run.status != dg.DagsterRunStatus.STARTED else None
            run_rows.append(values)
            tag_rows += [{"run_id": run.run_id, "key": k, "value": v} for k, v in run.tags_for_storage().items()]
            event_rows += [
                events_storage._event_to_row(e) for e in _events(run.run_id, run.job_name, run.status.value, start)
            ]
        # the run and event log storages share the one database of deploy/dagster/dagster.postgres.yaml
        conn.execute(RunsTable.insert(), run_rows)
        conn.execute(RunTagsTable.insert(), tag_rows)
        conn.execute(SqlEventLogStorageTable.insert(), event_rows)
        batch.clear()

    # interleaved as a fleet's runs arrive: one run of each organization in turn, every 30 s
    with runs_storage.connect() as conn:
        for n in range(RUNS_PER_ORG):
            for i in range(ORGS):
                org = org_slug(i)
                status = dg.DagsterRunStatus.SUCCESS
                if n == RUNS_PER_ORG - 1:
                    status = dg.DagsterRunStatus.STARTED
                elif n % 10 == 7:
                    status = dg.DagsterRunStatus.FAILURE
                run = DagsterRun(
                    job_name="__ASSET_JOB",
                    run_id=str(uuid.uuid4()),
                    status=status,
                    asset_selection=frozenset(
                        {dg.AssetKey([org, "sales", "orders"]), dg.AssetKey([org, "sales", "customers"])}
                    ),
                    tags={
                        "dalgo/org": org,
                        "dagster/code_location": f"org_{org}",
                        "dalgo/trigger": "automation" if n % 3 else "manual",
                        "dalgo/user": "seed@fleet.example.org",
                    },
                )
                ids[org].append(run.run_id)
                batch.append((run, now - (RUNS_PER_ORG - n) * 30 * ORGS + i * 30))
                if len(batch) >= BATCH:
                    flush(conn)
        if batch:
            flush(conn)
    instance.dispose()
    return ids


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


_rng: dict[int, random.Random] = {}


def rng() -> random.Random:
    """Each client process's own random choices (forked processes would otherwise share one sequence)."""
    return _rng.setdefault(os.getpid(), random.Random(os.getpid()))


def settle(dsn: str) -> None:
    """``VACUUM ANALYZE`` the seeded storage, as after any bulk load: a million event rows inserted at once
    otherwise start PostgreSQL's autovacuum on them, a core's worth of work for tens of seconds, during
    whichever phase it happens to fall in (a long-lived storage takes its inserts a few at a time)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dalgo-fleet-bench-"))
    postgres = PostgresServer().start()
    procs: list[subprocess.Popen] = []
    try:
        dagster_dsn = postgres.create_database("dagster", owner="dagster", password="fleet")
        api_dsn = postgres.create_database("dalgo_api", owner="dalgo", password="fleet")
        dagster_home = root / "dagster"
        write_postgres_instance(dagster_home)
        gql_port, api_port = free_port(), free_port()
        env = api_env(
            root,
            **pg_env_from_url(dagster_dsn),
            DAGSTER_HOME=str(dagster_home),
            DALGO_API_DATABASE_URL=api_dsn,
            DALGO_DAGSTER_URL=f"http://127.0.0.1:{gql_port}",
            DAGSTER_DISABLE_TELEMETRY="1",
            PATH=f"{BIN}:{os.environ.get('PATH', '')}",
        )
        began = time.monotonic()
        prepare_api(env)
        os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_")})
        ids = seed_runs(dagster_home)
        settle(dagster_dsn)
        seeded = time.monotonic() - began
        print(f"{ORGS} organizations, {ORGS * RUNS_PER_ORG} runs seeded in {seeded:.0f} s", flush=True)
        # the webserver serves GraphQL from the storage; it loads no code location (the API's reads need none)
        (root / "no_locations.yaml").write_text("load_from: []\n")
        procs.append(
            start(
                [
                    str(BIN / "dagster-webserver"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(gql_port),
                    "-w",
                    str(root / "no_locations.yaml"),
                ],
                env,
                root / "webserver.log",
            )
        )
        procs.append(start([*gunicorn_argv(f"127.0.0.1:{api_port}"), *QUIET], env, root / "api.log"))
        wait_http(gql_port, "/server_info")
        wait_http(api_port, "/api/health")
        tokens = [
            Client(api_port).request(
                "POST", "/api/login/", {"email": f"client{i}@fleet.example.org", "password": PASSWORD}
            )[0]["token"]
            for i in range(CLIENTS)
        ]
        slugs = sorted(ids)

        def api(path: Callable[[str, list[str]], str]) -> Callable[[Client], float]:
            def call(client: Client) -> float:
                org = rng().choice(slugs)
                token = tokens[rng().randrange(CLIENTS)]
                headers = {"Authorization": f"Bearer {token}", "x-dalgo-org": org}
                return client.request("GET", path(org, ids[org]), headers=headers)[1]

            return call

        def gql(query: str, variables: Callable[[str, list[str]], dict]) -> Callable[[Client], float]:
            def call(client: Client) -> float:
                org = rng().choice(slugs)
                body = {"query": query, "variables": variables(org, ids[org])}
                answer, seconds = client.request("POST", "/graphql", body)
                assert "errors" not in answer, answer
                return seconds

            return call

        phases = {
            "list": (
                api(lambda org, runs: f"/api/runs/?limit={PAGE}"),
                gql(RUNS_QUERY, lambda org, runs: {"loc": f"org_{org}", "limit": PAGE}),
            ),
            "detail": (
                api(lambda org, runs: f"/api/runs/{rng().choice(runs)}"),
                gql(RUN_QUERY, lambda org, runs: {"runId": rng().choice(runs)}),
            ),
            "logs": (
                api(lambda org, runs: f"/api/runs/{rng().choice(runs)}/logs?limit={LOG_PAGE}"),
                gql(LOGS_QUERY, lambda org, runs: {"runId": rng().choice(runs), "limit": LOG_PAGE}),
            ),
        }
        results = {}
        for name, (api_call, gql_call) in phases.items():
            results[f"api {name}"] = run_clients(api_port, api_call, CLIENTS, SECONDS)
            results[f"graphql {name}"] = run_clients(gql_port, gql_call, CLIENTS, SECONDS)
    finally:
        stop_all(procs)
        postgres.destroy()
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"{CLIENTS} clients, {SECONDS:g} s per phase; API: {api_server()}; PostgreSQL; "
        f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}"
    )
    print_phases(results)
    api_lat = [x for name in phases for x in results[f"api {name}"][1]]
    api_rps = sum(results[f"api {name}"][0] for name in phases) / len(phases)
    gql_rps = sum(results[f"graphql {name}"][0] for name in phases) / len(phases)
    each = ", ".join(f"{name} {pct(results[f'api {name}'][1], 99):.0f}" for name in phases)
    print(
        f"fleet api p99 {pct(api_lat, 99):.0f} ms ({each}; target 50), p50 {pct(api_lat, 50):.0f} ms, "
        f"{api_rps:.0f} req/s, {api_rps / gql_rps:.1f}x GraphQL's {gql_rps:.0f} req/s; "
        f"{ORGS} orgs x {RUNS_PER_ORG} runs on PostgreSQL"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
