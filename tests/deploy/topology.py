"""The production topology for tests: two small organizations on PostgreSQL warehouses, ``dalgo serve``
as a subprocess, and helpers to launch runs, read them back and find their processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from dalgo_core.code_locations import code_servers
from dalgo_ops.processes import stop_from_pid_files
from dalgo_ops.webserver import locations_settled
from tests.support.orgs import write_dbt_project, write_spec
from tests.support.postgres import PostgresServer, free_port, free_port_range
from tests.support.processes import code_server_processes, listening_process

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
ORGS = ("alpha", "beta")
PASSWORD = "Serve-test-pass-2024"
SIGNUP_CODE = "serve-test"

NUMBERS = "{{ config(materialized='table') }}\nselect generate_series(1, 10) as n\n"
# Sleeps for the seconds in the warehouse's dalgo_sleep table: the fault tests make a run last.
SLOW = """{{ config(materialized='table') }}
select n, now() as built_at
from {{ ref('numbers') }},
     (select pg_sleep(coalesce((select max(seconds) from public.dalgo_sleep), 0))) as s
"""

RUN = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"
LOCATION_UPDATED = """query($name: String!) { workspaceLocationEntryOrError(name: $name) {
  ... on WorkspaceLocationEntry { updatedTimestamp } } }"""
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
ASSETS = ("tiny/numbers", "tiny/slow")  # relative to the organization, as the API takes them
OPERATOR = "ops@example.org"
ROOT = "root@example.org"  # a Super Admin: creates and deletes organizations
# A member who may run the assets of the two organizations (adopted from their folders at start).
API_SETUP = f"""
from dalgo_api.accounts.models import Role, User
from dalgo_api.orgs import services
from dalgo_api.orgs.models import Org
User.objects.create_superuser("{ROOT}", "{PASSWORD}")
user = User.objects.create_user("{OPERATOR}", "{PASSWORD}")
for slug in {ORGS!r}:
    services.add_member(Org.objects.get(slug=slug), user, Role.objects.get(slug="pipeline-manager"))
