"""Every endpoint, as each of the five roles: allowed or denied exactly as ``roles.csv`` says.

The operations come from the API itself (``dalgo_api.api.operations()``, with the slugs each one
declares) and the grants from the CSV the migration loads, so a new endpoint without a case here, or a
change of the matrix, makes these tests fail instead of drifting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dalgo_api.accounts.roles import ROLE_SLUGS, load_matrix, markdown_matrix
from dalgo_api.api import operations
from tests.api.conftest import OrgWorld

# (method, path template) -> (build the concrete path and body for a world, status when allowed)
Case = tuple[Callable[[OrgWorld], tuple[str, Any]], int]

CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/currentuser"): (lambda w: ("/api/currentuser", None), 200),
    ("POST", "/api/logout/"): (lambda w: ("/api/logout/", None), 200),
    ("GET", "/api/organizations/"): (lambda w: ("/api/organizations/", None), 200),
    ("POST", "/api/organizations/"): (lambda w: ("/api/organizations/", {"name": "New NGO"}), 201),
    ("GET", "/api/organizations/{slug}"): (lambda w: (f"/api/organizations/{w.slug}", None), 200),
    ("PUT", "/api/organizations/{slug}"): (
        lambda w: (f"/api/organizations/{w.slug}", {"name": "Renamed"}),
        200,
    ),
    ("DELETE", "/api/organizations/{slug}"): (lambda w: (f"/api/organizations/{w.slug}", None), 204),
    ("GET", "/api/organizations/flags"): (lambda w: ("/api/organizations/flags", None), 200),
    ("POST", "/api/organizations/reload"): (lambda w: ("/api/organizations/reload", None), 503),  # no Dagster
    ("PUT", "/api/organizations/flags/{flag_name}"): (
        lambda w: ("/api/organizations/flags/DATA_QUALITY", {"enabled": True}),
        200,
    ),
    ("GET", "/api/organizations/warehouse"): (lambda w: ("/api/organizations/warehouse", None), 200),
    ("PUT", "/api/organizations/warehouse"): (
        lambda w: ("/api/organizations/warehouse", {"type": "duckdb", "schema": "analytics"}),
        200,
    ),
    ("POST", "/api/organizations/warehouse/test"): (
        lambda w: ("/api/organizations/warehouse/test", {"type": "duckdb"}),
        200,
    ),
    ("DELETE", "/api/organizations/warehouse"): (lambda w: ("/api/organizations/warehouse", None), 200),
    ("GET", "/api/users/"): (lambda w: ("/api/users/", None), 200),
    ("GET", "/api/users/{user_id}"): (lambda w: (f"/api/users/{w.target.pk}", None), 200),
    ("PUT", "/api/users/{user_id}"): (lambda w: (f"/api/users/{w.target.pk}", {"role": "guest"}), 200),
    ("DELETE", "/api/users/{user_id}"): (lambda w: (f"/api/users/{w.target.pk}", None), 204),
    ("POST", "/api/users/change_password/"): (
        lambda w: (
            "/api/users/change_password/",
            {"old_password": PASSWORD, "new_password": "An0ther-long-one"},
        ),
        200,
    ),
    ("GET", "/api/invitations/"): (lambda w: ("/api/invitations/", None), 200),
    ("POST", "/api/invitations/"): (
        lambda w: ("/api/invitations/", {"email": "new.person@example.org", "role": "analyst"}),
        201,
    ),
    ("POST", "/api/invitations/{invitation_id}/resend"): (
        lambda w: (f"/api/invitations/{w.invitation.pk}/resend", None),
        200,
    ),
    ("DELETE", "/api/invitations/{invitation_id}"): (
        lambda w: (f"/api/invitations/{w.invitation.pk}", None),
        204,
    ),
    ("POST", "/api/connections/{name}/reset"): (  # allowed: launched, so 503 with no Dagster
        lambda w: (add_faker_connection(w.slug) or "/api/connections/faker/reset", {"streams": ["users"]}),
        503,
    ),
    ("GET", "/api/alerts/"): (lambda w: ("/api/alerts/", None), 200),
    ("POST", "/api/alerts/"): (lambda w: ("/api/alerts/", {"name": "failed_runs", "kind": "run_failed"}), 201),
    ("GET", "/api/alerts/events"): (lambda w: ("/api/alerts/events", None), 200),
    ("GET", "/api/alerts/{name}"): (lambda w: (add_rule(w.slug), None), 200),
    ("PUT", "/api/alerts/{name}"): (lambda w: (add_rule(w.slug), {"name": "stale", "kind": "freshness_failed"}), 200),
    ("DELETE", "/api/alerts/{name}"): (lambda w: (add_rule(w.slug), None), 204),
    ("POST", "/api/alerts/{name}/test"): (lambda w: (f"{add_rule(w.slug)}/test", None), 200),
    ("GET", "/api/notifications/"): (lambda w: ("/api/notifications/", None), 200),
    ("POST", "/api/notifications/read"): (lambda w: ("/api/notifications/read", {"all": True}), 200),
    ("GET", "/api/notifications/preferences"): (lambda w: ("/api/notifications/preferences", None), 200),
    ("PUT", "/api/notifications/preferences/{rule}"): (
        lambda w: (add_rule(w.slug).replace("/api/alerts/", "/api/notifications/preferences/"), {"email": False}),
        200,
    ),
    ("GET", "/api/audit/"): (lambda w: ("/api/audit/", None), 200),
    ("POST", "/api/connections/{name}/sync"): (lambda w: (_faker(w) + "/sync", None), 503),  # launched
    ("GET", "/api/connections/{name}/syncs"): (lambda w: (_faker(w) + "/syncs", None), 200),  # no run yet
    ("GET", "/api/connections/{name}/schema-changes"): (lambda w: (_faker(w) + "/schema-changes", None), 200),
    ("POST", "/api/connections/{name}/schema-changes/refresh"): (
        lambda w: (_faker(w) + "/schema-changes/refresh", None),
        202,
    ),
    ("POST", "/api/connections/{name}/schema-changes/approve"): (
        lambda w: (_faker(w) + "/schema-changes/approve", None),
        202,
    ),
    ("GET", "/api/sources/connectors"): (lambda w: ("/api/sources/connectors", None), 200),
    ("POST", "/api/sources/connectors"): (
        lambda w: (
            "/api/sources/connectors",
            {"connector": "source-own", "package": "own", "version": "1.0", "title": "Own"},
        ),
        201,
    ),
    ("GET", "/api/sources/connectors/{connector}/spec"): (
        lambda w: (_no_specs() or "/api/sources/connectors/source-file/spec", None),
        202,  # not read yet: the task reading it
    ),
    ("POST", "/api/sources/check"): (
        lambda w: (_no_specs() or "/api/sources/check", {"connector": "source-file", "config": {"url": "x"}}),
        202,
    ),
    ("GET", "/api/sources/"): (lambda w: ("/api/sources/", None), 200),
    ("POST", "/api/sources/"): (
        lambda w: (
            cache_faker_spec() or "/api/sources/",
            {"name": "demo", "connector": "source-faker", "config": {"count": 3}},
        ),
        201,
    ),
    ("GET", "/api/sources/{name}"): (lambda w: (f"/api/sources/{add_named_source(w.slug)}", None), 200),
    ("PUT", "/api/sources/{name}"): (
        lambda w: (f"/api/sources/{add_named_source(w.slug)}", {"config": {"count": 2}}),
        200,
    ),
    ("DELETE", "/api/sources/{name}"): (lambda w: (f"/api/sources/{add_named_source(w.slug)}", None), 204),
    ("POST", "/api/sources/{name}/check"): (lambda w: (f"/api/sources/{add_named_source(w.slug)}/check", None), 202),
    ("POST", "/api/sources/{name}/discover"): (
        lambda w: (f"/api/sources/{add_named_source(w.slug)}/discover", None),
        202,
    ),
    ("GET", "/api/tasks/{task_id}"): (lambda w: (a_task(w), None), 200),
}
# Operations without authentication, exercised in test_accounts.py / test_bad_input.py.
PUBLIC = {
    ("GET", "/api/health"),
    ("HEAD", "/api/health"),
    ("POST", "/api/login/"),
    ("POST", "/api/signup/"),
    ("POST", "/api/users/forgot_password/"),
    ("POST", "/api/users/reset_password/"),
    ("POST", "/api/invitations/accept/"),
}

from tests.api.conftest import PASSWORD  # noqa: E402
from tests.api.test_connection_reset import add_faker_connection  # noqa: E402
from tests.api.test_sources import a_task, add_named_source, cache_faker_spec  # noqa: E402


def _faker(world: OrgWorld) -> str:
    add_faker_connection(world.slug)
    return "/api/connections/faker"


def _no_specs() -> None:
    """No spec read yet in this API process."""
    from django.core.cache import cache

    cache.clear()


def add_rule(slug: str) -> str:
    """The organization's spec gains the alert rule ``stale``; its path."""
    from dalgo_api.specs import store as specs
    from dalgo_core.spec import AlertRuleSpec

    spec = specs.load_spec(slug)
    specs.save_spec(spec.model_copy(update={"alerts": [AlertRuleSpec(name="stale", kind="freshness_failed")]}))
    return "/api/alerts/stale"


