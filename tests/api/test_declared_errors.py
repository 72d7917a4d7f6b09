"""The OpenAPI document declares each operation's error statuses in the one error format, and the
server errors schemathesis found (tests/security/test_openapi.py) are 4xx now."""

from __future__ import annotations

import pytest

from dalgo_api.api import api as ninja_api
from tests.api.conftest import Api, OrgWorld

ERROR_REF = "#/components/schemas/ErrorOut"


@pytest.fixture(scope="module")
def document() -> dict:
    return ninja_api.get_openapi_schema()


def _responses(document: dict, method: str, path: str) -> dict[str, dict]:
    return {str(status): r for status, r in document["paths"][path][method]["responses"].items()}


def test_every_error_status_is_declared_with_the_error_schema(document: dict):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = {str(s): r for s, r in operation["responses"].items()}
            assert "400" in responses, (method, path)  # a NUL byte in the query, at least
            if operation.get("security") and {} not in operation["security"]:
                assert "401" in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (method, path, status)
    error = document["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["detail", "errors"]


@pytest.mark.parametrize(
    ("method", "path", "declared", "not_declared"),
    [
        ("post", "/api/login/", {"401", "413", "422", "429"}, {"403", "404"}),
        ("post", "/api/invitations/accept/", {"401", "403", "422"}, {"404", "429"}),
        ("post", "/api/signup/", {"403", "409", "422"}, {"401", "404"}),
        ("get", "/api/users/{user_id}", {"401", "403", "404"}, {"413", "422"}),
        ("delete", "/api/users/{user_id}", {"404", "409"}, {"413", "422"}),
        ("get", "/api/health", {"400"}, {"401", "422"}),
        ("get", "/api/assets/", {"503"}, {"413"}),
        ("post", "/api/connections/", {"409", "413", "422", "503"}, set()),
        ("get", "/api/connections/", {"409"}, {"503"}),
    ],
)
def test_declared_statuses(document: dict, method: str, path: str, declared: set, not_declared: set):
    responses = set(_responses(document, method, path))
    assert declared <= responses
    assert not (not_declared & responses)


def test_an_existing_users_invitation_may_send_a_token(document: dict):
    operation = document["paths"]["/api/invitations/accept/"]["post"]
    assert operation["security"] == [{}, {"TokenAuth": []}]


def test_duplicate_stream_names_are_400_naming_the_field(api: Api, world: OrgWorld, monkeypatch):
    monkeypatch.setenv("DALGO_DAGSTER_URL", "http://127.0.0.1:9")  # refused before Dagster anyway
    body = {
        "name": "people",
        "source": {"connector": "source-faker", "config": {}, "secrets": {}},
        "streams": [{"name": "users"}, {"name": "users"}],
    }
    r = api.post("/api/connections/", body, token=world.tokens["pipeline-manager"], org=world.slug)
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["field"] == "streams"
    assert "streams name the same table" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/users/{id}"), ("DELETE", "/api/invitations/{id}")])
def test_an_id_too_large_for_the_database_is_404(api: Api, world: OrgWorld, method: str, path: str):
    r = api.call(method, path.format(id=2**70), token=world.tokens["account-manager"], org=world.slug)
    assert r.status_code == 404, r.content
