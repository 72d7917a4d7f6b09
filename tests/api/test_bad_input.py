"""Bad input answers the documented 4xx in the one error format, with a message naming what is wrong,
never a 500: malformed JSON, missing fields, wrong types, unknown role, unknown organization header,
duplicate email, expired or missing token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from dalgo_api.accounts.models import ApiToken
from dalgo_api.orgs import services
from dalgo_api.orgs.models import Org
from tests.api.conftest import PASSWORD, OrgWorld


def _error(response, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    return body["detail"]


@pytest.mark.parametrize("host", ["'lE", "evil.example.org", "a b", "[::1"])
def test_a_host_header_the_api_does_not_answer_to_is_a_json_400(api, world: OrgWorld, host: str):
    for path in ("/api/currentuser", "/api/notifications/preferences/0", "/admin/"):
        r = api.client.get(path, HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {world.tokens['account-manager']}")
        assert _error(r, 400).startswith("Host: "), path


def test_malformed_json(api, world: OrgWorld):
    r = api.call("POST", "/api/login/", raw='{"email": "a@b.org", ')
    assert _error(r, 400) == "malformed JSON: the request body cannot be parsed"
    r = api.call("POST", "/api/invitations/", raw="{nope", token=world.tokens["account-manager"], org=world.slug)
    assert "malformed JSON" in _error(r, 400)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/login/", {"email": "a@b.org"}, "body.payload.password"),
        ("/api/login/", {"email": "not-an-email", "password": "x"}, "body.payload.email"),
        ("/api/signup/", {"email": "a@b.org", "password": "x"}, "body.payload.signup_code"),
        ("/api/invitations/accept/", {}, "body.payload.invite_code"),
    ],
)
def test_missing_or_invalid_fields_are_named(api, path, body, field):
    r = api.post(path, body)
    detail = _error(r, 422)
    assert field in detail
    assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "at least 1 character"),
        ("Evil\r\nBcc: victim@example.net", "control characters"),
        ("Tab\tNGO", "control characters"),
    ],
)
def test_an_organization_name_people_cannot_read_is_named_and_nothing_changes(api, world: OrgWorld, name, message):
    """Names go into pages and email subjects: a blank one, or one with a line break or tab (which would
    break an invitation's or alert's email header), is a 422 naming the field, on create and rename."""
    token = world.tokens["super-admin"]
    created = api.post("/api/organizations/", {"name": name}, token=token)
    assert message in _error(created, 422) and "body.payload.name" in _error(created, 422)
    renamed = api.put(f"/api/organizations/{world.slug}", {"name": name}, token=world.tokens["account-manager"])
    assert message in _error(renamed, 422)
    assert Org.objects.get(slug=world.slug).name == world.org.name
    assert Org.objects.count() == 1


def test_an_organization_name_is_kept_without_the_spaces_around_it(api, world: OrgWorld):
    r = api.post("/api/organizations/", {"name": "  Field NGO  "}, token=world.tokens["super-admin"])
    assert r.status_code == 201 and r.json()["name"] == "Field NGO"


def test_a_line_break_saved_in_a_name_before_names_were_checked_never_breaks_an_invitation(api, world: OrgWorld):
    """An organization renamed with a line break before this API checked names: its invitations are still
    sent (201, one subject line), not a 500 from the mail header check."""
    Org.objects.filter(pk=world.org.pk).update(name="Old\r\nBcc: victim@example.net")
    r = api.post(
        "/api/invitations/", {"email": "new@example.org", "role": "analyst"}, token=world.tokens["account-manager"]
    )
    assert r.status_code == 201, r.content
    assert mail.outbox[-1].subject == "You are invited to Old Bcc: victim@example.net on Dalgo"
    assert mail.outbox[-1].to == ["new@example.org"] and not mail.outbox[-1].bcc


def test_wrong_types(api, world: OrgWorld):
    token, org = world.tokens["super-admin"], world.slug
    r = api.put("/api/organizations/flags/DATA_QUALITY", {"enabled": "perhaps"}, token=token, org=org)
    assert "body.payload.enabled" in _error(r, 422)
    r = api.put("/api/organizations/warehouse", {"type": "oracle"}, token=token, org=org)
    assert "body.payload" in _error(r, 422)
    r = api.get("/api/users/not-a-number", token=token, org=org)
    assert r.status_code == 404  # no such route: the id converter only takes integers
    r = api.post("/api/organizations/", {"name": ""}, token=token)
    assert "body.payload.name" in _error(r, 422)


def test_unknown_role(api, world: OrgWorld):
    token, org = world.tokens["account-manager"], world.slug
    r = api.post("/api/invitations/", {"email": "x@example.org", "role": "emperor"}, token=token, org=org)
    detail = _error(r, 400)
    assert "unknown role 'emperor'" in detail and "analyst" in detail
    r = api.put(f"/api/users/{world.target.pk}", {"role": "super-admin"}, token=token, org=org)
    assert "super-admin is platform staff" in _error(r, 400)


def test_unknown_or_missing_org_header(api, world: OrgWorld, other_world: OrgWorld):
    r = api.get("/api/users/", token=world.tokens["analyst"], org="nowhere")
    assert _error(r, 404) == "organization 'nowhere' not found"
    # the super admin of A also belongs to nothing else, but a user with two organizations must say which
    services.add_member(other_world.org, world.target, world.target.memberships.first().role)
    from dalgo_api.accounts.models import ApiToken as Token

    token = Token.issue(world.target)[1]
    assert "x-dalgo-org" in _error(api.get("/api/users/", token=token), 400)


def test_single_membership_needs_no_header(api, world: OrgWorld):
    r = api.get("/api/users/", token=world.tokens["guest"])
    assert r.status_code == 200


def test_duplicate_email(api, world: OrgWorld):
    existing = world.users["analyst"].email
    r = api.post(
        "/api/signup/",
        {"email": existing.upper(), "password": "An0ther-long-one", "signup_code": "let-me-in"},
    )
    assert "already exists" in _error(r, 409)
    token, org = world.tokens["account-manager"], world.slug
    r = api.post("/api/invitations/", {"email": existing, "role": "guest"}, token=token, org=org)
    assert "already a member" in _error(r, 409)
    r = api.post("/api/invitations/", {"email": world.invitation.email, "role": "guest"}, token=token, org=org)
    assert "already invited" in _error(r, 409)


def test_expired_missing_and_bogus_tokens(api, world: OrgWorld):
    token = world.tokens["guest"]
    ApiToken.objects.filter(user=world.users["guest"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _error(api.get("/api/currentuser", token=token), 401) == "token expired: log in again"
    assert _error(api.get("/api/currentuser", token=token), 401) == "invalid token: log in again"
    assert "Authorization: Bearer" in _error(api.get("/api/currentuser"), 401)
    assert _error(api.get("/api/currentuser", token="forged"), 401) == "invalid token: log in again"


def test_wrong_password_and_signup_code(api, world: OrgWorld):
    r = api.post("/api/login/", {"email": world.users["guest"].email, "password": "wrong-one"})
    assert _error(r, 401) == "invalid email or password"
    r = api.post("/api/signup/", {"email": "new@example.org", "password": "An0ther-long-one", "signup_code": "no"})
    assert _error(r, 403) == "signup_code: invalid signup code"
    r = api.post("/api/signup/", {"email": "new@example.org", "password": "short", "signup_code": "let-me-in"})
    assert _error(r, 400).startswith("password: This password is too short")


def test_unknown_flag_and_last_account_manager(api, world: OrgWorld):
    token, org = world.tokens["super-admin"], world.slug
    r = api.put("/api/organizations/flags/TELEPORT", {"enabled": True}, token=token, org=org)
    assert "unknown feature flag 'TELEPORT'" in _error(r, 404)
    spare = world.org.members.get(user__email__startswith="manager2")
    assert api.delete(f"/api/users/{spare.user_id}", token=token, org=org).status_code == 204
    manager = world.users["account-manager"]
    r = api.put(f"/api/users/{manager.pk}", {"role": "guest"}, token=token, org=org)
    assert "last Account Manager" in _error(r, 409)
    r = api.delete(f"/api/users/{manager.pk}", token=token, org=org)
    assert "last Account Manager" in _error(r, 409)
    assert Org.objects.get(pk=world.org.pk).members.filter(role__slug="account-manager").count() == 1


def test_a_change_sent_without_the_trailing_slash_keeps_its_method_and_body(api, world: OrgWorld):
    """``POST /api/runs`` once answered Django's 301 to ``/api/runs/``, which clients follow with a GET: a
    200 listing runs while nothing was launched. Now a 308 that clients follow with the same request."""
    token, member = world.tokens["pipeline-manager"], world.users["pipeline-manager"]
    moved = api.post("/api/runs?x=1", {"assets": ["faker/users"]}, token=token, org=world.slug)
    assert "/api/runs/?x=1 (this endpoint's path ends with a slash)" in _error(moved, 308)
    assert moved["Location"] == "/api/runs/?x=1"
    followed = api.client.post(
        "/api/login",
        data={"email": member.email, "password": PASSWORD},
        content_type="application/json",
        follow=True,
    )
    assert followed.redirect_chain == [("/api/login/", 308)]
    assert followed.status_code == 200 and followed.json()["token"]
    # reading without the slash still redirects as before (a GET loses nothing)
    assert api.get("/api/users", token=token, org=world.slug)["Location"] == "/api/users/"


@pytest.mark.parametrize(
    ("method", "path", "allowed"), [("GET", "/api/login/", "POST"), ("DELETE", "/api/health", "GET, HEAD")]
)
def test_a_method_the_endpoint_does_not_take_is_a_json_405_naming_those_it_takes(api, method, path, allowed):
    refused = api.call(method, path)
    assert _error(refused, 405) == f"method not allowed: {method} {path} takes {allowed}"
    assert refused["Allow"] == allowed


def test_the_health_probe_answers_head_as_uptime_monitors_send_it(api):
    assert api.call("HEAD", "/api/health").status_code == 200
    assert api.get("/api/health").json() == {"status": "ok"}


@pytest.mark.parametrize("run_id", ["x" * 65, "../runs", "a b", "run\u00e9", "\U000ce4f6", "a%2Fb"])
def test_a_run_id_that_cannot_be_one_is_404_without_a_storage_read(api, world: OrgWorld, monkeypatch, run_id):
    from dalgo_api.bridge import runs

    monkeypatch.setattr(runs, "_run", lambda run_id: pytest.fail(f"looked up {run_id!r}"))
    token = world.tokens["analyst"]
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/logs"):
        assert "not found" in _error(api.get(path, token=token, org=world.slug), 404)
