"""What a hostile user tried on the accounts endpoints, and what they get now: login throttling with a
lockout (429, even with the right password, until it expires or an operator lifts it), invitations of
existing users accepted only by those users, and bad input answered 4xx naming what is wrong (never a
500): oversized bodies, NUL bytes, a non-ASCII signup code, over-long names."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.test import Client

from dalgo_api.orgs.models import Invitation, OrgUser
from tests.api.conftest import PASSWORD, Api, OrgWorld, make_user

WRONG = "not-the-password"


def _login(api: Api, email: str, password: str):
    return api.post("/api/login/", {"email": email, "password": password})


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    return body


# --- login throttling ------------------------------------------------------------------------------


def _lock_out(api: Api, email: str) -> None:
    """The failures up to the limit: 401 each, then the one that reaches it is refused as locked (429)."""
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _error(_login(api, email, WRONG), 401)["detail"] == "invalid email or password"
    _error(_login(api, email, WRONG), 429)


def test_sixth_login_is_refused_even_with_the_right_password(api: Api, world: OrgWorld):
    email = world.users["analyst"].email
    assert settings.AXES_FAILURE_LIMIT == 5
    _lock_out(api, email)
    sixth = _login(api, email, WRONG)
    detail = _error(sixth, 429)["detail"]
    assert "too many failed logins" in detail and "minute" in detail
    assert 0 < int(sixth["Retry-After"]) <= 15 * 60
    right = _login(api, email, PASSWORD)
    assert _error(right, 429)["detail"] == detail
    assert "token" not in right.json()
    # the lock is on this email from this address: another user, or this one elsewhere, logs in
    assert _login(api, world.users["guest"].email, PASSWORD).status_code == 200
    elsewhere = Client(REMOTE_ADDR="203.0.113.7")
    body = json.dumps({"email": email, "password": PASSWORD})
    assert elsewhere.post("/api/login/", body, content_type="application/json").status_code == 200


def test_the_lock_expires(api: Api, world: OrgWorld):
    email = world.users["analyst"].email
    _lock_out(api, email)
    assert _login(api, email, PASSWORD).status_code == 429
    for attempt in AccessAttempt.objects.filter(username=email):  # 16 minutes later
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - timedelta(minutes=16))
    assert _login(api, email, PASSWORD).status_code == 200


def test_an_operator_lifts_the_lock(api: Api, world: OrgWorld):
    email = world.users["analyst"].email
    _lock_out(api, email)
    call_command("axes_reset_username", email, stdout=io.StringIO())
    assert _login(api, email, PASSWORD).status_code == 200


def test_a_successful_login_forgets_the_failures(api: Api, world: OrgWorld):
    email = world.users["analyst"].email
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(api, email, WRONG).status_code == 401
    assert _login(api, email, PASSWORD).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(api, email, WRONG).status_code == 401
    assert _login(api, email, PASSWORD).status_code == 200


def test_the_admin_login_is_throttled_too(api: Api, world: OrgWorld):
    admin = world.users["super-admin"]
    client = Client()
    form = {"username": admin.email.upper(), "password": WRONG, "next": "/admin/"}
    statuses = [client.post("/admin/login/", form).status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form again, then locked
    r = client.post("/admin/login/", {**form, "password": PASSWORD})
    assert r.status_code == 429
    assert AccessAttempt.objects.filter(username=admin.email).exists()
    # the same email through the API is locked as well: one count per email and address
    assert _login(api, admin.email, PASSWORD).status_code == 429


def test_behind_proxies_the_address_is_the_one_they_saw(rf, settings):
    from dalgo_api.accounts.throttling import client_ip

    request = rf.post("/api/login/", REMOTE_ADDR="10.0.0.1")
    request.META["HTTP_X_FORWARDED_FOR"] = "1.2.3.4, 198.51.100.9"  # the client's claim, the proxy's
    assert client_ip(request) == "10.0.0.1"  # no proxy configured: the header is not trusted
    settings.PROXY_COUNT = 1
    assert client_ip(request) == "198.51.100.9"


# --- invitations of existing users -----------------------------------------------------------------


def _invite(api: Api, world: OrgWorld, email: str) -> tuple[int, str]:
    token, org = world.tokens["account-manager"], world.slug
    r = api.post("/api/invitations/", {"email": email, "role": "analyst"}, token=token, org=org)
    assert r.status_code == 201, r.content
    code = re.search(r"invite_code=(\S+)", mail.outbox[-1].body).group(1)
    return r.json()["id"], code


def test_an_existing_user_accepts_only_logged_in_as_themselves(api: Api, world: OrgWorld, other_world: OrgWorld):
    invited = other_world.users["guest"]
    invitation_id, code = _invite(api, world, invited.email)

    def unchanged() -> None:
        assert not OrgUser.objects.filter(org=world.org, user=invited).exists()
        assert Invitation.objects.filter(pk=invitation_id).exists()

    r = api.post("/api/invitations/accept/", {"invite_code": code, "password": "Taken-over-42"})
    assert "log in" in _error(r, 401)["detail"]
    unchanged()
    assert invited.check_password(PASSWORD)  # the password in the body was not set

    r = api.post("/api/invitations/accept/", {"invite_code": code}, token=other_world.tokens["analyst"])
    assert "another account" in _error(r, 403)["detail"]
    unchanged()

    r = api.post("/api/invitations/accept/", {"invite_code": code}, token="not-a-token")
    _error(r, 401)
    unchanged()

    r = api.post("/api/invitations/accept/", {"invite_code": code}, token=other_world.tokens["guest"])
    assert r.status_code == 200, r.content
    assert r.json() == {"slug": world.slug, "name": "Org A", "role": "analyst"}
    assert OrgUser.objects.get(org=world.org, user=invited).role.slug == "analyst"
    assert not Invitation.objects.filter(pk=invitation_id).exists()


def test_a_new_user_still_sets_a_password(api: Api, world: OrgWorld):
    _, code = _invite(api, world, "fresh@example.org")
    r = api.post("/api/invitations/accept/", {"invite_code": code, "password": "Fresh-pass-42"})
    assert r.status_code == 200, r.content
    assert _login(api, "fresh@example.org", "Fresh-pass-42").status_code == 200


# --- bad input: 4xx naming what is wrong -----------------------------------------------------------


def test_a_body_over_the_upload_limit_is_413(api: Api, db):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"email": "a@example.org", "password": "x" * limit})
    body = _error(api.call("POST", "/api/login/", raw=body), 413)
    assert "too large" in body["detail"] and str(limit) in body["detail"]


@pytest.mark.parametrize("path", ["/api/users/%00", "/api/organizations/a\x00b", "/api/connections/x%00y"])
def test_nul_in_the_path_is_400(api: Api, world: OrgWorld, path: str):
    r = api.get(path, token=world.tokens["account-manager"], org=world.slug)
    body = _error(r, 400)
    assert body["detail"] == "path: NUL bytes are not allowed"
    assert body["errors"] == [{"field": "path", "message": "contains a NUL byte"}]


def test_nul_in_the_query_is_400_naming_the_parameter(api: Api, world: OrgWorld):
    token, org = world.tokens["account-manager"], world.slug
    body = _error(api.get("/api/runs/?limit=5&cursor=%00", token=token, org=org), 400)
    assert body["detail"] == "query.cursor: NUL bytes are not allowed"
    assert body["errors"] == [{"field": "query.cursor", "message": "contains a NUL byte"}]
    assert _error(api.get("/api/health?x=a%00", token=token), 400)["detail"].startswith("query.x:")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"email": "a\\u0000@example.org", "password": "x"}', "body.email"),  # the JSON escape
        ('{"email": "a@example.org", "password": "x\x00"}', "body.password"),  # the raw byte
        ('{"email": "a@example.org", "password": "x\\\\\\u0000"}', "body.password"),  # \\ then NUL
        ('{"a": [{"b\\u0000": 1}]}', "body.a.0.b\\u0000"),  # a key
        ('[{"x": "\x00', "body"),  # not JSON
    ],
)
def test_nul_in_a_json_body_is_400_naming_the_field(api: Api, db, raw: str, field: str):
    body = _error(api.call("POST", "/api/login/", raw=raw), 400)
    assert body["detail"] == f"{field}: NUL bytes are not allowed"


def test_an_escaped_backslash_before_u0000_is_not_nul(api: Api, db):
    raw = '{"email": "a@example.org", "password": "x\\\\u0000"}'  # the six characters \u0000
    assert api.call("POST", "/api/login/", raw=raw).status_code == 401


def test_nul_in_an_invitation_body_is_400_and_changes_nothing(api: Api, world: OrgWorld):
    before = Invitation.objects.count()
    body = {"email": "x@example.org", "role": "analyst\u0000"}
    r = api.post("/api/invitations/", body, token=world.tokens["account-manager"], org=world.slug)
    assert _error(r, 400)["errors"] == [{"field": "body.role", "message": "contains a NUL byte"}]
    assert Invitation.objects.count() == before


def test_a_non_ascii_signup_code_is_refused(api: Api, db):
    body = {"email": "new@example.org", "password": "F0under-pass", "signup_code": "lét-me-in-ü"}
    r = api.post("/api/signup/", body)
    assert r.status_code == 403, r.content
    assert r.json()["detail"].startswith("signup_code:")


@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_a_name_over_150_characters_is_422_naming_it(api: Api, world: OrgWorld, field: str):
    body = {"email": "long@example.org", "password": "F0under-pass", "signup_code": "let-me-in", field: "n" * 151}
    r = api.post("/api/signup/", body)
    detail = _error(r, 422)["detail"]
    assert f"body.payload.{field}" in detail
    assert f"body.payload.{field}" in [e["field"] for e in r.json()["errors"]]

    _, code = _invite(api, world, "long@example.org")
    r = api.post("/api/invitations/accept/", {"invite_code": code, "password": "F0under-pass", field: "n" * 151})
    assert f"body.payload.{field}" in _error(r, 422)["detail"]

    body[field] = "n" * 150
    assert api.post("/api/signup/", body).status_code == 201


def test_an_unknown_api_path_is_a_json_404(api: Api, db):
    body = _error(api.get("/api/no/such/thing"), 404)
    assert body["detail"].startswith("not found")


def test_a_huge_reset_uid_is_400(api: Api, db):
    import base64

    uid = base64.urlsafe_b64encode(str(2**70).encode()).decode().rstrip("=")
    r = api.post("/api/users/reset_password/", {"uid": uid, "token": "x", "password": "Fr3sh-password"})
    assert "invalid or has expired" in _error(r, 400)["detail"]


def test_other_users_are_not_affected_by_a_lockout(api: Api, db):
    make_user("bystander@example.org")
    _lock_out(api, "victim@example.org")  # no such account: locked all the same
    assert _login(api, "bystander@example.org", PASSWORD).status_code == 200
