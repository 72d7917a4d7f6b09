"""The API on a real Dagster webserver and daemon: an organization created through the API gets a dbt
project, runs started through the API are followed through their logs until they end, a failing model
shows its error, two dbt runs on one project run one after the other, and so do two runs of two dbt
projects writing one DuckDB warehouse, a run launched straight through
Dagster (as from Dagit) is listed for its organization only, users of another organization see nothing,
every role gets exactly what the permission matrix gives it, a run requested right after an
organization was created succeeds, a retried run request with the same ``Idempotency-Key`` launches one
run (per organization), a run launched while the API cannot read Dagster's storage answers 201, and a
connection reset runs the connection's reset job.

The tests run in file order and share one webserver + daemon (module fixture ``stack``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dalgo_api.accounts.roles import load_matrix
from dalgo_api.api import operations
from dalgo_api.specs.store import workspace_file
from dalgo_core.names import REPOSITORY, location_name
from dalgo_core.spec import load_org_spec
from tests.api_dagster.conftest import ROLES, Stack, create_org_with_members, wait_for
from tests.support.orgs import write_dbt_project

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"

GOOD = ["people/people", "people/people_clean"]
BAD = ["people/broken"]
PROJECT_FILES = {
    "seeds/people.csv": "id,name\n1,asha\n2,ravi\n3,\n",
    "models/people_clean.sql": "select id, upper(name) as name from {{ ref('people') }}\n",
    "models/broken.sql": "{{ config(materialized='table') }}\nselect cast('not a number' as integer) as n\n",
}
RUN_TIMEOUT = 300


def org_a(stack: Stack) -> str:
    return sorted(stack.orgs)[0]


def org_b(stack: Stack) -> str:
    return sorted(stack.orgs)[1]


def run_of(stack: Stack, org: str, run_id: str) -> dict:
    response = stack.call("GET", f"/api/runs/{run_id}", org=org)
    assert response.status_code == 200, response.content
    return response.json()


def follow_logs(stack: Stack, org: str, run_id: str) -> list[dict]:
    """Page through the run's logs with the cursor, as a client following a running run does."""
    events: list[dict] = []
    cursor = None

    def step() -> bool:
        nonlocal cursor
        query = f"?limit=50&cursor={cursor}" if cursor else "?limit=50"
        page = stack.call("GET", f"/api/runs/{run_id}/logs{query}", org=org, role="guest")
        assert page.status_code == 200, page.content
        body = page.json()
        events.extend(body["events"])
        cursor = body["cursor"] or cursor
        return body["finished"] and not body["has_more"]

    wait_for(step, RUN_TIMEOUT, interval=1, what=f"run {run_id} to finish")
    return events


def test_dbt_project_added_through_the_api_becomes_assets(stack: Stack):
    slug = org_a(stack)
    folder = write_dbt_project(stack.projects(slug), "people", PROJECT_FILES)
    bad = stack.call("POST", "/api/dbt/projects/", {"name": "people", "path": "/nonexistent"}, org=slug)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path"
    empty = stack.projects(slug) / "empty"
    empty.mkdir()
    bad = stack.call("POST", "/api/dbt/projects/", {"name": "people", "path": str(empty)}, org=slug)
    assert bad.status_code == 422 and "dbt_project.yml" in bad.json()["detail"]

    created = stack.call(
        "POST", "/api/dbt/projects/", {"name": "people", "path": str(folder)}, org=slug, role="account-manager"
    )
    assert created.status_code == 201, created.content
    assets = wait_for(lambda: served_assets(stack, slug, role="guest"), 120, what="assets")
    by_key = {a["key"]: a for a in assets}
    assert set(by_key) == {"people/people", "people/people_clean", "people/broken"}
    assert {a["kind"] for a in assets} == {"dbt"}
    detail = stack.call("GET", "/api/assets/people/people_clean", org=slug).json()
    assert detail["upstream"] == ["people/people"] and detail["dagit_url"].endswith("/people/people_clean")
    lineage = stack.call("GET", "/api/assets/lineage", org=slug).json()
    assert {"upstream": "people/people", "downstream": "people/people_clean"} in lineage["edges"]


def test_bad_run_requests_name_the_problem(stack: Stack):
    slug = org_a(stack)
    empty = stack.call("POST", "/api/runs/", {"assets": []}, org=slug)
    assert empty.status_code == 422 and "assets" in empty.json()["detail"]
    unknown = stack.call("POST", "/api/runs/", {"assets": ["people/people", "people/nope"]}, org=slug)
    assert unknown.status_code == 422
    assert "'people/nope'" in unknown.json()["detail"] and slug in unknown.json()["detail"]
    assert stack.call("GET", "/api/assets/people/nope", org=slug).status_code == 404


@dataclass(frozen=True)
class PeopleRuns:
    """The API's answers to launching runs of the people project: one that succeeds, one that fails, and
    a chore queued behind both."""

    good: dict[str, Any]
    bad: dict[str, Any]
    chore: dict[str, Any]


