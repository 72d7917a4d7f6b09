"""``POST /api/connections/{name}/reset``: what it refuses before anything reaches Dagster (an unknown
connection 404, an unknown stream 422 naming it, a role without ``can_reset_connection`` 403), and a
valid reset reaching for Dagster (503 while it is down). The reset itself
(tables and state dropped, the next sync full) is tests/ingestion/test_reset.py."""

from __future__ import annotations

import pytest

from dalgo_api.specs import store as specs
from dalgo_core.spec import ConnectionSpec, SourceSpec, StreamSpec
from tests.api.conftest import Api, OrgWorld

PATH = "/api/connections/faker/reset"


def add_faker_connection(slug: str) -> None:
    """The organization's spec gains a connection ``faker`` (streams users, products), written as the
    connection endpoints write it (no code location to reload here)."""
    spec = specs.load_spec(slug)
    connection = ConnectionSpec(
        name="faker",
        source=SourceSpec(connector="source-faker", config={"count": 5}),
        streams=[StreamSpec(name="users"), StreamSpec(name="products")],
        destination_schema="raw_faker",
    )
    specs.save_spec(spec.model_copy(update={"connections": [connection]}))


@pytest.fixture
def faker_world(world: OrgWorld) -> OrgWorld:
    add_faker_connection(world.slug)
    return world


def test_an_unknown_connection_is_404(api: Api, faker_world: OrgWorld):
    r = api.post("/api/connections/nope/reset", {}, token=faker_world.tokens["pipeline-manager"], org=faker_world.slug)
    assert r.status_code == 404, r.content
    assert r.json()["detail"] == "connection 'nope' not found"


def test_a_connection_of_another_organization_is_404(api: Api, faker_world: OrgWorld, other_world: OrgWorld):
    r = api.post(PATH, {}, token=other_world.tokens["account-manager"], org=other_world.slug)
    assert r.status_code == 404, r.content


@pytest.mark.parametrize("role", ["pipeline-manager", "account-manager"])
def test_an_unknown_stream_is_422_naming_it_and_the_streams_there_are(api: Api, faker_world: OrgWorld, role: str):
    body = {"streams": ["users", "customers", "orders"]}
    r = api.post(PATH, body, token=faker_world.tokens[role], org=faker_world.slug)
    assert r.status_code == 422, r.content
    assert r.json()["detail"] == (
        "connection 'faker' has no stream 'customers', 'orders' (its streams: users, products)"
    )
    assert [e["field"] for e in r.json()["errors"]] == ["streams", "streams"]


@pytest.mark.parametrize("body", [{"streams": "users"}, {"streams": [""]}, {"streams": [7]}])
def test_a_malformed_body_is_422(api: Api, faker_world: OrgWorld, body: dict):
    r = api.post(PATH, body, token=faker_world.tokens["pipeline-manager"], org=faker_world.slug)
    assert r.status_code == 422, r.content


@pytest.mark.parametrize("role", ["analyst", "guest"])
def test_analysts_and_guests_may_not_reset(api: Api, faker_world: OrgWorld, role: str):
    r = api.post(PATH, {"streams": ["users"]}, token=faker_world.tokens[role], org=faker_world.slug)
    assert r.status_code == 403, r.content
    assert f"your role in organization '{faker_world.slug}' is {role}" in r.json()["detail"]


@pytest.mark.parametrize("body", [None, {}, {"streams": []}, {"streams": ["products", "users"]}])
def test_a_valid_reset_is_launched_through_dagster(api: Api, faker_world: OrgWorld, body: dict | None):
    """With Dagster down, a valid request gets as far as launching the run: 503."""
    r = api.post(PATH, body, token=faker_world.tokens["pipeline-manager"], org=faker_world.slug)
    assert r.status_code == 503, r.content
