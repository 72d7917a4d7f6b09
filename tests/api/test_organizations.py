"""Organizations and their specs and code locations, memberships, feature flags, and the management
commands of the seed."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
import yaml
from django.core import mail
from django.core.management import CommandError, call_command

from dalgo_api.accounts.models import User
from dalgo_api.bridge import locations
from dalgo_api.orgs.flags import FEATURE_FLAGS, set_flag
from dalgo_api.orgs.models import Org, OrgUser, RetiredSlug
from dalgo_api.specs import store as specs
from dalgo_core.code_locations import code_servers, write_workspace
from dalgo_core.spec import list_org_slugs, load_org_spec
from tests.api.conftest import OrgWorld
from tests.support.orgs import copy_demo_org, write_spec


def _workspace_locations() -> list[str]:
    data = yaml.safe_load(specs.workspace_file().read_text())
    return [entry["python_module"]["location_name"] for entry in data["load_from"]]


def test_create_rename_delete_org_with_its_spec_and_location(api, world: OrgWorld, dalgo_env: Path):
    token = world.tokens["super-admin"]
    manager = world.users["analyst"]
    r = api.post("/api/organizations/", {"name": "Demo NGO", "account_manager_email": manager.email}, token=token)
    assert r.status_code == 201 and r.json()["slug"] == "demo_ngo"
    spec = load_org_spec("demo_ngo")
    assert (spec.name, spec.warehouse.type, spec.dbt_projects) == ("Demo NGO", "duckdb", [])
    assert spec.spec_path == dalgo_env / "orgs" / "demo_ngo" / "org.yaml"
    assert "org_demo_ngo" in _workspace_locations()
    assert OrgUser.objects.get(org__slug="demo_ngo", user=manager).role.slug == "account-manager"

    # same name again: a unique slug
    again = api.post("/api/organizations/", {"name": "Demo NGO!"}, token=token)
    assert again.json()["slug"] == "demo_ngo_2"
    # a long name cut at the slug's 40 characters never ends in "_": slugs name DNS labels on Kubernetes
    long = api.post("/api/organizations/", {"name": "Friends of the Rural Schools of Karnataka Trust"}, token=token)
    assert long.json()["slug"] == "friends_of_the_rural_schools_of_karnatak"
    cut = api.post("/api/organizations/", {"name": "Friends of the Rural Schools of Karnata Trust"}, token=token)
    assert cut.json()["slug"] == "friends_of_the_rural_schools_of_karnata"

    r = api.put("/api/organizations/demo_ngo", {"name": "Demo NGO (renamed)"}, token=token)
    assert r.status_code == 200 and load_org_spec("demo_ngo").name == "Demo NGO (renamed)"

    assert api.delete("/api/organizations/demo_ngo", token=token).status_code == 204
    assert "demo_ngo" not in list_org_slugs() and not (dalgo_env / "orgs" / "demo_ngo").exists()
    assert "org_demo_ngo" not in _workspace_locations()
    assert not Org.objects.filter(slug="demo_ngo").exists()
    assert api.get("/api/organizations/demo_ngo", token=token).status_code == 404


def test_members_list_shows_each_member_with_role_and_joined_date(api, world: OrgWorld):
    token, org = world.tokens["analyst"], world.slug
    target = world.target
    target.first_name, target.last_name = "Asha", "Rao"
    target.save()
    listed = api.get("/api/users/", token=token, org=org).json()
    members = OrgUser.objects.filter(org__slug=org).select_related("user", "role")
    assert [m["email"] for m in listed] == sorted(m.user.email for m in members)
    expected = {
        m.user.email: {
            "user_id": m.user_id,
            "email": m.user.email,
            "first_name": m.user.first_name,
            "last_name": m.user.last_name,
            "role": m.role.slug,
        }
        for m in members
    }
    assert {m["email"]: {k: v for k, v in m.items() if k != "joined_at"} for m in listed} == expected
    mine = next(m for m in listed if m["user_id"] == target.pk)
    assert (mine["first_name"], mine["last_name"]) == ("Asha", "Rao")
    joined = OrgUser.objects.get(org__slug=org, user=target).created_at
    assert mine["joined_at"].replace("Z", "+00:00").startswith(joined.isoformat()[:19])


def test_member_role_change_and_removal(api, world: OrgWorld):
    token, org = world.tokens["account-manager"], world.slug
    target = world.target
    r = api.put(f"/api/users/{target.pk}", {"role": "pipeline-manager"}, token=token, org=org)
    assert r.status_code == 200 and r.json()["role"] == "pipeline-manager"
    assert api.get(f"/api/users/{target.pk}", token=token, org=org).json()["role"] == "pipeline-manager"
    assert api.delete(f"/api/users/{target.pk}", token=token, org=org).status_code == 204
    assert api.get(f"/api/users/{target.pk}", token=token, org=org).status_code == 404
    assert User.objects.filter(pk=target.pk).exists()  # the account stays


def test_flags_org_value_wins_over_global(api, world: OrgWorld, other_world: OrgWorld):
    set_flag("DATA_QUALITY", True)
    set_flag("DATA_QUALITY", False, world.org)
    set_flag("LOG_SUMMARIZATION", True, world.org)
    a = api.get("/api/organizations/flags", token=world.tokens["guest"], org=world.slug).json()
    b = api.get("/api/organizations/flags", token=other_world.tokens["guest"], org=other_world.slug).json()
    assert set(a) == set(FEATURE_FLAGS)
    assert (a["DATA_QUALITY"], a["LOG_SUMMARIZATION"], a["EMBED_SUPERSET"]) == (False, True, False)
    assert (b["DATA_QUALITY"], b["LOG_SUMMARIZATION"]) == (True, False)
    r = api.put(
        "/api/organizations/flags/EMBED_SUPERSET",
        {"enabled": True},
        token=world.tokens["super-admin"],
        org=world.slug,
    )
    assert r.json()["EMBED_SUPERSET"] is True


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_manage_feature_flags_command(api, world: OrgWorld):
    _run("manage_feature_flags", "--enable-all-global")
    _run("manage_feature_flags", "--disable", "AI_DATA_ANALYSIS", "--org-slug", world.slug)
    flags = api.get("/api/organizations/flags", token=world.tokens["analyst"], org=world.slug).json()
    assert flags["AI_DATA_ANALYSIS"] is False and flags["DATA_STATISTICS"] is True
    assert "AI_DATA_ANALYSIS: off" in _run("manage_feature_flags", "--list", "--org-slug", world.slug)
    with pytest.raises(CommandError, match="unknown feature flag 'NOPE'"):
        _run("manage_feature_flags", "--enable", "NOPE")
    with pytest.raises(CommandError, match="organization 'ghost' does not exist"):
        _run("manage_feature_flags", "--enable", "DATA_QUALITY", "--org-slug", "ghost")


def test_createorganduser_and_system_user(api, db):
    _run(
        "createorganduser",
        "Partner NGO",
        "boss@example.org",
        "--role",
        "super-admin",
        "--password",
        "B0ss-pass!",
    )
    boss = User.objects.get(email="boss@example.org")
    assert boss.is_superuser
    assert load_org_spec("partner_ngo").name == "Partner NGO"
    _run("createorganduser", "partner_ngo", "Helper@Example.org")  # existing slug, default role
    helper = OrgUser.objects.get(user__email="helper@example.org", org__slug="partner_ngo")
    assert helper.role.slug == "account-manager" and not helper.user.has_usable_password()
    assert mail.outbox[-1].to == ["helper@example.org"] and "reset_password" not in mail.outbox[-1].body
    assert "resetpassword?uid=" in mail.outbox[-1].body
    assert Org.objects.filter(name="Partner NGO").count() == 1

    assert "created" in _run("create-system-orguser")
    assert "already exists" in _run("create-system-orguser")
    system = User.objects.get(email="system@dalgo.local")
    assert not system.has_usable_password()


def test_the_first_organization_of_a_served_platform_gets_its_own_code_server_from_any_shell(
    api, db, monkeypatch: pytest.MonkeyPatch
):
    """``dalgo serve`` started with no organization, then the operator's first ``createorganduser`` in
    another shell (no ``DALGO_GRPC_BASE_PORT`` there): the new organization is served by a long-lived code
    server the supervisor starts, never by module entries the webserver and the daemon would each spawn."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1]
    workspace = specs.workspace_file()
    assert write_workspace(workspace, grpc_base_port=base) == []  # what dalgo serve writes at its start
    monkeypatch.delenv("DALGO_GRPC_BASE_PORT", raising=False)
    monkeypatch.setattr(locations, "RELOAD_TIMEOUT_SECONDS", 0.5)  # no code server answers in this test

    _run("createorganduser", "Field NGO", "admin@field.example.org", "--password", "Fi3ld-pass!")
    assert code_servers(workspace) == {"field_ngo": base}
    assert "python_module" not in workspace.read_text()
    _run("createorganduser", "Second NGO", "admin@second.example.org", "--password", "S3cond-pass!")
    assert code_servers(workspace) == {"field_ngo": base, "second_ngo": base + 1}


