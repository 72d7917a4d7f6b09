"""Alert rules through the API: written to the organization's spec, their webhook URLs stored encrypted and
never returned (nor logged in the audit log), bad URLs and bad rules refused naming the field; each member
chooses how to receive each rule."""

from __future__ import annotations

import pytest
import yaml

from dalgo_core import layout
from dalgo_core.spec import load_org_spec
from tests.api.conftest import Api, OrgWorld

SLACK = "https://hooks.slack.com/services/T0001/B0002/slack-secret-token"
GENERIC = "https://alerts.example.org/hooks/ngo?token=generic-secret-token"
RULE = {
    "name": "stale_reports",
    "kind": "freshness_failed",
    "assets": ["analytics/*"],
    "window_minutes": 30,
    "webhooks": [{"format": "slack", "url": SLACK}, {"format": "json", "url": GENERIC}],
}


def _secrets(slug: str) -> dict[str, str]:
    folder = layout.secrets_dir() / slug
    return {p.name: p.read_text() for p in folder.iterdir()} if folder.exists() else {}


def test_a_rule_is_written_with_its_webhook_urls_kept_secret(api: Api, world: OrgWorld):
    token, org = world.tokens["pipeline-manager"], world.slug
    created = api.post("/api/alerts/", RULE, token=token, org=org)
    assert created.status_code == 201, created.content
    shown = created.json()
    assert shown["webhooks"] == [
        {"format": "slack", "host": "hooks.slack.com"},
        {"format": "json", "host": "alerts.example.org"},
    ]
    assert (shown["kind"], shown["assets"], shown["window_minutes"], shown["recovery"], shown["email"]) == (
        "freshness_failed",
        ["analytics/*"],
        30,
        True,
        True,
    )
    for response in (
        created,
        api.get("/api/alerts/", token=token, org=org),
        api.get("/api/alerts/stale_reports", token=token, org=org),
    ):
        assert response.status_code in (200, 201)
        assert b"secret-token" not in response.content
    # the spec references the URLs; the secrets folder holds them encrypted
    spec_text = (load_org_spec(org).spec_path).read_text()
    assert "secret-token" not in spec_text
    hooks = yaml.safe_load(spec_text)["alerts"][0]["webhooks"]
    assert hooks == [
        {"format": "slack", "url": {"file": "alert_stale_reports_webhook_0"}},
        {"format": "json", "url": {"file": "alert_stale_reports_webhook_1"}},
    ]
    stored = _secrets(org)
    assert set(stored) == {"alert_stale_reports_webhook_0", "alert_stale_reports_webhook_1"}
    assert all(v.startswith("fernet:") and "secret-token" not in v for v in stored.values())

    # an update without a URL keeps the stored one; a webhook dropped takes its URL with it; renamed, the
    # members' choices follow
    chose = api.put(
        "/api/notifications/preferences/stale_reports", {"email": False}, token=world.tokens["analyst"], org=org
    )
    assert chose.status_code == 200, chose.content
    edit = {**RULE, "name": "stale", "webhooks": [{"format": "slack"}]}
    updated = api.put("/api/alerts/stale_reports", edit, token=token, org=org)
    assert updated.status_code == 200, updated.content
    assert updated.json()["webhooks"] == [{"format": "slack", "host": "hooks.slack.com"}]
    assert set(_secrets(org)) == {"alert_stale_reports_webhook_0"}
    assert api.get("/api/alerts/stale_reports", token=token, org=org).status_code == 404
    prefs = api.get("/api/notifications/preferences", token=world.tokens["analyst"], org=org).json()
    assert prefs == [{"rule": "stale", "kind": "freshness_failed", "email": False, "inbox": True}]

    # the audit log has the changes, never a URL
    log = api.get("/api/audit/", token=world.tokens["account-manager"], org=org)
    assert [e["action"] for e in log.json()["entries"]] == [
        "PUT /api/alerts/{name}",
        "PUT /api/notifications/preferences/{rule}",
        "POST /api/alerts/",
    ]
    assert b"secret-token" not in log.content and b"hooks.slack.com/services" not in log.content

    deleted = api.delete("/api/alerts/stale", token=token, org=org)
    assert deleted.status_code == 204, deleted.content
    assert _secrets(org) == {} and load_org_spec(org).alerts == []
    assert api.get("/api/notifications/preferences", token=world.tokens["analyst"], org=org).json() == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.org/x", "use https"),
        ("https://user:pw@hooks.example.org/x", "no user name or password"),
        ("https:///no-host", "names no host"),
        ("https://hooks.example.org/a b", "without spaces"),
    ],
)
def test_a_bad_webhook_url_is_refused_without_echoing_it(api: Api, world: OrgWorld, url: str, problem: str):
    body = {**RULE, "webhooks": [{"format": "json", "url": GENERIC}, {"format": "json", "url": url}]}
    refused = api.post("/api/alerts/", body, token=world.tokens["pipeline-manager"], org=world.slug)
    assert refused.status_code == 422, refused.content
    assert refused.json()["errors"] == [
        {"field": "body.webhooks.1.url", "message": refused.json()["errors"][0]["message"]}
    ]
    assert problem in refused.json()["detail"]
    assert url.encode() not in refused.content and _secrets(world.slug) == {}


def test_http_and_private_hosts_where_the_operator_allows_them(api: Api, world: OrgWorld, monkeypatch):
    monkeypatch.setenv("DALGO_WEBHOOK_ALLOW_PRIVATE", "1")
    body = {**RULE, "webhooks": [{"format": "json", "url": "http://127.0.0.1:9/hook"}]}
    created = api.post("/api/alerts/", body, token=world.tokens["pipeline-manager"], org=world.slug)
    assert created.status_code == 201, created.content
    assert created.json()["webhooks"] == [{"format": "json", "host": "127.0.0.1"}]


def test_bad_rules_name_the_field(api: Api, world: OrgWorld):
    token, org = world.tokens["account-manager"], world.slug

    def post(body: dict):
        return api.post("/api/alerts/", body, token=token, org=org)

    assets_of_runs = post({"name": "runs", "kind": "run_failed", "assets": ["a/*"]})
    assert (
        assets_of_runs.status_code == 422 and "a run_failed rule selects no assets" in assets_of_runs.json()["detail"]
    )
    unknown = post({"name": "x", "kind": "everything"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.payload.kind"
    reserved = post({"name": "events", "kind": "run_failed"})
    assert reserved.status_code == 422 and "reserved" in reserved.json()["detail"]
    new_without_url = post({"name": "x", "kind": "run_failed", "webhooks": [{"format": "slack"}]})
    assert new_without_url.status_code == 422 and "required for a new webhook" in new_without_url.json()["detail"]
    assert post({"name": "runs", "kind": "run_failed"}).status_code == 201
    assert post({"name": "runs", "kind": "check_failed"}).status_code == 409
    assert api.put("/api/notifications/preferences/nope", {}, token=token, org=org).status_code == 404


def test_another_organizations_rules_are_not_found(api: Api, world: OrgWorld, other_world: OrgWorld):
    assert api.post("/api/alerts/", RULE, token=world.tokens["pipeline-manager"], org=world.slug).status_code == 201
    theirs = other_world.tokens["account-manager"]
    assert api.get("/api/alerts/stale_reports", token=theirs, org=other_world.slug).status_code == 404
    assert api.get("/api/alerts/stale_reports", token=theirs, org=world.slug).status_code == 404
    prefs = api.put("/api/notifications/preferences/stale_reports", {}, token=theirs, org=other_world.slug)
    assert prefs.status_code == 404
