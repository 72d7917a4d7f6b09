"""A member of organization A, whatever their role short of Super Admin, sees nothing of organization B:
every object of B by id answers 404 (the same as a missing one), and naming B in the header or the
path answers 404 too. A Super Admin reaches B."""

from __future__ import annotations

import pytest

from dalgo_api.accounts.roles import ASSIGNABLE_ROLES
from dalgo_api.orgs.models import Invitation, Org, OrgUser
from tests.api.conftest import OrgWorld, token_for


def _b_objects(b: OrgWorld) -> list[tuple[str, str, object]]:
    """Every endpoint that takes an id or slug, aimed at organization B's objects."""
    return [
        ("GET", f"/api/users/{b.target.pk}", None),
        ("PUT", f"/api/users/{b.target.pk}", {"role": "guest"}),
        ("DELETE", f"/api/users/{b.target.pk}", None),
        ("POST", f"/api/invitations/{b.invitation.pk}/resend", None),
        ("DELETE", f"/api/invitations/{b.invitation.pk}", None),
        ("GET", f"/api/organizations/{b.slug}", None),
        ("PUT", f"/api/organizations/{b.slug}", {"name": "Hijacked"}),
        ("DELETE", f"/api/organizations/{b.slug}", None),
    ]


# Org-scoped endpoints, acted on through the x-dalgo-org header.
HEADER_SCOPED = [
    ("GET", "/api/users/", None),
    ("GET", "/api/invitations/", None),
    ("POST", "/api/invitations/", {"email": "x@example.org", "role": "guest"}),
    ("GET", "/api/organizations/flags", None),
    ("PUT", "/api/organizations/flags/DATA_QUALITY", {"enabled": True}),
    ("GET", "/api/organizations/warehouse", None),
    ("PUT", "/api/organizations/warehouse", {"type": "duckdb"}),
    ("POST", "/api/organizations/warehouse/test", {"type": "duckdb"}),
    ("DELETE", "/api/organizations/warehouse", None),
]


def _unchanged(b: OrgWorld) -> None:
    b.org.refresh_from_db()
    assert b.org.name == "Org B"
    assert OrgUser.objects.get(org=b.org, user=b.target).role.slug == "analyst"
    assert Invitation.objects.filter(pk=b.invitation.pk).exists()


@pytest.mark.parametrize("role", ASSIGNABLE_ROLES)
def test_objects_of_another_org_are_not_found(api, world: OrgWorld, other_world: OrgWorld, role: str):
    token = world.tokens[role]
    for method, path, body in _b_objects(other_world):
        r = api.call(method, path, body, token=token, org=world.slug)
        assert r.status_code == 404, (role, method, path, r.content)
        assert set(r.json()) == {"detail", "errors"} and "not found" in r.json()["detail"]
    _unchanged(other_world)


@pytest.mark.parametrize("role", ASSIGNABLE_ROLES)
def test_naming_another_org_in_the_header_is_not_found(api, world: OrgWorld, other_world: OrgWorld, role: str):
    token = world.tokens[role]
    for method, path, body in HEADER_SCOPED + _b_objects(other_world):
        r = api.call(method, path, body, token=token, org=other_world.slug)
        assert r.status_code == 404, (role, method, path, r.content)
        # the same answer as for an organization that does not exist
        missing = api.call(method, path, body, token=token, org="no_such_org")
        assert missing.status_code == 404

        def normalized(response):
            return response.json()["detail"].replace(other_world.slug, "X").replace("no_such_org", "X")

        assert normalized(r) == normalized(missing)
    _unchanged(other_world)
    assert Invitation.objects.filter(org=other_world.org, email="x@example.org").count() == 0


def test_lists_only_show_the_callers_org(api, world: OrgWorld, other_world: OrgWorld):
    token = world.tokens["account-manager"]
    emails = {u["email"] for u in api.get("/api/users/", token=token, org=world.slug).json()}
    assert emails and all(e.endswith(f"@{world.slug.replace('_', '-')}.example.org") for e in emails)
    orgs = api.get("/api/organizations/", token=token).json()
    assert [o["slug"] for o in orgs] == [world.slug]