@pytest.fixture(scope="module")
def people_runs(stack: Stack) -> PeopleRuns:
    """Launched once for the module, after the first test added the people project."""
    slug = org_a(stack)
    answers = (
        stack.call("POST", "/api/runs/", {"assets": GOOD}, org=slug, role="pipeline-manager"),
        stack.call("POST", "/api/runs/", {"assets": BAD}, org=slug, role="pipeline-manager"),
        stack.call("POST", "/api/dbt/projects/people/commands/dbt_clean", org=slug, role="analyst"),
    )
    assert [a.status_code for a in answers] == [201, 201, 201], [a.content for a in answers]
    return PeopleRuns(*(a.json() for a in answers))


def test_two_dbt_runs_on_one_project_queue_then_succeed_and_fail(stack: Stack, people_runs: PeopleRuns):
    slug = org_a(stack)
    a, b = people_runs.good, people_runs.bad
    assert a["trigger"] == "manual" and a["user"] == f"pipeline-manager@{slug.replace('_', '-')}.example.org"
    assert a["assets"] == GOOD and a["state"] == "queued"

    # while the first run holds the pool of the DuckDB warehouse, the second one waits and the API says why
    def second_waits_for_pool() -> bool:
        run = run_of(stack, slug, b["run_id"])
        reason = (run.get("queue") or {}).get("reason") or ""
        return run["state"] == "queued" and f"warehouse/{slug}" in reason

    wait_for(second_waits_for_pool, RUN_TIMEOUT, what="the second run to wait for the pool")

    events = follow_logs(stack, slug, a["run_id"])
    kinds = [e["type"] for e in events]
    assert "PIPELINE_SUCCESS" in kinds
    assert {e["asset"] for e in events if e["type"] == "ASSET_MATERIALIZATION"} == set(GOOD)
    good = run_of(stack, slug, a["run_id"])
    assert good["state"] == "succeeded" and good["ended_at"]

    captured = [e["file_key"] for e in events if e["type"] == "LOGS_CAPTURED"]
    assert captured
    output = stack.call("GET", f"/api/runs/{a['run_id']}/output/{captured[0]}", org=slug)
    assert output.status_code == 200 and "people_clean" in output.json()["stdout"] + output.json()["stderr"]

    follow_logs(stack, slug, b["run_id"])
    bad = run_of(stack, slug, b["run_id"])
    assert bad["state"] == "failed"
    assert "broken" in bad["error"] and "not a number" in bad["error"].lower()
    # one after the other: the failing run started only after the first one ended
    assert datetime.fromisoformat(bad["started_at"]) >= datetime.fromisoformat(good["ended_at"])

    clean = stack.call("GET", "/api/assets/people/people_clean", org=slug).json()
    assert clean["last_materialization"]["run_id"] == a["run_id"]
    listed = stack.call("GET", "/api/runs/?status=FAILURE", org=slug).json()["runs"]
    assert [r["run_id"] for r in listed] == [b["run_id"]]
    by_asset = stack.call("GET", "/api/runs/?asset=people/people_clean", org=slug).json()["runs"]
    assert [r["run_id"] for r in by_asset] == [a["run_id"]]
    page = stack.call("GET", "/api/runs/?limit=1", org=slug).json()
    assert len(page["runs"]) == 1 and page["next_cursor"]
    rest = stack.call("GET", f"/api/runs/?limit=10&cursor={page['next_cursor']}", org=slug).json()
    assert page["runs"][0]["run_id"] not in [r["run_id"] for r in rest["runs"]] and rest["runs"]


def test_data_statistics_behind_the_flag(stack: Stack):
    slug = org_a(stack)
    path = "/api/warehouse/tables/main/people_clean"
    denied = stack.call("GET", f"{path}/statistics", org=slug, role="analyst")
    assert denied.status_code == 403 and "DATA_STATISTICS" in denied.json()["detail"]
    flag = stack.call("PUT", "/api/organizations/flags/DATA_STATISTICS", {"enabled": True}, org=slug)
    assert flag.status_code == 200, flag.content
    preview = stack.call("GET", f"{path}/preview?limit=2", org=slug, role="analyst").json()
    assert [c["name"] for c in preview["columns"]] == ["id", "name"] and len(preview["rows"]) == 2
    stats = stack.call("GET", f"{path}/statistics", org=slug, role="analyst").json()
    assert stats["rows"] == 3
    name = next(c for c in stats["columns"] if c["name"] == "name")
    assert (name["nulls"], name["distinct"], name["min"], name["max"]) == (1, 2, "ASHA", "RAVI")
    missing = stack.call("GET", "/api/warehouse/tables/main/nope/preview", org=slug, role="analyst")
    assert missing.status_code == 404


