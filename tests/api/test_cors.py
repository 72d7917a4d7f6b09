"""A product frontend served from its own origin (Dalgo's webapp on :3001, the API on :8000) calls the API
from a browser: its origin (``DALGO_API_FRONTEND_URL``'s, and those in ``DALGO_API_CORS_ORIGINS``) is
answered the preflight for every header the API reads, and may read every answer, errors and their
``Retry-After`` included; any other origin is told nothing, and no cookie is allowed across origins.
``tests/deploy/test_up.py`` does the same from a real browser against the running platform."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from dalgo_api.settings import cors_origins
from tests.api.conftest import Api, OrgWorld

FRONTEND = "http://127.0.0.1:3001"  # the default DALGO_API_FRONTEND_URL


def _preflight(origin: str, method: str, path: str = "/api/runs/") -> dict[str, str]:
    response = Client().options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,x-dalgo-org,idempotency-key",
        },
    )
    assert response.status_code == 200, response.content  # answered before authentication
    return {k.lower(): v for k, v in response.headers.items()}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_the_frontend_may_send_every_header_the_api_reads(db, method: str):
    headers = _preflight(FRONTEND, method)
    assert headers["access-control-allow-origin"] == FRONTEND
    assert method in headers["access-control-allow-methods"].split(", ")
    allowed = set(headers["access-control-allow-headers"].split(", "))
    assert {"authorization", "content-type", "x-dalgo-org", "idempotency-key"} <= allowed
    assert "access-control-allow-credentials" not in headers  # the token is a header, never a cookie


@pytest.mark.parametrize("origin", ["http://127.0.0.1:3000", "https://evil.example.org", "null"])
def test_another_origin_is_told_nothing(db, origin: str):
    headers = _preflight(origin, "POST")
    assert not any(h.startswith("access-control-allow") for h in headers), headers
    answer = Client().get("/api/health", headers={"Origin": origin})
    assert "access-control-allow-origin" not in {k.lower() for k in answer.headers}


def test_the_frontend_reads_answers_and_errors(api: Api, world: OrgWorld):
    origin = {"Origin": FRONTEND}
    me = api.get("/api/currentuser", token=world.tokens["analyst"], org=world.slug, headers=origin)
    assert me.status_code == 200 and me.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert me.headers["Vary"].lower().count("origin")  # a shared cache keeps answers per origin
    for status, answer in (
        (401, api.get("/api/currentuser", token="not-a-token", headers=origin)),  # log in again
        (403, api.get("/api/audit/", token=world.tokens["guest"], org=world.slug, headers=origin)),
        (404, api.get("/api/users/", token=world.tokens["guest"], org="another_org", headers=origin)),
    ):
        assert answer.status_code == status, answer.content
        assert answer.headers["Access-Control-Allow-Origin"] == FRONTEND
        assert answer.json()["detail"]
    # the guard's own refusal, before any view: a body over the limit
    big = api.call("POST", "/api/login/", raw="x" * 3_000_000, headers=origin)
    assert big.status_code == 413 and big.headers["Access-Control-Allow-Origin"] == FRONTEND


def test_retry_after_is_readable_by_the_frontend(api: Api, world: OrgWorld):
    """A locked-out login (429) says when to try again; the frontend's script may read it."""
    email = world.users["analyst"].email
    for _ in range(6):
        locked = api.post("/api/login/", {"email": email, "password": "wrong"}, headers={"Origin": FRONTEND})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert locked.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert locked.headers["Access-Control-Expose-Headers"] == "Retry-After"


def test_the_operator_lists_more_origins_and_a_wrong_one_is_named():
    assert cors_origins("https://App.example.org/webapp/", " https://staff.example.org ,http://localhost:5173") == [
        "https://app.example.org",
        "https://staff.example.org",
        "http://localhost:5173",
    ]
    assert cors_origins("http://127.0.0.1:3001", "") == [FRONTEND]
    for wrong in [
        "app.example.org",
        "https://x.org/app",
        "ftp://x.org",
        "https://user:pw@x.org",
        "https://x.org:99999",
    ]:
        with pytest.raises(ImproperlyConfigured, match=f"DALGO_API_CORS_ORIGINS: '{wrong}' is not an origin"):
            cors_origins(FRONTEND, wrong)