def test_super_admin_acts_in_every_org(api, world: OrgWorld, other_world: OrgWorld):
    token = world.tokens["super-admin"]  # a member of A only, but platform staff
    r = api.get(f"/api/users/{other_world.target.pk}", token=token, org=other_world.slug)
    assert r.status_code == 200 and r.json()["email"] == other_world.target.email
    r = api.put(f"/api/organizations/{other_world.slug}", {"name": "Org B2"}, token=token)
    assert r.status_code == 200
    assert Org.objects.get(slug=other_world.slug).name == "Org B2"
    slugs = {o["slug"] for o in api.get("/api/organizations/", token=token).json()}
    assert {world.slug, other_world.slug} <= slugs


def test_a_remembered_caller_is_forgotten_at_once_when_membership_role_or_token_change(api, world: OrgWorld):
    """The API remembers a caller's checks for a second (``auth.AUTH_TTL_SECONDS``); a demotion, a removed
    membership and a logout must still apply to the very next request."""
    manager, target = world.tokens["account-manager"], world.target
    target_token = token_for(target)
    # an analyst sees the invitations; demoted to guest, the next request has a guest's permissions
    assert api.get("/api/invitations/", token=target_token, org=world.slug).status_code == 200
    r = api.put(f"/api/users/{target.pk}", {"role": "guest"}, token=manager, org=world.slug)
    assert r.status_code == 200
    assert api.get("/api/invitations/", token=target_token, org=world.slug).status_code == 403
    # removed from the organization: the next request does not find it
    assert api.delete(f"/api/users/{target.pk}", token=manager, org=world.slug).status_code == 204
    assert api.get("/api/users/", token=target_token, org=world.slug).status_code == 404
    # logged out: the token is refused at once
    assert api.get("/api/users/", token=manager, org=world.slug).status_code == 200
    assert api.post("/api/logout/", token=manager).status_code == 200
    assert api.get("/api/users/", token=manager, org=world.slug).status_code == 401


def test_a_symlink_the_tenant_planted_in_its_root_is_never_opened_by_a_spec_change(
    api, world: OrgWorld, other_world: OrgWorld
):
    """Tenant code (a dbt macro in a run) may write anything under its organization's root. Lock files the
    platform opened there (``spec.lock``, the Airbyte apply's) would follow a symlink it planted and
    truncate the target, another organization's spec say. The platform's locks live in its own folder."""
    from dalgo_core import layout
    from dalgo_core.spec import org_spec_path

    victim = org_spec_path(other_world.slug)
    before = victim.read_bytes()
    root = layout.org_root(world.slug)
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.lock").symlink_to(victim)
    rule = {"name": "stale", "kind": "run_failed", "webhooks": [{"format": "json", "url": "https://a.example.org/h"}]}
    assert api.post("/api/alerts/", rule, token=world.tokens["account-manager"], org=world.slug).status_code == 201
    assert victim.read_bytes() == before


def test_a_link_in_the_tenants_root_never_opens_another_organizations_warehouse(
    api, world: OrgWorld, other_world: OrgWorld
):
    """The API opens an organization's DuckDB warehouse outside the sandbox. A ``warehouse.duckdb`` that
    is a link to another organization's (tenant code cannot make one; an older version or a hand could)
    is refused with a 409 naming the link, and nothing of the other warehouse is read."""
    import duckdb

    from dalgo_api.orgs.flags import set_flag
    from dalgo_core import layout

    theirs = layout.org_root(other_world.slug) / "warehouse.duckdb"
    theirs.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(theirs)) as conn:
        conn.execute("create table payroll as select 'their-salary-row' as secret")
    mine = layout.org_root(world.slug)
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "warehouse.duckdb").symlink_to(theirs)
    set_flag("DATA_STATISTICS", True, world.org)
    token = world.tokens["account-manager"]
    for path in ("/api/warehouse/tables/main/payroll/preview", "/api/warehouse/tables/main/payroll/statistics"):
        r = api.get(path, token=token, org=world.slug)
        assert r.status_code == 409, (path, r.content)
        assert "warehouse.duckdb is a symbolic link" in r.json()["detail"]
        assert "their-salary-row" not in r.content.decode()
    tested = api.post("/api/organizations/warehouse/test", {"type": "duckdb"}, token=token, org=world.slug).json()
    assert tested["ok"] is False and "symbolic link" in tested["message"], tested
