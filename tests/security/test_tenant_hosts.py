"""Database hosts a tenant names (its PostgreSQL warehouse, a database source, a connection's own database)
through the real API: pointed at the platform's own network (loopback: Dagit, the API, Dagster's database;
cloud metadata; private addresses) they are refused with a 422 naming the field, nothing is saved, and the
warehouse test connects nowhere. An operator's networks (``DALGO_PRIVATE_NETWORKS``) are allowed."""

from __future__ import annotations

import pytest

from dalgo_core import secret_store
from dalgo_core.spec import PostgresWarehouse
from tests.api.conftest import Api, OrgWorld

WAREHOUSE = "/api/organizations/warehouse"
PASSWORD = "Wh-s3cret-never-shown"
PLATFORM_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]", "169.254.169.254", "10.0.0.5", "192.168.1.10", "0.0.0.0"]


@pytest.fixture(autouse=True)
def public_only(monkeypatch: pytest.MonkeyPatch, dagster_down) -> None:
    """The rule as it stands in production: no private network allowed."""
    monkeypatch.delenv("DALGO_PRIVATE_NETWORKS", raising=False)
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)


def _warehouse(host: str) -> dict:
    return {"type": "postgres", "host": host, "port": 5432, "user": "ngo", "database": "ngo", "password": PASSWORD}


@pytest.mark.parametrize("host", PLATFORM_HOSTS)
def test_a_warehouse_on_the_platforms_network_is_refused_and_nothing_is_saved(api: Api, world: OrgWorld, host):
    token, org = world.tokens["account-manager"], world.slug
    before = api.get(WAREHOUSE, token=token, org=org).json()
    r = api.put(WAREHOUSE, _warehouse(host), token=token, org=org)
    assert r.status_code == 422, r.content
    assert r.json()["errors"][0]["field"] == "warehouse.host"
    assert f"{host}: not a public address" in r.json()["detail"] and "DALGO_PRIVATE_NETWORKS" in r.json()["detail"]
    assert PASSWORD not in r.content.decode()
    assert api.get(WAREHOUSE, token=token, org=org).json() == before
    with pytest.raises(LookupError):
        secret_store.read_secret(org, "warehouse_password")


def test_the_warehouse_test_does_not_connect_to_the_platforms_network(api: Api, world: OrgWorld, postgres):
    """The platform's own PostgreSQL listens on 127.0.0.1: the test answers why it will not connect, and
    the server sees no connection attempt as the tenant's user."""
    token, org = world.tokens["account-manager"], world.slug
    body = {**_warehouse(postgres.host), "port": postgres.port, "user": postgres.superuser}
    r = api.post(f"{WAREHOUSE}/test", body, token=token, org=org)
    assert r.status_code == 200 and r.json()["ok"] is False, r.content
    assert f"{postgres.host}: not a public address" in r.json()["message"]
    assert PASSWORD not in r.content.decode()


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254"])
def test_a_database_source_on_the_platforms_network_is_refused(api: Api, world: OrgWorld, host):
    token, org = world.tokens["pipeline-manager"], world.slug
    config = {"host": host, "database": "shop", "user": "reader", "password": PASSWORD}
    r = api.post("/api/sources/", {"name": "shop", "connector": "database", "config": config}, token=token, org=org)
    assert r.status_code == 422, r.content
    assert r.json()["errors"] == [{"field": "sources.shop.host", "message": r.json()["errors"][0]["message"]}]
    assert "not a public address" in r.json()["detail"] and PASSWORD not in r.content.decode()
    assert api.get("/api/sources/", token=token, org=org).json() == []

    # a connection's own database too
    own = {"type": "database", "host": host, "database": "shop", "user": "reader", "password": PASSWORD}
    body = {"name": "orders", "source": own, "streams": [{"name": "orders"}]}
    r = api.post("/api/connections/", body, token=token, org=org)
    assert r.status_code == 422, r.content
    assert r.json()["errors"][0]["field"] == "connections.orders.source.host"
    assert api.get("/api/connections/", token=token, org=org).json() == []


