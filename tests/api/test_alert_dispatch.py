"""The dispatcher on a real Dagster instance (events reported as Dagster's daemons and runs record them, in
the instance's run-less log): one alert per subject and window, a recovery only for what was alerted,
members' choices, webhooks posted to a receiver (where the operator allows a local one) and refused on
loopback otherwise, organizations kept apart, and the schema-change event issue 15's approvals emit.
The same flow with a real daemon and real runs is tests/api_dagster/test_alerts_on_dagster.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from django.core import mail

from dalgo_api.alerts.dispatcher import dispatch_once
from dalgo_api.alerts.models import WebhookDelivery
from dalgo_api.bridge.transport import instance
from dalgo_api.specs import store as specs
from dalgo_core.names import SCHEMA_CHANGE_METADATA, SCHEMA_CHANGE_SUMMARY_METADATA
from dalgo_core.secret_store import write_secret
from dalgo_core.spec import AlertRuleSpec, SecretRef, WebhookSpec
from tests.api.conftest import Api, OrgWorld
from tests.support.webhooks import Receiver


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("DALGO_WEBHOOK_ALLOW_PRIVATE", "1")
    with Receiver() as receiver:
        yield receiver


def _rules(slug: str, *rules: AlertRuleSpec) -> None:
    spec = specs.load_spec(slug)
    specs.save_spec(spec.model_copy(update={"alerts": list(rules)}))


def _hook(slug: str, name: str, url: str, fmt: str = "json") -> WebhookSpec:
    write_secret(slug, name, url)
    return WebhookSpec(format=fmt, url=SecretRef(file=name))


def _check(slug: str, passed: bool, asset: str = "tiny/latest") -> None:
    key = dg.AssetKey([slug, *asset.split("/")])
    instance().report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=key, check_name="not_null_latest_n", passed=passed)
    )


def _freshness(slug: str, new: FreshnessState, previous: FreshnessState) -> None:
    key = dg.AssetKey([slug, "tiny", "latest"])
    change = FreshnessStateChange(key=key, new_state=new, previous_state=previous, state_change_timestamp=time.time())
    instance().report_runless_asset_event(change)


def _emails(subject_part: str) -> list[str]:
    return sorted(to for m in mail.outbox if subject_part in m.subject for to in m.to)


def test_one_alert_per_window_and_a_recovery_for_what_was_alerted(
    api: Api, world: OrgWorld, other_world: OrgWorld, hooks: Receiver
):
    slug = world.slug
    _rules(
        slug,
        AlertRuleSpec(
            name="checks", kind="check_failed", assets=["tiny/*"], webhooks=[_hook(slug, "h1", hooks.url("/json"))]
        ),
        AlertRuleSpec(
            name="stale", kind="freshness_failed", webhooks=[_hook(slug, "h2", hooks.url("/slack"), "slack")]
        ),
    )
    analyst = world.tokens["analyst"]
    off = api.put("/api/notifications/preferences/checks", {"email": False, "inbox": False}, token=analyst, org=slug)
    assert off.status_code == 200, off.content
    dispatch_once()  # the first pass reads from where Dagster is now
    mail.outbox = []

    _check(slug, passed=False)
    _check(other_world.slug, passed=False)  # another organization's asset: not for these rules
    _check(slug, passed=False, asset="elsewhere/model")  # not selected by the rule
    report = dispatch_once()
    assert (report.alerts, report.recoveries, report.delivered) == (1, 0, 1)
    [posted] = hooks.received("/json")
    assert posted.body["status"] == "alert" and posted.body["kind"] == "check_failed"
    assert posted.body["subject"] == "tiny/latest:not_null_latest_n" and posted.body["organization"] == slug
    # every member who may see alerts but the analyst who turned the rule off (a guest may not see alerts)
    members = ("account-manager", "pipeline-manager", "super-admin", "manager2", "target")
    assert _emails("Check not_null_latest_n failed") == sorted(
        f"{m}@{slug.replace('_', '-')}.example.org" for m in members
    )

    # failing again within the window: held back; passing: one recovery; failing again within the window and
    # passing: nothing (that failure was not alerted)
    _check(slug, passed=False)
    assert dispatch_once().alerts == 0
    _check(slug, passed=True)
    assert dispatch_once().recoveries == 1
    _check(slug, passed=False)
    _check(slug, passed=True)
    assert (dispatch_once().alerts, len(hooks.received("/json"))) == (0, 2)
    assert [r.body["status"] for r in hooks.received("/json")] == ["alert", "recovery"]

    # freshness: stale then fresh again, to Slack's format
    _freshness(slug, FreshnessState.FAIL, FreshnessState.PASS)
    _freshness(slug, FreshnessState.PASS, FreshnessState.FAIL)
    assert (dispatch_once().alerts, len(hooks.received("/slack"))) == (1, 2)
    alert, recovery = (r.body for r in hooks.received("/slack"))
    assert "tiny/latest is stale" in alert["text"] and "blocks" in alert
    assert "tiny/latest is fresh again" in recovery["text"]

    # each member's inbox, as the choices say
    inbox = api.get("/api/notifications/", token=analyst, org=slug).json()
    assert [n["event"]["title"] for n in inbox["notifications"]] == [
        "tiny/latest is fresh again",
        "tiny/latest is stale: its freshness target was missed",
    ]
    manager = world.tokens["account-manager"]
    mine = api.get("/api/notifications/?unread=true", token=manager, org=slug).json()
    assert mine["unread"] == 4 and len(mine["notifications"]) == 4
    first = mine["notifications"][-1]
    assert first["event"]["webhooks"][0]["delivered"] and first["event"]["webhooks"][0]["host"] == "127.0.0.1"
    read = api.post(
        "/api/notifications/read", {"ids": [first["id"], inbox["notifications"][0]["id"]]}, token=manager, org=slug
    )
    assert read.json() == {"updated": 1}  # the other id is the analyst's
    assert api.get("/api/notifications/", token=manager, org=slug).json()["unread"] == 3
    assert api.post("/api/notifications/read", {"all": True}, token=manager, org=slug).json() == {"updated": 3}
    events = api.get("/api/alerts/events?kind=check_failed", token=analyst, org=slug).json()["events"]
    assert [e["status"] for e in events] == ["recovery", "alert"]
    assert (
        api.get("/api/alerts/events", token=other_world.tokens["account-manager"], org=other_world.slug).json()[
            "events"
        ]
        == []
    )


def test_a_webhook_on_loopback_is_refused_unless_allowed(world: OrgWorld, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DALGO_WEBHOOK_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("DALGO_PRIVATE_NETWORKS", raising=False)
    with Receiver() as hooks:
        slug = world.slug
        # as if written by hand in the spec: https to a name that resolves to loopback
        url = hooks.url("/x").replace("http://127.0.0.1", "https://localhost")
        _rules(slug, AlertRuleSpec(name="runs", kind="check_failed", webhooks=[_hook(slug, "h", url)]))
        dispatch_once()
        _check(slug, passed=False)
        assert dispatch_once().delivered == 0
        assert hooks.received() == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1 and delivery.next_attempt_at is not None  # retried later
    assert delivery.last_error == "localhost is not a public address"


def test_a_schema_change_waiting_for_approval(world: OrgWorld):
    slug = world.slug
    _rules(slug, AlertRuleSpec(name="schemas", kind="schema_change_pending", assets=["faker/*"]))
    dispatch_once()
    mail.outbox = []
    key = dg.AssetKey([slug, "faker", "users"])
    pending = {SCHEMA_CHANGE_METADATA: "pending", SCHEMA_CHANGE_SUMMARY_METADATA: "column 'age' added"}
    instance().report_runless_asset_event(dg.AssetObservation(asset_key=key, metadata=pending))
    assert dispatch_once().alerts == 1
    [email] = [m for m in mail.outbox if m.to == [world.users["account-manager"].email]]
    assert email.subject == f"[{world.org.name}] A schema change of faker/users waits for approval"
    assert "column 'age' added" in email.body
    instance().report_runless_asset_event(
        dg.AssetObservation(asset_key=key, metadata={SCHEMA_CHANGE_METADATA: "resolved"})
    )
    assert dispatch_once().recoveries == 1


def test_a_test_message_reaches_the_rules_webhooks(api: Api, world: OrgWorld, hooks: Receiver):
    slug = world.slug
    _rules(slug, AlertRuleSpec(name="runs", kind="run_failed", webhooks=[_hook(slug, "h", hooks.url("/t"), "slack")]))
    tested = api.post("/api/alerts/runs/test", token=world.tokens["pipeline-manager"], org=slug)
    assert tested.status_code == 200, tested.content
    assert tested.json()["webhooks"] == [
        {"format": "slack", "host": "127.0.0.1", "delivered": True, "attempts": 1, "status": 200, "error": ""}
    ]
    [received] = hooks.received("/t")
    assert received.body["text"].endswith("[Org A] Test of the alert rule runs")
    assert api.get("/api/audit/", token=world.tokens["account-manager"], org=slug).json()["entries"] == []
