"""Every change through the API is live when the API answers, with no restart anywhere: the sequence an
organization goes through in its first hour, driven over HTTP against a running platform (``dalgo
serve`` in test_serve.py). Each step checks Dagster's webserver directly, not only the API."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.orgs import write_dbt_project

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
TERMINAL = {"succeeded", "failed", "cancelled"}
PEOPLE = {"models/people.sql": "select 1 as id, 'ada' as name\n"}
EXTRA = {"models/extra_numbers.sql": "select 42 as answer\n"}
REPORTS = {
    "models/sources.yml": (
        "version: 2\nsources:\n  - name: faker\n    schema: raw\n    tables:\n"
        "      - name: users\n      - name: products\n      - name: purchases\n"
    ),
    "models/users_count.sql": "select count(*) as users from {{ source('faker', 'users') }}\n",
}
CONNECTION = {
    "name": "faker",
    "source": {"connector": "source-faker", "config": {"count": 20, "seed": 7}},
    "streams": [{"name": "users"}, {"name": "products"}, {"name": "purchases"}],
}


@dataclass
class Platform:
    """A running platform: the API, the webserver, and the root of the operator's dbt projects."""

    api: str
    webserver: str
    token: str  # a Super Admin's
    projects_root: Path

    def call(self, method: str, path: str, body: Any = None, *, org: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **({"x-dalgo-org": org} if org else {})}
        return requests.request(method, f"{self.api}{path}", json=body, headers=headers, timeout=900)

    def ok(self, method: str, path: str, body: Any = None, *, org: str | None = None, status: int = 201) -> Any:
        response = self.call(method, path, body, org=org)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:3000]}"
        return response.json() if response.content else None

    def locations(self) -> dict[str, str]:
        response = requests.post(f"{self.webserver}/graphql", json={"query": LOCATIONS}, timeout=60)
        return {e["name"]: e["loadStatus"] for e in response.json()["data"]["workspaceOrError"]["locationEntries"]}

    def asset_keys(self, slug: str) -> set[str]:
        return {a["key"] for a in self.ok("GET", "/api/assets/", org=slug, status=200)}

    def finished(self, slug: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.time() + timeout
        while (run := self.ok("GET", f"/api/runs/{run_id}", org=slug, status=200))["state"] not in TERMINAL:
            assert time.time() < deadline, f"run {run_id} still {run['state']}"
            time.sleep(1)
        return run

    def run(self, slug: str, assets: list[str]) -> dict[str, Any]:
        run = self.finished(slug, self.ok("POST", "/api/runs/", {"assets": assets}, org=slug)["run_id"])
        assert run["state"] == "succeeded", run
        return run


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True
    )


