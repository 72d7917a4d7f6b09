"""What users do: log in and out, see their organizations, change or reset a password by email, sign
up with the signup code, accept an invitation."""

from __future__ import annotations

import re
import time

from django.core import mail
from django.db import connection
from django.db.models import F

from dalgo_api.accounts import auth
from dalgo_api.accounts.models import AccessGeneration, ApiToken, Role, hash_token
from dalgo_api.orgs.models import Invitation, OrgUser
from dalgo_core.spec import load_org_spec
from tests.api.conftest import PASSWORD, OrgWorld


def _login(api, email: str, password: str = PASSWORD) -> str:
    r = api.post("/api/login/", {"email": email, "password": password})
    assert r.status_code == 200, r.content
    return r.json()["token"]


def test_login_current_user_logout(api, world: OrgWorld, other_world: OrgWorld):
    user = world.users["pipeline-manager"]
    OrgUser.objects.create(user=user, org=other_world.org, role=world.users["guest"].memberships.get().role)
    token = _login(api, user.email.upper())  # emails are case-insensitive
    assert not ApiToken.objects.filter(key_hash=token).exists(), "the raw token must not be stored"
    assert ApiToken.objects.filter(key_hash=hash_token(token), user=user).exists()

    me = api.get("/api/currentuser", token=token).json()
    assert me["email"] == user.email and me["is_super_admin"] is False
    roles = {m["org"]["slug"]: m["role"] for m in me["memberships"]}
    assert roles == {world.slug: "pipeline-manager", other_world.slug: "guest"}
    pm = next(m for m in me["memberships"] if m["role"] == "pipeline-manager")
    assert "can_run_pipeline" in pm["permissions"] and "can_create_orguser" not in pm["permissions"]

    # the role follows the header
    assert api.get("/api/invitations/", token=token, org=world.slug).status_code == 200
    assert api.get("/api/invitations/", token=token, org=other_world.slug).status_code == 403

    assert api.post("/api/logout/", token=token).status_code == 200
    assert api.get("/api/currentuser", token=token).status_code == 401


def test_a_membership_removed_by_another_api_process_is_refused_here_within_a_second(api, world: OrgWorld, monkeypatch):
    """Another API process (a second gunicorn worker, another host) removed the analyst from the
    organization: Django's signals ran there, not here, and counted the change in the access
    generation. This process remembered the analyst; at its next look at the generation (once a second)
    it forgets and refuses, where it would otherwise go on answering for up to a minute."""
    token, analyst = world.tokens["analyst"], world.users["analyst"]
    assert api.get("/api/invitations/", token=token, org=world.slug).status_code == 200  # remembered now

    with connection.cursor() as cursor:  # the other process's change: no signal in this one
        cursor.execute(f"DELETE FROM {OrgUser._meta.db_table} WHERE user_id = %s", [analyst.pk])
    AccessGeneration.objects.filter(pk=1).update(value=F("value") + 1)
    assert api.get("/api/invitations/", token=token, org=world.slug).status_code == 200  # not looked yet

    monkeypatch.setattr(auth, "clock", lambda: time.monotonic() + auth.CHANGES_POLL_SECONDS)
    refused = api.get("/api/invitations/", token=token, org=world.slug)
    assert refused.status_code == 404 and world.slug in refused.json()["detail"]


def test_a_permission_taken_from_a_role_elsewhere_is_gone_here_at_the_next_look(world: OrgWorld, monkeypatch):
    """Role permissions are also read outside any request (the alert dispatcher chooses who may see an
    alert by them). A permission taken from the analyst role by another process (its signal ran there
    and counted the change) is gone here at this process's next look at the access generation."""
    held = auth.role_permissions("analyst")
    taken = sorted(held)[0]
    Role.permissions.through.objects.filter(role__slug="analyst", permission__slug=taken).delete()  # no signal here
    AccessGeneration.objects.filter(pk=1).update(value=F("value") + 1)
    assert taken in auth.role_permissions("analyst")  # not looked yet

    monkeypatch.setattr(auth, "clock", lambda: time.monotonic() + auth.CHANGES_POLL_SECONDS)
    assert auth.role_permissions("analyst") == held - {taken}