PLATFORM_LEVEL = {("POST", "/api/organizations/")}  # checked outside any organization

OPERATIONS = {(method, path): perms for method, path, perms in operations()}


# The routers of this part (issue 5). Endpoints of the runs/workspace routers (issue 6) are checked for
# declared permissions below; their role-by-role cases belong in CASES too, after which this filter goes.
OWNED_PREFIXES = (
    "/api/organizations",
    "/api/users",
    "/api/invitations",
    "/api/login",
    "/api/logout",
    "/api/currentuser",
    "/api/signup",
    "/api/health",
    "/api/connections/{name}/reset",
    "/api/alerts",
    "/api/notifications",
    "/api/audit",
    "/api/connections/{name}/sync",
    "/api/connections/{name}/schema-changes",
    "/api/sources",
    "/api/tasks",
)


def test_every_endpoint_has_a_case_and_every_case_an_endpoint():
    owned = {op for op in OPERATIONS if op[1].startswith(OWNED_PREFIXES)}
    assert owned == set(CASES) | PUBLIC, "add the endpoint to CASES (or PUBLIC) with the request to make"
    assert all(OPERATIONS[op] is None for op in PUBLIC), "a public endpoint started requiring a token"
    assert all(OPERATIONS[op] is not None for op in CASES)


def test_every_endpoint_declares_permissions_from_the_matrix():
    """Every operation of the whole API either is public on purpose or authenticates with
    ``authenticated`` / ``has_permission([...])`` using slugs that exist in roles.csv."""
    known = set().union(*load_matrix().values())
    for op, perms in OPERATIONS.items():
        assert perms is not None or op in PUBLIC, f"{op} has no token auth and is not listed as public"
        assert set(perms or ()) <= known, op


def test_roles_md_is_generated_from_the_matrix():
    from pathlib import Path

    import dalgo_api

    assert (Path(dalgo_api.__file__).parent / "ROLES.md").read_text() == markdown_matrix(operations()), (
        "ROLES.md is stale: python manage.py seed_roles --write-markdown"
    )


@pytest.mark.parametrize("role", ROLE_SLUGS)
@pytest.mark.parametrize("op", sorted(CASES), ids=lambda op: f"{op[0]} {op[1]}")
def test_endpoint_as_role(api, world: OrgWorld, op: tuple[str, str], role: str):
    method, _ = op
    build, success = CASES[op]
    path, body = build(world)
    allowed = set(OPERATIONS[op]) <= load_matrix()[role]
    response = api.call(method, path, body, token=world.tokens[role], org=world.slug)
    if allowed:
        assert response.status_code == success, (role, op, response.content)
    else:
        assert response.status_code == 403, (role, op, response.content)
        detail = response.json()["detail"]
        assert "permission denied" in detail
        if op not in PLATFORM_LEVEL:
            assert f"your role in organization '{world.slug}' is {role}" in detail