def test_pipelines_are_validated_written_and_toggled(stack: Stack):
    slug = org_a(stack)
    bad_cron = {"name": "nightly", "assets": ["people/*"], "schedule": {"cron": "61 * * * *"}}
    response = stack.call("POST", "/api/pipelines/", bad_cron, org=slug)
    assert response.status_code == 422 and "cron" in response.json()["detail"]
    nothing = {"name": "nightly", "assets": ["sales/*"], "schedule": {"cron": "0 2 * * *"}}
    response = stack.call("POST", "/api/pipelines/", nothing, org=slug)
    assert response.status_code == 422 and "'sales/*'" in response.json()["detail"]

    good = {"name": "nightly", "assets": ["people/people*"], "schedule": {"cron": "0 2 * * *"}}
    created = stack.call("POST", "/api/pipelines/", good, org=slug, role="pipeline-manager")
    assert created.status_code == 201, created.content
    spec = yaml.safe_load((stack.root / "orgs" / slug / "org.yaml").read_text())
    assert spec["pipelines"][0]["schedule"]["cron"] == "0 2 * * *"
    shown = stack.call("GET", "/api/pipelines/nightly", org=slug, role="guest").json()
    assert shown["kind"] == "schedule" and {t["asset"] for t in shown["targets"]} == set(GOOD)
    assert all(t["last_materialization"] for t in shown["targets"])
    disabled = stack.call("POST", "/api/pipelines/nightly/disable", org=slug, role="pipeline-manager")
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False, disabled.content
    spec = yaml.safe_load((stack.root / "orgs" / slug / "org.yaml").read_text())
    assert spec["pipelines"][0]["enabled"] is False

    run = stack.call("POST", "/api/pipelines/nightly/runs", org=slug, role="pipeline-manager")
    assert run.status_code == 201, run.content
    assert run.json()["pipeline"] == "nightly" and run.json()["state"] == "queued"
    cancelled = stack.call("POST", f"/api/runs/{run.json()['run_id']}/cancel", org=slug, role="pipeline-manager")
    assert cancelled.status_code == 200
    wait_for(lambda: run_of(stack, slug, run.json()["run_id"])["state"] == "cancelled", 60, what="cancel")
    again = stack.call("POST", f"/api/runs/{run.json()['run_id']}/cancel", org=slug)
    assert again.status_code == 409


def test_maintenance_chore_output_is_in_the_run_logs(stack: Stack, people_runs: PeopleRuns):
    slug = org_a(stack)
    events = follow_logs(stack, slug, people_runs.chore["run_id"])
    chore = run_of(stack, slug, people_runs.chore["run_id"])
    assert chore["state"] == "succeeded", chore
    assert chore["job"].endswith("__people__dbt_clean") and chore["trigger"] == "maintenance"
    assert any("dbt clean" in e["message"] for e in events)


def test_two_runs_writing_one_duckdb_warehouse_take_turns(stack: Stack):
    """Builds of two dbt projects were on two pools and ran at once, and one of them could fail on the
    DuckDB file's lock: now both take the warehouse's pool, so the second waits for the first (the API
    says so) and both succeed."""
    slug = org_a(stack)
    folder = write_dbt_project(stack.projects(slug), "extra", {"seeds/extra.csv": "id\n1\n2\n"})
    created = stack.call("POST", "/api/dbt/projects/", {"name": "extra", "path": str(folder)}, org=slug)
    assert created.status_code == 201, created.content
    answers = [
        stack.call("POST", "/api/runs/", {"assets": [key]}, org=slug) for key in ("people/people", "extra/extra")
    ]
    assert [a.status_code for a in answers] == [201, 201], [a.content for a in answers]
    first, second = (a.json()["run_id"] for a in answers)
    reasons: set[str] = set()

    def both_ended() -> bool:
        runs = [run_of(stack, slug, run_id) for run_id in (first, second)]
        reasons.add((runs[1].get("queue") or {}).get("reason") or "")
        return all(r["ended_at"] for r in runs)

    wait_for(both_ended, RUN_TIMEOUT, what="both runs to end")
    one, two = run_of(stack, slug, first), run_of(stack, slug, second)
    assert (one["state"], two["state"]) == ("succeeded", "succeeded"), (one, two)
    assert datetime.fromisoformat(two["started_at"]) >= datetime.fromisoformat(one["ended_at"])
    assert f"waiting for pool warehouse/{slug} (held by run {first})" in reasons, reasons
    assert stack.call("DELETE", "/api/dbt/projects/extra", org=slug).status_code == 204


def served_assets(stack: Stack, slug: str, role: str = "super-admin") -> list[dict] | None:
    """The organization's assets; None while Dagster is still loading its code location (503 saying so)."""
    response = stack.call("GET", "/api/assets/", org=slug, role=role)
    if response.status_code == 503 and "loading its code location" in response.json()["detail"]:
        assert response.headers["Retry-After"] == "5"
        return None
    assert response.status_code == 200, response.content
    return response.json()


