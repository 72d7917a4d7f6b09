"""The source endpoints in process, with Dagster down and no task worker started (each test's transaction
is rolled back, so a task is saved but its worker never starts): what is refused before any connector
runs, secrets kept out of every answer and of the spec, tasks scoped to their organization. The flows with
real connectors are tests/sources/."""

from __future__ import annotations

import pytest

from dalgo_api.sources.models import ConnectorSpec
from dalgo_api.specs import store as specs
from dalgo_api.tasks.models import Task
from dalgo_core import secret_store
from dalgo_core.spec import ConnectionSpec, StreamSpec
from tests.api.conftest import Api, OrgWorld

FAKER_SPEC = {
    "documentationUrl": "https://docs.airbyte.com/integrations/sources/faker",
    "connectionSpecification": {
        "type": "object",
        "required": ["count"],
        "properties": {
            "count": {"type": "integer", "minimum": 1},
            "seed": {"type": "integer"},
            "token": {"type": "string", "airbyte_secret": True},
        },
    },
}
SECRET = "t0ken-never-returned"


@pytest.fixture(autouse=True)
def _no_cached_spec() -> None:
    """Each API process keeps the specs it read; a test starts with none (its database is rolled back)."""
    from django.core.cache import cache

    cache.clear()


def cache_faker_spec() -> None:
    """The spec of the catalog's source-faker, as a task would have cached it."""
    ConnectorSpec.objects.update_or_create(key="airbyte-source-faker==7.2.1", defaults={"spec": FAKER_SPEC})


def add_named_source(slug: str) -> str:
    """The organization's spec gains a source ``demo`` (source-faker), its spec cached; returns its name."""
    from django.core.cache import cache

    from dalgo_core.spec import NamedSourceSpec

    cache.clear()
    cache_faker_spec()
    spec = specs.load_spec(slug)
    source = NamedSourceSpec(name="demo", connector="source-faker", version="7.2.1", config={"count": 5})
    specs.save_spec(spec.model_copy(update={"sources": [source]}))
    return source.name


def a_task(world: OrgWorld) -> str:
    """The path of a task of the organization."""
    task = Task.objects.create(org=world.org, kind="connector_spec", subject="airbyte-source-faker==7.2.1")
    return f"/api/tasks/{task.pk}"


def add_source(api: Api, world: OrgWorld, name: str = "demo") -> dict:
    cache_faker_spec()
    body = {"name": name, "connector": "source-faker", "config": {"count": 5, "token": SECRET}}
    r = api.post("/api/sources/", body, token=world.tokens["pipeline-manager"], org=world.slug)
    assert r.status_code == 201, r.content
    return r.json()


def test_a_spec_not_read_yet_is_a_task_shared_by_its_callers(api: Api, world: OrgWorld) -> None:
    path = "/api/sources/connectors/source-faker/spec"
    first = api.get(path, token=world.tokens["guest"], org=world.slug)
    assert first.status_code == 202 and first.json()["status"] == "queued", first.content
    again = api.get(path, token=world.tokens["analyst"], org=world.slug)
    assert again.json()["task_id"] == first.json()["task_id"]
    cache_faker_spec()
    found = api.get(path, token=world.tokens["guest"], org=world.slug).json()
    assert found["secret_fields"] == ["token"] and found["version"] == "7.2.1"
    assert (
        api.get("/api/sources/connectors/source-nope/spec", token=world.tokens["guest"], org=world.slug).status_code
        == 404
    )


def test_a_configuration_is_validated_before_anything_runs(api: Api, world: OrgWorld) -> None:
    token = world.tokens["pipeline-manager"]
    body = {"name": "demo", "connector": "source-faker", "config": {"count": 0}}
    assert api.post("/api/sources/", body, token=token, org=world.slug).status_code == 409  # spec not read
    cache_faker_spec()
    r = api.post("/api/sources/", {**body, "config": {"count": "many", "token": 7}}, token=token, org=world.slug)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["config.count", "config.token"]
    assert "many" not in r.content.decode()
    r = api.post("/api/sources/check", {"connector": "source-faker", "config": {}}, token=token, org=world.slug)
    assert r.status_code == 422 and r.json()["errors"] == [{"field": "config.count", "message": "is required"}]
    r = api.post("/api/sources/", {**body, "connector": "source-elsewhere"}, token=token, org=world.slug)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "connector"
    assert not Task.objects.filter(org=world.org).exists()