def first_hour_of_an_organization(platform: Platform) -> str:
    """Create an organization and change it in every way through the API; each change is used at once.
    Returns the slug of the organization, deleted at the end."""
    org = platform.ok("POST", "/api/organizations/", {"name": "Live Changes NGO"})
    slug, location = org["slug"], f"org_{org['slug']}"
    assert platform.locations().get(location) == "LOADED"
    own = platform.projects_root / slug

    # a dbt project, then a second one: each is assets as soon as the API answers, and runs
    people = write_dbt_project(own, "people", PEOPLE)
    platform.ok("POST", "/api/dbt/projects/", {"name": "people", "path": str(people)}, org=slug)
    assert "people/people" in platform.asset_keys(slug)
    platform.run(slug, ["people/people"])
    extra = write_dbt_project(own, "extra", EXTRA)
    platform.ok("POST", "/api/dbt/projects/", {"name": "extra", "path": str(extra)}, org=slug)
    platform.run(slug, ["extra/extra_numbers"])

    # a pipeline: its job exists as soon as the API answers
    pipeline = {"name": "nightly", "assets": ["extra/*"], "schedule": {"cron": "0 2 * * *"}}
    platform.ok("POST", "/api/pipelines/", pipeline, org=slug)
    run = platform.finished(slug, platform.ok("POST", "/api/pipelines/nightly/runs", org=slug)["run_id"])
    assert run["state"] == "succeeded" and run["pipeline"] == "nightly", run

    # a git project: a model committed later is live once git pull answers
    repo = write_dbt_project(own, "analytics", {"models/first.sql": "select 1 as x\n"})
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    source = {"name": "analytics", "git": {"url": f"file://{repo}", "ref": "main"}}
    platform.ok("POST", "/api/dbt/projects/", source, org=slug)
    (repo / "models" / "second.sql").write_text("select 2 as y\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "second")
    pulled = platform.ok("POST", "/api/dbt/projects/analytics/commands/git_pull", org=slug)
    assert pulled["state"] == "succeeded", pulled
    assert "analytics/second" in platform.asset_keys(slug)
    platform.run(slug, ["analytics/second"])

    # a connection of three streams and a freshness target downstream of it: the daemon's automation
    # runs the model with the sync it needs
    platform.ok("POST", "/api/connections/", CONNECTION, org=slug)
    reports = write_dbt_project(own, "reports", REPORTS)
    platform.ok("POST", "/api/dbt/projects/", {"name": "reports", "path": str(reports)}, org=slug)
    target = {"name": "fresh_users", "assets": ["reports/users_count"], "freshness": {"max_lag_minutes": 60}}
    platform.ok("POST", "/api/pipelines/", target, org=slug)
    deadline = time.time() + 600
    while True:
        automated = platform.ok("GET", "/api/runs/?trigger=automation", org=slug, status=200)["runs"]
        done = [r for r in automated if "reports/users_count" in (r["assets"] or []) and r["state"] in TERMINAL]
        if done:
            break
        assert time.time() < deadline, f"no automation run of reports/users_count: {automated}"
        time.sleep(2)
    assert done[0]["state"] == "succeeded", done[0]
    assert {"faker/users", "reports/users_count"} <= set(done[0]["assets"]), done[0]

    # deleted: its location leaves the webserver when the API answers
    platform.ok("DELETE", f"/api/organizations/{slug}", org=slug, status=204)
    assert location not in platform.locations()
    return slug


TABLE = "{{ config(materialized='table') }}\n"
PLATFORM_VARIABLES = ["DAGSTER_PG_PASSWORD", "DALGO_API_SECRET_KEY", "DALGO_API_DATABASE_URL"]


def _reads(path: str) -> str:
    return f"{TABLE}select content from read_text('{path}')\n"


def hostile_tenant(platform: Platform, secrets: list[str], platform_files: list[Path], home: Path) -> None:
    """A tenant whose dbt code goes for the platform's secrets, through the API and real runs: a parse
    error built from the platform's environment, models reading the process environment, the
    platform's variables and its files. Nothing of the platform reaches a response, a run's logs or
    the tenant's tables."""
    slug = platform.ok("POST", "/api/organizations/", {"name": "Hostile NGO"})["slug"]
    # its warehouse on the platform's network (cloud metadata, a private address): refused, nothing saved
    for host in ("169.254.169.254", "10.0.0.5"):
        body = {"type": "postgres", "host": host, "user": "x", "database": "x", "password": "x-pass"}
        moved = platform.call("PUT", "/api/organizations/warehouse", body, org=slug)
        assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "warehouse.host", moved.text
    assert platform.ok("GET", "/api/organizations/warehouse", org=slug, status=200)["type"] == "duckdb"
    own = platform.projects_root / slug
    leak = "{{ exceptions.raise_compiler_error('leak=' ~ env_var('DAGSTER_PG_PASSWORD', 'unset')) }}\n"
    leaky = write_dbt_project(own, "leak", {"models/leak.sql": leak})
    refused = platform.call("POST", "/api/dbt/projects/", {"name": "leak", "path": str(leaky)}, org=slug)
    assert refused.status_code == 422 and "leak=unset" in refused.text, refused.text

    variables = ", ".join(f'\'{{{{ env_var("{n}", "unset") }}}}\' as v{i}' for i, n in enumerate(PLATFORM_VARIABLES))
    files = {
        "models/environ.sql": _reads("/proc/self/environ"),
        "models/variables.sql": f"{TABLE}select {variables}\n",
        **{f"models/file_{i}.sql": _reads(str(p)) for i, p in enumerate(platform_files)},
    }
    project = write_dbt_project(own, "probe", files)
    platform.ok("POST", "/api/dbt/projects/", {"name": "probe", "path": str(project)}, org=slug)
    platform.run(slug, ["probe/environ", "probe/variables"])
    reads = [f"probe/file_{i}" for i in range(len(platform_files))]
    files_run = platform.finished(slug, platform.ok("POST", "/api/runs/", {"assets": reads}, org=slug)["run_id"])
    logs = platform.ok("GET", f"/api/runs/{files_run['run_id']}/logs?limit=500", org=slug, status=200)

    import duckdb

    with duckdb.connect(str(home / "orgs" / slug / "warehouse.duckdb"), read_only=True) as conn:
        tables = {r[0] for r in conn.execute("select table_name from information_schema.tables").fetchall()}
        seen = [conn.execute(f"select * from {t}").fetchall() for t in sorted(tables)]
    assert {"environ", "variables"} <= tables
    assert all(value == "unset" for value in seen[sorted(tables).index("variables")][0])
    for text in (repr(seen), refused.text, repr(logs), repr(files_run)):
        for secret in secrets:
            assert secret not in text, f"a platform secret reached the tenant: {text[:300]}"
    platform.ok("DELETE", f"/api/organizations/{slug}", org=slug, status=204)