def listed(stack: Stack, org: str, role: str = "guest") -> list[str]:
    response = stack.call("GET", "/api/runs/?limit=100", org=org, role=role)
    assert response.status_code == 200, response.content
    return [r["run_id"] for r in response.json()["runs"]]


LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } } }"""


def test_a_run_launched_from_dagit_is_listed_for_its_organization_only(stack: Stack):
    a, b = org_a(stack), org_b(stack)
    # what Dagit sends when an operator materializes an asset: no Dalgo tag at all
    params = {
        "selector": {
            "repositoryLocationName": location_name(a),
            "repositoryName": REPOSITORY,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [a, "people", "people"]}],
        },
        "runConfigData": {},
    }
    launched = stack.webserver.graphql(LAUNCH, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    wait_for(lambda: run_id in listed(stack, a), 30, what="the Dagit run in its organization's list")
    shown = run_of(stack, a, run_id)
    assert shown["trigger"] is None and shown["user"] is None and shown["assets"] == ["people/people"]
    assert run_id in [r["run_id"] for r in stack.call("GET", "/api/runs/?asset=people/people", org=a).json()["runs"]]
    assert run_id not in listed(stack, b)
    assert stack.call("GET", f"/api/runs/{run_id}", org=b).status_code == 404
    assert stack.call("GET", f"/api/runs/{run_id}/logs", org=b).status_code == 404
    follow_logs(stack, a, run_id)
    assert run_of(stack, a, run_id)["state"] == "succeeded"


def test_other_organization_sees_nothing(stack: Stack, people_runs: PeopleRuns):
    a, b = org_a(stack), org_b(stack)
    run_id = people_runs.good["run_id"]
    for role in ROLES[1:]:
        for path in (
            f"/api/runs/{run_id}",
            f"/api/runs/{run_id}/logs",
            f"/api/runs/{run_id}/output/abc",
            "/api/assets/people/people_clean",
            "/api/pipelines/nightly",
            "/api/dbt/projects/people",
        ):
            response = stack.call("GET", path, org=b, role=role)
            assert response.status_code == 404, (role, path, response.content)
        assert stack.call("POST", f"/api/runs/{run_id}/cancel", org=b, role=role).status_code in (404,)
        listed = stack.call("GET", "/api/runs/", org=b, role=role).json()["runs"]
        assert run_id not in [r["run_id"] for r in listed]
        # B's token naming A's organization: not a member
        cross = stack.api.get("/api/runs/", token=stack.orgs[b].tokens[role], org=a)
        assert cross.status_code == 404
    started = stack.call("POST", "/api/runs/", {"assets": GOOD}, org=b, role="pipeline-manager")
    assert started.status_code == 422 and "'people/people'" in started.json()["detail"]
    assert stack.call("GET", "/api/assets/", org=b).json() == []


# --- the permission matrix --------------------------------------------------------------------------

MINE = (
    "/api/assets",
    "/api/runs",
    "/api/connections",
    "/api/dbt",
    "/api/pipelines",
    "/api/warehouse",
)
CONNECTION = {"name": "faker", "source": {"connector": "source-faker"}, "streams": [{"name": "users"}]}
# another connection with the same streams: it lands in its own schema (two may not write one table)
SECOND_CONNECTION = {**CONNECTION, "name": "faker_two", "destination_schema": "raw_two"}
PIPELINE = {"name": "daily", "assets": ["people/people"], "schedule": {"cron": "0 3 * * *"}}
# (method, path) -> (concrete path, body, status when allowed, with Dagster's webserver down?)
# Writes run with the webserver unreachable: the permission check passes or fails before Dagster is
# asked, and an allowed write is undone (503) instead of changing the organization.
CASES: dict[tuple[str, str], tuple[str, Any, int, bool]] = {
    ("GET", "/api/assets/"): ("/api/assets/", None, 200, False),
    ("GET", "/api/assets/lineage"): ("/api/assets/lineage", None, 200, False),
    ("GET", "/api/assets/{key}"): ("/api/assets/people/people", None, 200, False),
    ("GET", "/api/runs/"): ("/api/runs/", None, 200, False),
    ("POST", "/api/runs/"): ("/api/runs/", {"assets": GOOD}, 503, True),
    ("GET", "/api/runs/{run_id}"): ("/api/runs/{good}", None, 200, False),
    ("POST", "/api/runs/{run_id}/cancel"): ("/api/runs/{good}/cancel", None, 409, False),
    ("POST", "/api/runs/{run_id}/retry"): ("/api/runs/{good}/retry", None, 409, False),  # it succeeded
    ("GET", "/api/runs/{run_id}/logs"): ("/api/runs/{good}/logs", None, 200, False),
    ("GET", "/api/runs/{run_id}/output/{file_key}"): ("/api/runs/{good}/output/nofile", None, 200, False),
    ("GET", "/api/connections/"): ("/api/connections/", None, 200, False),
    ("POST", "/api/connections/"): ("/api/connections/", SECOND_CONNECTION, 503, True),
    ("GET", "/api/connections/{name}"): ("/api/connections/faker", None, 200, False),
    ("PUT", "/api/connections/{name}"): ("/api/connections/faker", CONNECTION, 503, True),
    ("DELETE", "/api/connections/{name}"): ("/api/connections/faker", None, 503, True),
    ("POST", "/api/connections/{name}/reset"): ("/api/connections/faker/reset", {"streams": ["users"]}, 503, True),
    ("POST", "/api/connections/{name}/sync"): ("/api/connections/faker/sync", None, 503, True),
    ("GET", "/api/connections/{name}/syncs"): ("/api/connections/faker/syncs", None, 200, False),
    ("GET", "/api/connections/{name}/schema-changes"): ("/api/connections/faker/schema-changes", None, 200, False),
    # tasks: saved, their worker started when the transaction commits (never, in this module's transaction)
    ("POST", "/api/connections/{name}/schema-changes/refresh"): (
        "/api/connections/faker/schema-changes/refresh",
        None,
        202,
        False,
    ),
    ("POST", "/api/connections/{name}/schema-changes/approve"): (
        "/api/connections/faker/schema-changes/approve",
        None,
        202,
        False,
    ),
    ("GET", "/api/dbt/projects/"): ("/api/dbt/projects/", None, 200, False),
    ("POST", "/api/dbt/projects/"): ("/api/dbt/projects/", {"name": "other", "path": "/nonexistent"}, 422, True),
    ("GET", "/api/dbt/projects/{name}"): ("/api/dbt/projects/people", None, 200, False),
    ("PUT", "/api/dbt/projects/{name}"): ("/api/dbt/projects/people", {"name": "people", "path": "/no"}, 422, True),
    ("DELETE", "/api/dbt/projects/{name}"): ("/api/dbt/projects/people", None, 503, True),
    ("POST", "/api/dbt/projects/{name}/commands/{command}"): (
        "/api/dbt/projects/people/commands/dbt_deps",
        None,
        503,
        True,
    ),
    ("GET", "/api/pipelines/"): ("/api/pipelines/", None, 200, False),
    ("POST", "/api/pipelines/"): ("/api/pipelines/", PIPELINE, 503, True),
    ("GET", "/api/pipelines/{name}"): ("/api/pipelines/nightly", None, 200, False),
    ("PUT", "/api/pipelines/{name}"): ("/api/pipelines/nightly", {**PIPELINE, "name": "nightly"}, 503, True),
    ("DELETE", "/api/pipelines/{name}"): ("/api/pipelines/nightly", None, 503, True),
    ("POST", "/api/pipelines/{name}/enable"): ("/api/pipelines/nightly/enable", None, 503, True),
    ("POST", "/api/pipelines/{name}/disable"): ("/api/pipelines/nightly/disable", None, 503, True),
    ("POST", "/api/pipelines/{name}/runs"): ("/api/pipelines/nightly/runs", None, 503, True),
    ("GET", "/api/warehouse/tables/{schema_name}/{table}/preview"): (
        "/api/warehouse/tables/main/people/preview",
        None,
        200,
        False,
    ),
    ("GET", "/api/warehouse/tables/{schema_name}/{table}/statistics"): (
        "/api/warehouse/tables/main/people/statistics",
        None,
        200,
        False,
    ),
}


def test_permission_matrix_of_every_endpoint_and_role(
    stack: Stack, people_runs: PeopleRuns, monkeypatch: pytest.MonkeyPatch
):
    slug = org_a(stack)
    spec_file = stack.root / "orgs" / slug / "org.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["connections"] = [{**CONNECTION, "destination_schema": "raw"}]  # something to read and edit
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    before = load_org_spec(slug).model_dump()
    mine = {(m, p): perms for m, p, perms in operations() if p.startswith(MINE)}
    assert set(mine) == set(CASES), "every endpoint of this half of the API needs a case here"
    matrix = load_matrix()
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    for (method, template), (path, body, allowed_status, down) in CASES.items():
        path = path.format(good=people_runs.good["run_id"])
        for role in ROLES:
            if down:
                monkeypatch.setenv("DALGO_DAGSTER_URL", dead)
            else:
                monkeypatch.setenv("DALGO_DAGSTER_URL", stack.webserver.url)
            response = stack.call(method, path, body, org=slug, role=role)
            if set(mine[(method, template)]) <= matrix[role]:
                assert response.status_code == allowed_status, (role, method, path, response.content)
            else:
                assert response.status_code == 403, (role, method, path, response.content)
                assert f"your role in organization '{slug}' is {role}" in response.json()["detail"]
    monkeypatch.setenv("DALGO_DAGSTER_URL", stack.webserver.url)
    assert load_org_spec(slug).model_dump() == before, "a write with Dagster down changed the spec"
    assert os.environ["DALGO_DAGSTER_URL"] == stack.webserver.url


def new_org_with_people(stack: Stack, name: str) -> tuple[str, Path]:
    """A new organization, with its members, and the people dbt project added through the API."""
    members = create_org_with_members(stack.api, stack.root_token, name)
    slug = members.slug
    stack.orgs[slug] = members
    folder = write_dbt_project(stack.projects(slug), "people", PROJECT_FILES)
    created = stack.call("POST", "/api/dbt/projects/", {"name": "people", "path": str(folder)}, org=slug)
    assert created.status_code == 201, created.content
    return slug, folder


def test_a_new_organizations_first_run_succeeds_and_its_deletion_leaves_nothing_behind(stack: Stack):
    """Dagster's daemon reads the workspace once a minute and fails a run of a location it has not
    loaded yet: the API's launch waits for the daemon to know the new organization."""
    slug, _ = new_org_with_people(stack, "Org New")
    started = stack.call("POST", "/api/runs/", {"assets": GOOD}, org=slug, role="pipeline-manager")
    assert started.status_code == 201, started.content
    run_id = started.json()["run_id"]
    assert run_id in listed(stack, slug, role="pipeline-manager")
    events = follow_logs(stack, slug, run_id)
    run = run_of(stack, slug, run_id)
    assert run["state"] == "succeeded", (run, [e["message"] for e in events if e["level"] == "ERROR"])
    assert {e["asset"] for e in events if e["type"] == "ASSET_MATERIALIZATION"} == set(GOOD)

    # Deleted, the organization's location leaves the webserver at once (and the workspace file the
    # daemon re-reads), and a new organization of the same name gets a new slug and none of its runs.
    deleted = stack.api.delete(f"/api/organizations/{slug}", token=stack.root_token, org=slug)
    assert deleted.status_code == 204, deleted.content
    locations = stack.webserver.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
    assert location_name(slug) not in {entry["name"] for entry in locations}
    assert location_name(slug) not in workspace_file().read_text()
    again = create_org_with_members(stack.api, stack.root_token, "Org New")
    assert again.slug != slug
    stack.orgs[again.slug] = again
    assert run_id not in listed(stack, again.slug, role="pipeline-manager")
    assert stack.call("GET", f"/api/runs/{run_id}", org=again.slug).status_code == 404
    assert stack.call("GET", f"/api/runs/{run_id}/logs", org=again.slug).status_code == 404