def test_change_password_ends_other_sessions(api, world: OrgWorld):
    email = world.users["analyst"].email
    first, second = _login(api, email), _login(api, email)
    r = api.post("/api/users/change_password/", {"old_password": PASSWORD, "new_password": "N3w-and-long"}, token=first)
    assert r.status_code == 200
    assert api.get("/api/currentuser", token=first).status_code == 200
    assert api.get("/api/currentuser", token=second).status_code == 401
    assert api.post("/api/login/", {"email": email, "password": PASSWORD}).status_code == 401
    _login(api, email, "N3w-and-long")


def test_password_reset_by_email(api, world: OrgWorld):
    email = world.users["guest"].email
    old_token = world.tokens["guest"]
    mail.outbox.clear()
    assert api.post("/api/users/forgot_password/", {"email": "nobody@example.org"}).status_code == 200
    assert mail.outbox == []
    assert api.post("/api/users/forgot_password/", {"email": email}).status_code == 200
    (message,) = mail.outbox
    assert message.to == [email]
    uid, token = re.search(r"uid=([^&\s]+)&token=([^&\s]+)", message.body).groups()

    r = api.post("/api/users/reset_password/", {"uid": uid, "token": token, "password": "Fr3sh-password"})
    assert r.status_code == 200
    assert api.get("/api/currentuser", token=old_token).status_code == 401
    _login(api, email, "Fr3sh-password")
    again = api.post("/api/users/reset_password/", {"uid": uid, "token": token, "password": "Other-pass-42"})
    assert again.status_code == 400 and "invalid or has expired" in again.json()["detail"]


def test_signup_with_code_creates_the_organization(api, db):
    r = api.post(
        "/api/signup/",
        {
            "email": "founder@example.org",
            "password": "F0under-pass",
            "signup_code": "let-me-in",
            "organization": "Demo NGO",
        },
    )
    assert r.status_code == 201, r.content
    token = _login(api, "founder@example.org", "F0under-pass")
    (membership,) = api.get("/api/currentuser", token=token).json()["memberships"]
    assert membership["org"] == {"slug": "demo_ngo", "name": "Demo NGO"}
    assert membership["role"] == "account-manager"
    assert load_org_spec("demo_ngo").name == "Demo NGO"


def test_invitation_accept_new_and_existing_user(api, world: OrgWorld, other_world: OrgWorld):
    token, org = world.tokens["account-manager"], world.slug
    mail.outbox.clear()
    r = api.post("/api/invitations/", {"email": "newbie@example.org", "role": "analyst"}, token=token, org=org)
    assert r.status_code == 201 and r.json()["invited_by"] == world.users["account-manager"].email
    code = re.search(r"invite_code=(\S+)", mail.outbox[-1].body).group(1)

    r = api.post("/api/invitations/accept/", {"invite_code": code})
    assert r.status_code == 400 and "password" in r.json()["detail"]
    r = api.post("/api/invitations/accept/", {"invite_code": code, "password": "Newbie-pass-1"})
    assert r.status_code == 200 and r.json() == {"slug": org, "name": "Org A", "role": "analyst"}
    newbie = _login(api, "newbie@example.org", "Newbie-pass-1")
    assert api.get("/api/users/", token=newbie).status_code == 200
    assert api.post("/api/invitations/accept/", {"invite_code": code}).status_code == 400  # used

    # an existing user (a member of B) joins A logged in as themselves (test_account_hardening.py: only
    # them); resending replaces the link
    existing, own = other_world.users["guest"], other_world.tokens["guest"]
    invite = api.post("/api/invitations/", {"email": existing.email, "role": "guest"}, token=token, org=org)
    old_code = re.search(r"invite_code=(\S+)", mail.outbox[-1].body).group(1)
    assert api.post(f"/api/invitations/{invite.json()['id']}/resend", token=token, org=org).status_code == 200
    new_code = re.search(r"invite_code=(\S+)", mail.outbox[-1].body).group(1)
    assert api.post("/api/invitations/accept/", {"invite_code": old_code}, token=own).status_code == 400
    assert api.post("/api/invitations/accept/", {"invite_code": new_code}, token=own).status_code == 200
    assert set(existing.memberships.values_list("org__slug", flat=True)) == {world.slug, other_world.slug}
    assert not Invitation.objects.filter(email=existing.email).exists()


def test_openapi_docs(api, db):
    schema = api.get("/api/openapi.json").json()
    assert "/api/login/" in schema["paths"] and "/api/organizations/warehouse" in schema["paths"]
    assert schema["components"]["securitySchemes"]["PermissionAuth"]["scheme"] == "bearer"
    assert api.get("/api/docs").status_code == 200