"""


def write_orgs(orgs_dir: Path, projects_dir: Path, postgres: PostgresServer) -> dict[str, str]:
    """Two organizations, each with its own PostgreSQL warehouse; returns ``{slug: warehouse dsn}``."""
    dsns = {}
    project = write_dbt_project(projects_dir, "tiny", {"models/numbers.sql": NUMBERS, "models/slow.sql": SLOW})
    for slug in ORGS:
        dsn = postgres.create_database(f"{slug}_wh", owner=f"{slug}_user", password=f"{slug}-secret")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create table dalgo_sleep (seconds float)")
        dsns[slug] = dsn
        write_spec(
            orgs_dir,
            slug,
            {
                "slug": slug,
                "name": slug.title(),
                "warehouse": {
                    "type": "postgres",
                    "host": postgres.host,
                    "port": postgres.port,
                    "user": f"{slug}_user",
                    "password": {"env": f"{slug.upper()}_PG_PASSWORD"},
                    "database": f"{slug}_wh",
                    "schema": "analytics",
                },
                "dbt_projects": [{"name": "tiny", "path": str(project)}],
            },
        )
    return dsns


@dataclass
class Topology:
    root: Path
    proc: subprocess.Popen
    run_dir: Path
    webserver: str
    api: str
    dagster_dsn: str
    warehouses: dict[str, str]
    postgres: PostgresServer
    env: dict[str, str]
    operator_token: str = ""
    root_token: str = ""

    @property
    def projects_root(self) -> Path:
        """The operator's dbt projects root (``DALGO_DBT_PROJECTS_DIR``)."""
        return self.root / "projects"

    # --- processes -----------------------------------------------------------------------------------

    def pid(self, name: str) -> int:
        return int((self.run_dir / "pids" / f"{name}.pid").read_text().split()[0])

    def output(self) -> str:
        logs = sorted((self.run_dir / "logs").glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in logs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        stop_from_pid_files(self.run_dir, grace=5)

    # --- Dagster -------------------------------------------------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.webserver}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        if not response.ok or response.json().get("errors"):
            raise RuntimeError(f"GraphQL answered {response.status_code}: {response.text[:1500]}")
        return response.json()["data"]

    def launch(self, slug: str) -> str:
        """Run every asset of the organization through the API (``POST /api/runs/``), as a member would."""
        response = requests.post(
            f"{self.api}/api/runs/",
            json={"assets": list(ASSETS)},
            headers={"Authorization": f"Bearer {self.operator_token}", "x-dalgo-org": slug},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        return response.json()["run_id"]

    def launch_job(self, slug: str) -> str:
        """Launch the organization's all-assets job as an operator does: the webserver's ``launchRun``."""
        params = {
            "selector": {
                "repositoryLocationName": f"org_{slug}",
                "repositoryName": "__repository__",
                "jobName": f"{slug}__all_assets",
            },
            "runConfigData": {},
        }
        result = self.graphql(LAUNCH, {"p": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun failed: {result}")
        return result["run"]["runId"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.graphql(RUN, {"id": run_id})["runOrError"]

    def wait_run(self, run_id: str, timeout: float = 300) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.run(run_id)["status"]
            if status in TERMINAL:
                return status
            time.sleep(1)
        raise TimeoutError(f"run {run_id} still {status}:\n{self.output()}")

    def wait_locations_loaded(self, timeout: float = 120) -> dict[str, str]:
        """Every location's load status once each has loaded its definitions (a location whose code
        server did not answer yet shows LOADED with an error until the webserver's watch reloads it)."""
        deadline = time.time() + timeout
        while True:
            entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
            states = {e["name"]: e["loadStatus"] for e in entries}
            names = set(states)
            if locations_settled(f"{self.webserver}/graphql", names) or time.time() > deadline:
                return states
            time.sleep(1)

    def wait_location_reloaded(self, name: str, after: float, timeout: float = 180) -> None:
        """Until the webserver reloaded ``name`` after ``after`` (a time) and shows its definitions: a
        code server that died is still shown as it was for a few seconds before the watch notices."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = self.graphql(LOCATION_UPDATED, {"name": name})["workspaceLocationEntryOrError"]
            if entry.get("updatedTimestamp", 0) > after and locations_settled(f"{self.webserver}/graphql", {name}):
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} was not reloaded after {after}: {self.wait_locations_loaded(0)}")

    def sql(self, query: str, *args: Any, dsn: str | None = None) -> list[tuple]:
        with psycopg.connect(dsn or self.dagster_dsn, autocommit=True) as conn:
            cursor = conn.execute(query, args)
            return cursor.fetchall() if cursor.description else []

    def code_server(self, slug: str) -> psutil.Process:
        """The organization's code server: Dagster's proxy, listening on the organization's port
        (supervisord runs the ``dalgo-fork`` it was forked for)."""
        return listening_process(code_servers(self.run_dir / "workspace.yaml")[slug])

    def run_worker(self, slug: str) -> psutil.Process | None:
        """The process executing a run of this organization: a child of its code server's server."""
        port = code_servers(self.run_dir / "workspace.yaml")[slug]
        for child in (c for p in code_server_processes(port) for c in p.children(recursive=True)):
            try:
                cmdline = " ".join(child.cmdline())
            except (psutil.ZombieProcess, psutil.NoSuchProcess):  # a worker that just ended
                continue
            if "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
                return child
        return None

    # --- API -----------------------------------------------------------------------------------------

    def setup_api(self) -> None:
        done = subprocess.run(
            [str(BIN / "python"), "manage.py", "shell", "-c", API_SETUP],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        self.operator_token = self.login(OPERATOR)
        self.root_token = self.login(ROOT)

    def login(self, email: str) -> str:
        response = requests.post(f"{self.api}/api/login/", json={"email": email, "password": PASSWORD}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def token(self, email: str) -> str:
        """A new user's token (signed up with the platform's signup code)."""
        requests.post(
            f"{self.api}/api/signup/",
            json={"email": email, "password": PASSWORD, "signup_code": SIGNUP_CODE},
            timeout=30,
        )
        return self.login(email)


def start_topology(root: Path, postgres: PostgresServer) -> Topology:
    """Write two orgs, create the Dagster database and run ``dalgo serve`` until it says it is ready."""
    orgs_dir, home = root / "orgs", root / "home"
    orgs_dir.mkdir(parents=True)
    warehouses = write_orgs(orgs_dir, root / "projects", postgres)
    dagster_dsn = postgres.create_database("dagster_serve", owner="dagster", password="dagster-secret")
    api_dsn = postgres.create_database("dalgo_api_serve", owner="dalgo_api", password="api-secret")
    ports = {"webserver": free_port(), "api": free_port(), "grpc": free_port_range()}
    env = {
        **os.environ,
        "DALGO_HOME": str(home),
        "DALGO_ORGS_DIR": str(orgs_dir),
        "DAGSTER_HOME": str(root / "dagster"),
        "ALPHA_PG_PASSWORD": "alpha-secret",
        "BETA_PG_PASSWORD": "beta-secret",
        "DALGO_API_SIGNUP_CODE": SIGNUP_CODE,
        "DALGO_API_SECRET_KEY": "test-" + "k" * 60,
        "DALGO_AUTOMATION_INTERVAL_SECONDS": "5",
        "DALGO_DBT_PROJECTS_DIR": str(root / "projects"),
        "DALGO_GIT_SCHEMES": "https,ssh,file",  # the tests' git repositories are local
        # connectors installed once per test session (and worker), as in tests/ingestion
        "DALGO_CONNECTORS_DIR": str(root.parent / "airbyte-connectors"),
    }
    api_env = {**env, "DALGO_API_DATABASE_URL": api_dsn, "DJANGO_SETTINGS_MODULE": "dalgo_api.settings"}
    argv = [
        str(BIN / "dalgo"),
        "serve",
        "--postgres-url",
        dagster_dsn,
        "--api-database-url",
        api_dsn,
        "--webserver-port",
        str(ports["webserver"]),
        "--api-port",
        str(ports["api"]),
        "--grpc-base-port",
        str(ports["grpc"]),
    ]
    log = open(root / "serve.log", "wb")  # noqa: SIM115 - the subprocess writes to it until stopped
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    topology = Topology(
        root,
        proc,
        home / "platform" / "run",
        f"http://127.0.0.1:{ports['webserver']}",
        f"http://127.0.0.1:{ports['api']}",
        dagster_dsn,
        warehouses,
        postgres,
        api_env,
    )
    deadline = time.time() + 600  # dbt parse and five processes starting; slow on a busy 2-core machine
    while "dalgo serve: ready" not in (root / "serve.log").read_text(errors="replace"):
        if proc.poll() is not None or time.time() > deadline:
            text = (root / "serve.log").read_text(errors="replace")
            topology.stop()
            raise RuntimeError(f"dalgo serve did not start:\n{text[-4000:]}\n{topology.output()}")
        time.sleep(0.5)
    topology.setup_api()
    return topology