def test_the_organizations_folder_is_adopted_and_createorganduser_joins_it(api, db, dalgo_env: Path):
    """An organization shipped in the folder (no database row) is adopted, not duplicated; a retired
    slug left on disk is not; the demo login is printed and stays the same from one start to the next."""
    copy_demo_org(dalgo_env / "orgs", "demo_ngo")
    write_spec(dalgo_env / "orgs", "broken", {"slug": "broken", "name": "Broken", "warehouse": {"type": "oracle"}})
    write_spec(dalgo_env / "orgs", "gone", {"slug": "gone", "name": "Gone"})
    RetiredSlug.objects.create(slug="gone")

    out = _run("createorganduser", "demo_ngo", "admin@example.org", "--password", "Adm1n-pass!")
    assert "created organization" not in out and "admin@example.org is account-manager of demo_ngo" in out
    assert {o.slug: o.name for o in Org.objects.all()} == {"demo_ngo": "Demo NGO", "broken": "broken"}
    assert "every organization folder is known" in _run("adoptorgs")
    login = api.post("/api/login/", {"email": "admin@example.org", "password": "Adm1n-pass!"}).json()
    me = api.get("/api/currentuser", token=login["token"]).json()
    assert [m["org"]["slug"] for m in me["memberships"]] == ["demo_ngo"]

    first = _run("demologin", "demo_ngo", "Demo@Example.org")
    email, password = first.removeprefix("demo login: ").split(" (")[0].split(" / ")
    assert email == "demo@example.org" and first == _run("demologin", "demo_ngo", "demo@example.org")
    token = api.post("/api/login/", {"email": email, "password": password}).json()["token"]
    assert api.get("/api/assets/", token=token, org="demo_ngo").status_code != 404  # a member of demo_ngo
    kept = dalgo_env / "home" / "platform" / "demo-login.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    with pytest.raises(CommandError, match="no organization 'ghost'"):
        _run("demologin", "ghost", "demo@example.org")


def test_seed_roles_is_idempotent(db):
    from dalgo_api.accounts.models import Role

    before = {r.slug: set(r.permissions.values_list("slug", flat=True)) for r in Role.objects.all()}
    assert "roles synced" in _run("seed_roles")
    after = {r.slug: set(r.permissions.values_list("slug", flat=True)) for r in Role.objects.all()}
    assert before == after and len(after) == 5


def test_django_admin_pages(db, world: OrgWorld):
    from django.test import Client

    client = Client()
    client.force_login(world.users["super-admin"])
    for page in ("accounts/user", "orgs/org", "orgs/orguser", "orgs/invitation", "orgs/featureflag", "accounts/role"):
        assert client.get(f"/admin/{page}/").status_code == 200, page
    assert client.get(f"/admin/orgs/org/{world.org.pk}/change/").status_code == 200
