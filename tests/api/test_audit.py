"""The audit log: a change through the API is recorded with who, when, what before and after, secrets
masked; Account Managers read their organization's log, page by page and filtered; an Analyst cannot, and
nobody reads another organization's."""

from __future__ import annotations

from tests.api.conftest import Api, OrgWorld

PASSWORD = "Aud1t-s3cret-Pa55"
WAREHOUSE = "/api/organizations/warehouse"
AUDIT = "/api/audit/"


def test_a_warehouse_change_is_recorded_with_its_password_masked(api: Api, world: OrgWorld, other_world: OrgWorld):
    manager, org = world.tokens["account-manager"], world.slug
    body = {"type": "postgres", "host": "db.example.org", "user": "ngo", "database": "ngo", "password": PASSWORD}
    changed = api.put(WAREHOUSE, body, token=manager, org=org)
    assert changed.status_code == 200, changed.content
    api.put(f"/api/users/{world.target.pk}", {"role": "guest"}, token=manager, org=org)
    assert api.put(WAREHOUSE, {"type": "bigquery"}, token=manager, org=org).status_code == 422  # refused: not logged

    log = api.get(AUDIT, token=manager, org=org)
    assert log.status_code == 200, log.content
    assert PASSWORD.encode() not in log.content
    entries = log.json()["entries"]
    assert [e["action"] for e in entries] == ["PUT /api/users/{user_id}", "PUT /api/organizations/warehouse"]
    role, warehouse = entries
    assert (role["before"], role["after"]) == ({"role": "analyst"}, {"role": "guest"})
    assert role["target"] == f"user {world.target.email}"
    assert warehouse["actor"] == f"account-manager@{org.replace('_', '-')}.example.org"
    assert warehouse["status"] == 200 and warehouse["at"]
    assert warehouse["before"] == {"warehouse": {"type": "duckdb", "schema": "main"}}
    after = warehouse["after"]["warehouse"]
    assert after["type"] == "postgres" and after["host"] == "db.example.org" and after["password"] == "***"
    assert warehouse["request"] == {**body, "password": "***"}

    # filtered and paged
    only = api.get(f"{AUDIT}?action=warehouse", token=manager, org=org).json()["entries"]
    assert [e["id"] for e in only] == [warehouse["id"]]
    first = api.get(f"{AUDIT}?limit=1", token=manager, org=org).json()
    assert [e["id"] for e in first["entries"]] == [role["id"]] and first["next_cursor"] == role["id"]
    rest = api.get(f"{AUDIT}?limit=1&cursor={first['next_cursor']}", token=manager, org=org).json()
    assert [e["id"] for e in rest["entries"]] == [warehouse["id"]] and rest["next_cursor"] is None
    by_actor = api.get(f"{AUDIT}?actor=nobody@example.org", token=manager, org=org).json()["entries"]
    assert by_actor == []

    # an Analyst may not read it; another organization's Account Manager reads only its own (empty) log
    denied = api.get(AUDIT, token=world.tokens["analyst"], org=org)
    assert denied.status_code == 403 and "can_view_audit_log" in denied.json()["detail"]
    assert api.get(AUDIT, token=other_world.tokens["account-manager"], org=org).status_code == 404
    assert api.get(AUDIT, token=other_world.tokens["account-manager"], org=other_world.slug).json()["entries"] == []
    assert api.get(AUDIT, token=world.tokens["super-admin"], org=org).json()["entries"] == entries


def test_reads_and_logins_are_not_changes(api: Api, world: OrgWorld):
    manager, org = world.tokens["account-manager"], world.slug
    api.get(WAREHOUSE, token=manager, org=org)
    api.post("/api/login/", {"email": world.users["analyst"].email, "password": "wrong-password-1"})
    api.post(f"{WAREHOUSE}/test", {"type": "duckdb"}, token=manager, org=org)
    assert api.get(AUDIT, token=manager, org=org).json()["entries"] == []