def test_an_organization_whose_location_does_not_load_is_503_not_an_empty_graph(stack: Stack):
    """A location that serves no repository (here its dbt project lost its dbt_project.yml on disk, as a
    bad checkout would) answers every asset read and asset launch with 503 saying so, not an empty graph:
    no empty list, no unknown asset, no selection of nothing. The other organizations go on; put right
    and reloaded, the organization's assets are back."""
    from dalgo_api import bridge

    slug, folder = new_org_with_people(stack, "Org Unloaded")
    assert {a["key"] for a in wait_for(lambda: served_assets(stack, slug), 120, what="assets")} >= set(GOOD)

    project_file = folder / "dbt_project.yml"
    kept = project_file.read_text()
    project_file.unlink()
    with pytest.raises(bridge.DagsterRejected, match="does not load"):
        bridge.reload_location(slug)
    pipeline = {"name": "nightly", "assets": ["people/*"], "schedule": {"cron": "0 1 * * *"}}
    for method, path, body in (
        ("GET", "/api/assets/", None),
        ("GET", "/api/assets/lineage", None),
        ("GET", "/api/assets/people/people", None),
        ("POST", "/api/runs/", {"assets": GOOD}),
        ("POST", "/api/pipelines/", pipeline),
    ):
        response = stack.call(method, path, body, org=slug, role="account-manager")
        assert response.status_code == 503, (method, path, response.content)
        assert "Retry-After" not in response.headers  # retrying does not help: an operator must
        detail = response.json()["detail"]
        assert detail == f"organization '{slug}': its code location does not load; an operator can see why in Dagit"
    assert served_assets(stack, org_a(stack)) is not None, "another organization's assets stopped answering"

    project_file.write_text(kept)
    bridge.reload_location(slug)
    assert {a["key"] for a in served_assets(stack, slug) or []} >= set(GOOD)
    deleted = stack.api.delete(f"/api/organizations/{slug}", token=stack.root_token, org=slug)
    assert deleted.status_code == 204, deleted.content
    del stack.orgs[slug]