def test_an_operators_network_is_allowed_and_a_host_already_saved_blocks_no_other_change(
    api: Api, world: OrgWorld, monkeypatch: pytest.MonkeyPatch
):
    token, org = world.tokens["account-manager"], world.slug
    monkeypatch.setenv("DALGO_PRIVATE_NETWORKS", "10.20.0.0/16")
    assert api.put(WAREHOUSE, _warehouse("10.0.0.5"), token=token, org=org).status_code == 422
    saved = api.put(WAREHOUSE, _warehouse("10.20.3.4"), token=token, org=org)
    assert saved.status_code == 200, saved.content
    assert saved.json()["host"] == "10.20.3.4"

    # the operator narrows its networks: the saved host is refused where the platform connects, and the
    # organization's other changes still go through
    monkeypatch.delenv("DALGO_PRIVATE_NETWORKS")
    kept = {k: v for k, v in _warehouse("10.20.3.4").items() if k != "password"}  # the stored one
    test = api.post(f"{WAREHOUSE}/test", kept, token=token, org=org)
    assert test.status_code == 200 and test.json()["ok"] is False, test.content
    assert "10.20.3.4: not a public address" in test.json()["message"]
    config = {"host": "db.field-ngo.org", "database": "shop", "user": "reader", "password": PASSWORD}
    source = {"name": "shop", "connector": "database", "config": config}
    r = api.post("/api/sources/", source, token=world.tokens["pipeline-manager"], org=org)
    assert r.status_code == 201, r.content
    # nor do data statistics read it: a 409 saying why, not an error of the server
    from dalgo_api.orgs.flags import set_flag

    set_flag("DATA_STATISTICS", True, world.org)
    preview = api.get("/api/warehouse/tables/analytics/orders/preview", token=token, org=org)
    assert preview.status_code == 409, preview.content
    assert "10.20.3.4: not a public address" in preview.json()["detail"]
    # a name that does not resolve (yet) is saved; reading through it is a 503 naming it
    assert api.put(WAREHOUSE, _warehouse("wh.field-ngo.org"), token=token, org=org).status_code == 200
    preview = api.get("/api/warehouse/tables/analytics/orders/preview", token=token, org=org)
    assert preview.status_code == 503, preview.content
    assert "wh.field-ngo.org: the host name does not resolve" in preview.json()["detail"]


def test_the_spec_names_each_database_host_by_its_field() -> None:
    from dalgo_core.spec import OrgSpec

    spec = OrgSpec.model_validate(
        {
            "slug": "ngo",
            "name": "NGO",
            "warehouse": {
                "type": "postgres",
                "host": "wh.example.org",
                "user": "u",
                "database": "d",
                "password": {"file": "warehouse_password"},
            },
            "sources": [{"name": "shop", "type": "database", "host": "shop.example.org", "database": "s", "user": "r"}],
            "connections": [
                {"name": "a", "source_name": "shop", "streams": [{"name": "orders"}]},
                {
                    "name": "b",
                    "source": {
                        "type": "database",
                        "dialect": "mysql",
                        "host": "crm.example.org",
                        "database": "c",
                        "user": "r",
                    },
                    "streams": [{"name": "people"}],
                },
            ],
        }
    )
    assert isinstance(spec.warehouse, PostgresWarehouse)
    assert spec.tenant_hosts() == {
        "warehouse.host": ("wh.example.org", 5432),
        "sources.shop.host": ("shop.example.org", 5432),
        "connections.b.source.host": ("crm.example.org", 3306),
    }


def test_checking_a_database_on_the_platforms_network_answers_why_without_connecting(dalgo_env, postgres) -> None:
    """``POST /api/sources/check`` of a configuration not saved: its task's check answers that the host is
    refused, as it answers a wrong password, and the worker never starts (the platform's own PostgreSQL
    listens there)."""
    from dalgo_assets.ingestion.dlt import discovery
    from dalgo_core.connectors import builtin
    from dalgo_core.spec import OrgSpec

    spec = OrgSpec(slug="tenant", name="Tenant")
    config = {"host": postgres.host, "port": postgres.port, "database": "postgres", "user": postgres.superuser}
    steps: list[str] = []
    succeeded, message, _ = discovery.check(spec, builtin.configured("database", config), steps.append)
    assert succeeded is False
    assert message.startswith(f"cannot connect: {postgres.host}: not a public address"), message
    assert "DALGO_PRIVATE_NETWORKS" in message
