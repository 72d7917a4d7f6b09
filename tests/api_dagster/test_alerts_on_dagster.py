"""Alerts from a running platform: a real Dagster daemon (its FreshnessDaemon every 5 s, the run queue, the
organization's automation sensor) and webserver, runs through the API, and the dispatcher's passes
(``dispatch_once``, what ``manage.py dispatch_alerts --loop`` repeats).

Organization A has a tiny dbt project: ``numbers`` (seed) -> ``latest``, kept at most a minute old by a
freshness target, with a dbt test that always fails, and ``broken``, a model that cannot build. Its rules,
created through the API: the freshness target (to a Slack-format webhook), the checks (to a JSON
webhook), the runs (email; its Pipeline Manager turned that rule off). The automation sensor ticks once
(its interval is an hour): its first run builds ``latest`` and fails the check (a blocking one: the run
fails too); a run of ``broken``
through the API fails, its retry fails again and a third run is cancelled while queued. Then ``latest``
goes stale: one alert; a run of it through the API: one recovery. Organization B's code location stops
loading and loads again: one alert, one recovery. Each alert is sent once, whatever repeats within its
window, and the audit log has the runs launched, retried and cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml
from django.core import mail

from dalgo_api.alerts.dispatcher import dispatch_once
from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.names import location_name
from dalgo_core.spec import DbtProjectSpec, FreshnessSpec, PipelineSpec, load_org_spec, write_org_spec
from tests.api_dagster.conftest import ROLES, Stack
from tests.support.orgs import write_dbt_project
from tests.support.webhooks import Receiver

STACK_ENV = {
    "DALGO_AUTOMATION_INTERVAL_SECONDS": "3600",  # one automation tick, at the start: the first run only
    "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
    "DALGO_WEBHOOK_ALLOW_PRIVATE": "1",  # the test's receiver listens on 127.0.0.1
}
PROJECT = {
    "seeds/numbers.csv": "n\n1\n2\n3\n",
    "models/latest.sql": "select max(n) as n from {{ ref('numbers') }}\n",
    "models/broken.sql": "{{ config(materialized='table') }}\nselect cast('not a number' as integer) as n\n",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: latest\n    columns:\n      - name: n\n"
        "        data_tests: [{accepted_values: {values: [1, 2]}}]\n"
    ),
}
TIMEOUT = 420
RUN_FAILED = "A run of tiny/broken failed"


def before_dagster_starts(root: Path, slugs: list[str]) -> None:
    slug = slugs[0]
    folder = write_dbt_project(root / "dbt_projects" / slug, "tiny", PROJECT)
    spec = load_org_spec(slug)
    spec.dbt_projects = [DbtProjectSpec(name="tiny", path=str(folder))]
    target = FreshnessSpec(max_lag_minutes=1, expected_run_minutes=0.5)
    spec.pipelines = [PipelineSpec(name="fresh", assets=["tiny/latest"], freshness=target)]
    write_org_spec(spec)
    prepare_projects(spec)


def _until(what: str, done: Callable[[], object], timeout: float = TIMEOUT) -> None:
    """Pass after pass of the dispatcher until ``done()``."""
    deadline = time.time() + timeout
    while not done():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        dispatch_once()
        time.sleep(1)


def automation_runs(stack: Stack, org: str) -> list[dict]:
    return stack.call("GET", "/api/runs/?trigger=automation", org=org).json()["runs"]


def _emails(title: str) -> list[str]:
    return sorted(to for m in mail.outbox if title in m.subject for to in m.to)


def test_alerts_of_a_running_organization(stack: Stack):
    org_a, org_b = sorted(stack.orgs)
    people = {
        role: f"{role}@{org_a.replace('_', '-')}.example.org"
        for role in ("account-manager", "pipeline-manager", "analyst")
    }
    with Receiver() as hooks:
        slack, generic = (
            [{"format": "slack", "url": hooks.url("/slack")}],
            [{"format": "json", "url": hooks.url("/json")}],
        )
        rules = [
            {"name": "stale", "kind": "freshness_failed", "webhooks": slack},
            {"name": "checks", "kind": "check_failed", "assets": ["tiny/*"], "email": False, "webhooks": generic},
            {"name": "failed_runs", "kind": "run_failed"},
        ]
        for rule in rules:
            created = stack.call("POST", "/api/alerts/", rule, org=org_a, role="pipeline-manager")
            assert created.status_code == 201, created.content
        broken_code = {"name": "broken_code", "kind": "location_failed"}
        assert stack.call("POST", "/api/alerts/", broken_code, org=org_b, role="account-manager").status_code == 201
        off = {"email": False, "inbox": False}
        chose = stack.call("PUT", "/api/notifications/preferences/failed_runs", off, org=org_a, role="pipeline-manager")
        assert chose.status_code == 200, chose.content
        dispatch_once()
        mail.outbox = []

        # a run that fails, through the API, queued behind the automation's first run (which fails its check)
        _until("the automation's first run", lambda: automation_runs(stack, org_a))
        failing = stack.call("POST", "/api/runs/", {"assets": ["tiny/broken"]}, org=org_a, role="pipeline-manager")
        assert failing.status_code == 201, failing.content
        failed_id = failing.json()["run_id"]
        _until("the run failure's emails", lambda: _emails(RUN_FAILED))
        _until("the check's alert", lambda: hooks.received("/json"))
        assert _emails(RUN_FAILED) == [people["account-manager"], people["analyst"]]
        [check] = hooks.received("/json")
        assert check.body["status"] == "alert" and check.body["kind"] == "check_failed"
        assert check.body["subject"].startswith("tiny/latest:accepted_values_latest_n")

        # retried, it fails again within the rule's window: no second email; a run cancelled while queued
        retried = stack.call("POST", f"/api/runs/{failed_id}/retry", org=org_a, role="pipeline-manager")
        assert retried.status_code == 201, retried.content
        assert retried.json()["trigger"] == "retry"
        queued = stack.call("POST", "/api/runs/", {"assets": ["tiny/broken"]}, org=org_a, role="account-manager")
        cancelled = stack.call("POST", f"/api/runs/{queued.json()['run_id']}/cancel", org=org_a, role="account-manager")
        assert cancelled.status_code == 200, cancelled.content

        # organization B's code location stops loading, then loads again
        spec_b = stack.root / "orgs" / org_b / "org.yaml"
        good_b = spec_b.read_text()
        broken_b = yaml.safe_load(good_b)
        broken_b["pipelines"] = [{"name": "nothing", "assets": ["no/such_asset"], "freshness": {"max_lag_minutes": 5}}]
        spec_b.write_text(yaml.safe_dump(broken_b))
        assert stack.call("POST", "/api/organizations/reload", org=org_b).status_code in (409, 422)
        title_b = f"The code location {location_name(org_b)} does not load"
        _until("organization B's location alert", lambda: _emails(title_b))
        spec_b.write_text(good_b)
        assert stack.call("POST", "/api/organizations/reload", org=org_b).status_code == 200
        _until("organization B's location recovery", lambda: _emails(f"The code location {location_name(org_b)} loads"))
        members_b = sorted(f"{role}@{org_b.replace('_', '-')}.example.org" for role in ROLES[1:4])
        assert _emails(title_b) == members_b  # each member who may see alerts: once

        # the target goes stale: one alert; a run of it through the API: one recovery
        _until("the stale alert", lambda: hooks.received("/slack"), timeout=240)
        fixed = stack.call("POST", "/api/runs/", {"assets": ["tiny/latest"]}, org=org_a, role="pipeline-manager")
        assert fixed.status_code == 201, fixed.content
        _until("the recovery", lambda: len(hooks.received("/slack")) == 2)
        stale, fresh = (r.body for r in hooks.received("/slack"))
        assert "tiny/latest is stale" in stale["text"] and "tiny/latest is fresh again" in fresh["text"]

        retry_id = retried.json()["run_id"]
        _until(
            "the retry to fail",
            lambda: stack.call("GET", f"/api/runs/{retry_id}", org=org_a).json()["state"] == "failed",
        )
        dispatch_once()
        assert len(hooks.received("/json")) == 1, "the check failed again within its window: held back"
        assert len(hooks.received("/slack")) == 2
    assert _emails(RUN_FAILED) == [people["account-manager"], people["analyst"]], "the retry's failure: held back"

    # inboxes: the Pipeline Manager turned the run rule off
    def titles(role: str) -> list[str]:
        inbox = stack.call("GET", "/api/notifications/?limit=200", org=org_a, role=role).json()["notifications"]
        return [n["event"]["title"] for n in inbox]

    assert not [t for t in titles("pipeline-manager") if "A run of" in t]
    assert titles("analyst").count(RUN_FAILED) == 1
    assert "tiny/latest is fresh again" in titles("analyst")
    assert titles("guest") == []  # a Guest may not see alerts

    # the audit log: the rules, the runs launched, retried and cancelled
    log = stack.call("GET", "/api/audit/?limit=200", org=org_a, role="account-manager").json()["entries"]
    actions = [(e["action"], e["target"]) for e in log]
    assert ("POST /api/runs/{run_id}/retry", f"run {retry_id}") in actions
    assert ("POST /api/runs/{run_id}/cancel", f"run {queued.json()['run_id']}") in actions
    assert ("POST /api/runs/", f"run {failed_id}") in actions
    assert sum(a == "POST /api/alerts/" for a, _ in actions) == 3
    assert stack.call("GET", "/api/audit/", org=org_a, role="analyst").status_code == 403