# --- Idempotency-Key ---------------------------------------------------------------------------------
# Each test makes sure its organizations have the `people` project (the tests above may have added it
# already), so that they also run on their own.

SEED = {"assets": ["people/people"]}
RUNS_OF = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { __typename
  ... on Runs { results { runId } } } }"""


def with_people_project(stack: Stack, slug: str) -> None:
    if stack.call("GET", "/api/dbt/projects/people", org=slug).status_code == 404:
        folder = write_dbt_project(stack.projects(slug), "people", {"seeds/people.csv": "id,name\n1,asha\n"})
        created = stack.call("POST", "/api/dbt/projects/", {"name": "people", "path": str(folder)}, org=slug)
        assert created.status_code == 201, created.content

    def has_seed() -> bool:
        return "people/people" in [a["key"] for a in served_assets(stack, slug) or []]

    wait_for(has_seed, 120, what=f"the people seed of {slug}")


def runs_in_dagster(stack: Stack, slug: str) -> set[str]:
    """The organization's runs as Dagster's webserver lists them."""
    tags = [{"key": "dagster/code_location", "value": location_name(slug)}]
    return {r["runId"] for r in stack.webserver.graphql(RUNS_OF, {"tags": tags})["runsOrError"]["results"]}


def post_run(stack: Stack, slug: str, key: str, body: dict = SEED):
    token = stack.orgs[slug].tokens["pipeline-manager"]
    return stack.api.call("POST", "/api/runs/", body, token=token, org=slug, headers={"Idempotency-Key": key})


def cancel(stack: Stack, slug: str, run_id: str) -> None:
    """Free the queue for the tests after this one (a run that already ended answers 409)."""
    assert stack.call("POST", f"/api/runs/{run_id}/cancel", org=slug).status_code in (200, 409)


def test_a_retried_run_request_with_the_same_idempotency_key_launches_one_run(stack: Stack):
    from django.utils import timezone

    from dalgo_api.runs.models import IdempotencyKey

    slug = org_a(stack)
    with_people_project(stack, slug)
    before = runs_in_dagster(stack, slug)
    first = post_run(stack, slug, "retry-me")
    again = post_run(stack, slug, "retry-me")
    assert first.status_code == again.status_code == 201, (first.content, again.content)
    run_id = first.json()["run_id"]
    assert again.json()["run_id"] == run_id and again.json()["assets"] == ["people/people"]
    assert runs_in_dagster(stack, slug) - before == {run_id}

    other_body = post_run(stack, slug, "retry-me", {"assets": ["people/people", "people/people"]})
    assert other_body.status_code == 422 and "Idempotency-Key" in other_body.json()["detail"]

    # the key as a request that died between the launch and recording its run leaves it: the run is
    # found by its launch tag once the claim is older than the longest launch, and nothing is launched
    IdempotencyKey.objects.filter(org__slug=slug, key="retry-me").update(
        run_id="", claimed_at=timezone.now() - timedelta(hours=1)
    )
    recovered = post_run(stack, slug, "retry-me")
    assert recovered.status_code == 201 and recovered.json()["run_id"] == run_id, recovered.content
    assert runs_in_dagster(stack, slug) - before == {run_id}
    cancel(stack, slug, run_id)


def test_the_same_idempotency_key_in_two_organizations_launches_two_runs(stack: Stack):
    a, b = org_a(stack), org_b(stack)
    for slug in (a, b):
        with_people_project(stack, slug)
    in_a, in_b = post_run(stack, a, "shared-key"), post_run(stack, b, "shared-key")
    assert in_a.status_code == in_b.status_code == 201, (in_a.content, in_b.content)
    run_a, run_b = in_a.json()["run_id"], in_b.json()["run_id"]
    assert run_a != run_b
    assert run_a in runs_in_dagster(stack, a) and run_b in runs_in_dagster(stack, b)
    assert stack.call("GET", f"/api/runs/{run_a}", org=b).status_code == 404
    assert post_run(stack, b, "shared-key").json()["run_id"] == run_b
    cancel(stack, a, run_a)
    cancel(stack, b, run_b)


def test_a_run_launched_while_the_instance_storage_cannot_be_read_is_201_with_its_id(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    slug = org_a(stack)
    with_people_project(stack, slug)
    before = runs_in_dagster(stack, slug)
    # the webserver launches with its own DAGSTER_HOME; the API's reads of the storage (the run read
    # back after the launch, its pools, the answer) find no instance
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a-file" / "dagster"))
    with caplog.at_level(logging.WARNING, logger="dalgo_api"):
        response = post_run(stack, slug, "storage-down")
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["status"] == "QUEUED" and run["assets"] == ["people/people"] and run["trigger"] == "manual"
    assert f"run {run['run_id']} launched" in caplog.text and "cannot be opened" in caplog.text

    monkeypatch.setenv("DAGSTER_HOME", str(stack.root / "dagster"))
    assert runs_in_dagster(stack, slug) - before == {run["run_id"]}
    assert run_of(stack, slug, run["run_id"])["assets"] == ["people/people"]
    again = post_run(stack, slug, "storage-down")
    assert again.status_code == 201 and again.json()["run_id"] == run["run_id"]
    cancel(stack, slug, run["run_id"])


def test_a_pipeline_run_with_an_idempotency_key_launches_once_and_answers_201_when_storage_fails(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    slug = org_a(stack)
    with_people_project(stack, slug)
    pipeline = {"name": "retried", "assets": ["people/people"], "schedule": {"cron": "0 2 * * *"}}
    created = stack.call("POST", "/api/pipelines/", pipeline, org=slug, role="pipeline-manager")
    assert created.status_code == 201, created.content
    token = stack.orgs[slug].tokens["pipeline-manager"]

    def run_pipeline(key: str):
        headers = {"Idempotency-Key": key}
        return stack.api.call("POST", "/api/pipelines/retried/runs", token=token, org=slug, headers=headers)

    before = runs_in_dagster(stack, slug)
    first, again = run_pipeline("pipeline-retry"), run_pipeline("pipeline-retry")
    assert first.status_code == again.status_code == 201, (first.content, again.content)
    run_id = first.json()["run_id"]
    assert again.json()["run_id"] == run_id and again.json()["pipeline"] == "retried"
    assert runs_in_dagster(stack, slug) - before == {run_id}
    cancel(stack, slug, run_id)

    # launched by the webserver, not readable by the API: 201 with the run id, the failure logged
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a-file" / "dagster"))
    with caplog.at_level(logging.WARNING, logger="dalgo_api"):
        response = run_pipeline("pipeline-storage-down")
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["status"] == "QUEUED" and run["pipeline"] == "retried" and run["job"] == f"{slug}__retried"
    assert f"run {run['run_id']} launched" in caplog.text
    monkeypatch.setenv("DAGSTER_HOME", str(stack.root / "dagster"))
    assert runs_in_dagster(stack, slug) - before == {run_id, run["run_id"]}
    assert run_of(stack, slug, run["run_id"])["pipeline"] == "retried"
    cancel(stack, slug, run["run_id"])
    assert stack.call("DELETE", "/api/pipelines/retried", org=slug).status_code == 204


def test_a_connection_reset_through_the_api_launches_the_connections_reset_job(stack: Stack):
    """The job and its run config, named on both sides of the seam (``dalgo_core.names``), meet: Dagster
    validates the run config at the launch (what the job does is tests/ingestion/test_reset.py)."""
    slug = org_b(stack)
    connection = {**CONNECTION, "name": "resettable", "streams": [{"name": "users"}, {"name": "products"}]}
    created = stack.call("POST", "/api/connections/", connection, org=slug, role="pipeline-manager")
    assert created.status_code == 201, created.content
    response = stack.call(
        "POST", "/api/connections/resettable/reset", {"streams": ["users"]}, org=slug, role="pipeline-manager"
    )
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["job"] == f"{slug}__resettable__reset" and run["trigger"] == "manual"
    assert run_of(stack, slug, run["run_id"])["job"] == run["job"]
    cancel(stack, slug, run["run_id"])
    assert stack.call("DELETE", "/api/connections/resettable", org=slug).status_code == 204


def test_a_database_connection_through_the_api_keeps_its_password_apart(stack: Stack):
    """A database source's password is stored encrypted and referred to from the spec, never answered;
    an update without it keeps it; its streams are assets live in Dagster; a file source outside the
    organization's files is 422 naming the field; a delete removes the stored password."""
    from dalgo_core.layout import secrets_dir
    from dalgo_core.spec import load_org_spec

    slug = org_b(stack)
    source = {"type": "database", "host": "db.example.org", "database": "shop", "user": "reader"}
    body = {
        "name": "shop",
        "source": {**source, "password": "pa55 w:rd"},
        "streams": [{"name": "orders", "sync_mode": "incremental", "cursor_field": ["updated_at"]}],
        "destination_schema": "shop_raw",
    }
    created = stack.call("POST", "/api/connections/", body, org=slug, role="pipeline-manager")
    assert created.status_code == 201, created.content
    assert created.json()["source"] == {
        **source,
        "dialect": "postgres",
        "port": 5432,
        "schema": None,
        "sslmode": None,
        "secret_fields": ["password"],
    }
    assert "pa55" not in created.text
    stored = load_org_spec(slug).connections[-1].source
    assert stored.password.file and stored.password.resolve(slug) == "pa55 w:rd"
    secret_file = secrets_dir() / slug / stored.password.file
    assert "pa55" not in secret_file.read_text()
    assets = stack.call("GET", "/api/assets/", org=slug).json()
    assert any(a["key"] == "shop/orders" for a in assets), assets

    body["source"] = {**source, "port": 5433}  # no password: the stored one stays
    updated = stack.call("PUT", "/api/connections/shop", body, org=slug, role="pipeline-manager")
    assert updated.status_code == 200, updated.content
    assert load_org_spec(slug).connections[-1].source.password.resolve(slug) == "pa55 w:rd"

    outside = {**body, "name": "files", "source": {"type": "files", "url": "../../platform", "format": "csv"}}
    refused = stack.call("POST", "/api/connections/", outside, org=slug, role="pipeline-manager")
    assert refused.status_code == 422 and "url" in refused.text, refused.content

    assert stack.call("DELETE", "/api/connections/shop", org=slug, role="pipeline-manager").status_code == 204
    assert not secret_file.exists()