def test_secret_fields_are_stored_encrypted_and_never_returned(api: Api, world: OrgWorld) -> None:
    created = add_source(api, world)
    assert created["config"] == {"count": 5} and created["secret_fields"] == ["token"]
    spec_text = specs.org_spec_path(world.slug).read_text()
    assert SECRET not in spec_text and "file: source_demo_token" in spec_text
    assert secret_store.read_secret(world.slug, "source_demo_token") == SECRET
    token = world.tokens["pipeline-manager"]
    updated = api.put("/api/sources/demo", {"config": {"count": 9}}, token=token, org=world.slug)
    assert updated.status_code == 200 and updated.json()["config"] == {"count": 9}
    assert secret_store.read_secret(world.slug, "source_demo_token") == SECRET  # left out: kept
    check = api.post("/api/sources/demo/check", token=token, org=world.slug)
    assert check.status_code == 202 and SECRET not in check.content.decode()
    task = Task.objects.get(pk=check.json()["task_id"])
    assert SECRET not in task.params and task.params.startswith("fernet:")  # sealed for its worker
    listed = api.get("/api/sources/", token=world.tokens["guest"], org=world.slug)
    assert SECRET not in listed.content.decode()
    assert api.delete("/api/sources/demo", token=token, org=world.slug).status_code == 204
    with pytest.raises(LookupError):
        secret_store.read_secret(world.slug, "source_demo_token")


def test_a_source_read_by_a_connection_is_not_deleted(api: Api, world: OrgWorld) -> None:
    add_source(api, world)
    spec = specs.load_spec(world.slug)
    named = spec.sources[0]
    conn = ConnectionSpec(name="faker", source=named.source(), source_name="demo", streams=[StreamSpec(name="users")])
    specs.save_spec(spec.model_copy(update={"connections": [conn]}))
    r = api.delete("/api/sources/demo", token=world.tokens["pipeline-manager"], org=world.slug)
    assert r.status_code == 409 and "connection(s) faker" in r.json()["detail"]
    assert api.get("/api/sources/demo", token=world.tokens["guest"], org=world.slug).json()["connections"] == ["faker"]


def test_a_connection_naming_an_unknown_source_or_connector_is_422(api: Api, world: OrgWorld) -> None:
    body = {"name": "faker", "source_name": "nope", "streams": [{"name": "users"}]}
    r = api.post("/api/connections/", body, token=world.tokens["pipeline-manager"], org=world.slug)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source_name", r.content
    both = {**body, "source": {"connector": "source-faker"}}
    token = world.tokens["pipeline-manager"]
    assert api.post("/api/connections/", both, token=token, org=world.slug).status_code == 422
    # a source of its own: a connector of the catalog only (a tenant names no other PyPI package)
    own = {"name": "faker", "source": {"connector": "source-elsewhere"}, "streams": [{"name": "users"}]}
    r = api.post("/api/connections/", own, token=token, org=world.slug)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "source.connector", r.content


def test_a_task_of_another_organization_is_404(api: Api, world: OrgWorld, other_world: OrgWorld) -> None:
    started = api.get("/api/sources/connectors/source-file/spec", token=world.tokens["guest"], org=world.slug)
    path = started.json()["poll"]
    assert api.get(path, token=world.tokens["guest"], org=world.slug).status_code == 200
    assert api.get(path, token=other_world.tokens["account-manager"], org=other_world.slug).status_code == 404
    assert api.get("/api/tasks/not-a-uuid", token=world.tokens["guest"], org=world.slug).status_code == 404


# --- the platform's own sources: a database and files, run by dlt -----------------------------------

SHOP = {"host": "db.field-ngo.org", "database": "shop", "user": "reader", "password": "pg-Passw0rd-never-shown"}


