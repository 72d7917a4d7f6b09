"""Every tenant string that could become a path, through the real API, as a pipeline or account manager
of its own organization: refused with a 422 naming the field, and nothing outside the organization's
root created, changed or deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from dalgo_core import layout, secret_store
from tests.api.conftest import Api, OrgWorld
from tests.security.conftest import snapshot

CONNECTIONS = "/api/connections/"
WAREHOUSE = "/api/organizations/warehouse"

TRAVERSALS = ["..", "../..", "../other_org", "/etc", "%2e%2e%2f", "..%2f..", "\u2024\u2024", "a/../../b", "x\x00y"]


def _connection(**source: object) -> dict:
    return {
        "name": "people",
        "source": {"connector": "source-faker", "config": {"count": 5}, "secrets": {}, **source},
        "streams": [{"name": "users"}],
    }


@pytest.fixture
def victim(other_world: OrgWorld) -> Path:
    """Another organization with a stored secret and files in its root."""
    secret_store.write_secret(other_world.slug, "warehouse_password", "victim-password")
    root = layout.org_root(other_world.slug)
    root.mkdir(parents=True, exist_ok=True)
    (root / "warehouse.duckdb").write_bytes(b"victim rows")
    return root


def _assert_refused(response, field: str) -> None:
    assert response.status_code in (400, 422), response.content
    assert field in response.content.decode(), response.content


@pytest.mark.parametrize("version", [*TRAVERSALS, "1.0/../../x", "latest; rm -rf /"])
def test_connector_version_cannot_name_a_path(api: Api, world: OrgWorld, victim: Path, dagster_down, version):
    home = layout.platform_dir().parent
    before = snapshot(home)
    r = api.post(CONNECTIONS, _connection(version=version), token=world.tokens["pipeline-manager"], org=world.slug)
    _assert_refused(r, "version")
    assert snapshot(home) == before


@pytest.mark.parametrize("key", ["../evil", "../../x", "/abs", "a/b", "..", "a..b/c", "x\u2215y"])
def test_connection_secret_keys_cannot_name_a_path(api: Api, world: OrgWorld, victim: Path, dagster_down, key):
    home = layout.platform_dir().parent
    before = snapshot(home)
    body = _connection(secrets={key: "value"})
    r = api.post(CONNECTIONS, body, token=world.tokens["pipeline-manager"], org=world.slug)
    _assert_refused(r, "secrets")
    assert snapshot(home) == before


@pytest.mark.parametrize("stream", ["*9", "C\u00d7", "../x", "a/b", "", " "])
def test_stream_names_that_cannot_be_assets_are_refused(api: Api, world: OrgWorld, dagster_down, stream):
    body = {**_connection(), "streams": [{"name": stream}]}
    r = api.post(CONNECTIONS, body, token=world.tokens["pipeline-manager"], org=world.slug)
    _assert_refused(r, "name")


@pytest.mark.parametrize("path", ["../other_org/warehouse.duckdb", "/etc/passwd", "/tmp/x.duckdb", "w.duckdb"])
def test_the_duckdb_file_is_the_platforms_choice(api: Api, world: OrgWorld, victim: Path, path):
    token, org = world.tokens["account-manager"], world.slug
    home = layout.platform_dir().parent
    before = snapshot(home)
    for method in ("put", "post"):
        where = WAREHOUSE if method == "put" else f"{WAREHOUSE}/test"
        r = getattr(api, method)(where, {"type": "duckdb", "path": path}, token=token, org=org)
        _assert_refused(r, "path")
    assert snapshot(home) == before


def test_the_warehouse_test_creates_nothing_and_names_no_host_file(api: Api, world: OrgWorld):
    home = layout.platform_dir().parent
    before = snapshot(home)
    r = api.post(f"{WAREHOUSE}/test", {"type": "duckdb"}, token=world.tokens["account-manager"], org=world.slug)
    assert r.status_code == 200 and r.json()["ok"] is True
    assert str(home) not in r.content.decode()
    assert snapshot(home) == before


@pytest.mark.parametrize("name", ["Secrets", "platform", "Dagster", "orgs", "Connectors", "run"])
def test_an_organization_name_never_gives_a_platform_folder(api: Api, world: OrgWorld, name):
    r = api.post("/api/organizations/", {"name": name}, token=world.tokens["super-admin"])
    assert r.status_code == 201, r.content
    slug = r.json()["slug"]
    assert slug not in layout.RESERVED_SLUGS
    assert layout.org_root(slug).parent == layout.orgs_root()


def test_deleting_an_organization_leaves_the_others_secrets(api: Api, world: OrgWorld, victim: Path):
    from dalgo_api.orgs import services

    doomed = services.create_org("Secrets")
    secret_store.write_secret(doomed.slug, "token", "doomed")
    services.delete_org(doomed)
    assert secret_store.secret_path(api_slug := victim.name, "warehouse_password").exists(), api_slug
    assert (victim / "warehouse.duckdb").read_bytes() == b"victim rows"


def test_a_deleted_organizations_slug_is_never_given_again(api: Api, world: OrgWorld):
    from dalgo_api.orgs import services

    first = services.create_org("Reused Name")
    slug = first.slug
    services.delete_org(first)
    second = services.create_org("Reused Name")
    assert second.slug != slug
    with pytest.raises(Exception, match="used by a deleted organization"):
        services.create_org("Another", slug=slug)