def test_database_and_files_are_in_the_catalog_with_their_form_at_once(api: Api, world: OrgWorld) -> None:
    token = world.tokens["guest"]
    catalog = api.get("/api/sources/connectors", token=token, org=world.slug).json()
    assert [c["connector"] for c in catalog[:2]] == ["database", "files"]
    database = catalog[0]
    assert database["engine"] == "dlt" and database["spec_cached"] is True and database["package"] == "dlt"
    assert {c["engine"] for c in catalog[2:]} == {"airbyte"}
    form = api.get("/api/sources/connectors/database/spec", token=token, org=world.slug)
    assert form.status_code == 200, form.content  # no connector to install: the form is known
    schema = form.json()["connection_specification"]
    assert {"dialect", "host", "port", "database", "user", "password", "schema", "sslmode"} == set(schema["properties"])
    assert schema["required"] == ["host", "database", "user"] and form.json()["secret_fields"] == ["password"]
    assert schema["properties"]["dialect"]["enum"] == ["postgres", "mysql"]
    files = api.get("/api/sources/connectors/files/spec", token=token, org=world.slug).json()
    assert files["secret_fields"] == ["aws_access_key_id", "aws_secret_access_key"]
    assert files["connection_specification"]["properties"]["format"]["enum"] == ["csv", "parquet", "jsonl"]
    assert not Task.objects.filter(org=world.org).exists()


def test_a_database_source_keeps_its_password_apart_and_connections_read_it(api: Api, world: OrgWorld) -> None:
    token = world.tokens["pipeline-manager"]
    body = {"name": "shop", "connector": "database", "config": SHOP}
    # checked against the form, then the platform's own rules: fields named, nothing echoed
    bad = api.post(
        "/api/sources/", {**body, "config": {**SHOP, "host": "db;rm -rf", "port": "x"}}, token=token, org=world.slug
    )
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["config.host", "config.port"]
    assert SHOP["password"] not in bad.content.decode()
    outside = {"name": "exports", "connector": "files", "config": {"url": "../../platform", "format": "csv"}}
    refused = api.post("/api/sources/", outside, token=token, org=world.slug)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "config.url", refused.content
    half = {**outside, "config": {"url": "s3://ngo-exports/2024", "format": "csv", "aws_access_key_id": "AKIA0000"}}
    assert api.post("/api/sources/", half, token=token, org=world.slug).status_code == 422

    created = api.post("/api/sources/", body, token=token, org=world.slug)
    assert created.status_code == 201, created.content
    shown = {k: v for k, v in SHOP.items() if k != "password"}
    assert created.json() == {
        "name": "shop",
        "connector": "database",
        "version": None,
        "config": {"dialect": "postgres", **shown},
        "secret_fields": ["password"],
        "connections": [],
    }
    spec_text = specs.org_spec_path(world.slug).read_text()
    assert SHOP["password"] not in spec_text and "type: database" in spec_text
    assert secret_store.read_secret(world.slug, "source_shop_password") == SHOP["password"]
    moved = api.put("/api/sources/shop", {"config": {**shown, "port": 6543}}, token=token, org=world.slug)
    assert moved.status_code == 200 and moved.json()["config"]["port"] == 6543
    assert secret_store.read_secret(world.slug, "source_shop_password") == SHOP["password"]  # left out: kept

    # its check and discover are tasks, their input sealed; a connection reads it by name
    check = api.post("/api/sources/shop/check", token=token, org=world.slug)
    assert check.status_code == 202 and check.json()["kind"] == "check_source"
    task = Task.objects.get(pk=check.json()["task_id"])
    assert SHOP["password"] not in task.params and task.params.startswith("fernet:")
    assert api.post("/api/sources/shop/discover", token=token, org=world.slug).status_code == 202
    spec = specs.load_spec(world.slug)
    conn = ConnectionSpec(
        name="shop", source=spec.sources[0].source(), source_name="shop", streams=[StreamSpec(name="orders")]
    )
    specs.save_spec(spec.model_copy(update={"connections": [conn]}))
    read = specs.load_spec(world.slug).connections[0]
    assert read.source.type == "database" and read.source.port == 6543 and not read.is_airbyte
    listed = api.get("/api/connections/", token=world.tokens["guest"], org=world.slug)
    assert (
        listed.json()[0]["source"]["secret_fields"] == ["password"] and SHOP["password"] not in listed.content.decode()
    )
    assert api.delete("/api/sources/shop", token=token, org=world.slug).status_code == 409
