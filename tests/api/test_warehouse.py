"""The warehouse: set, view, test and delete, against a real PostgreSQL server; its password lands
encrypted in the secrets folder, the spec only references it, and no response or log line contains it."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
import yaml

from dalgo_core import layout
from dalgo_core.spec import load_org_spec
from tests.api.conftest import OrgWorld

PASSWORD = "Wh-s3cret-9f1c2e"
WAREHOUSE = "/api/organizations/warehouse"


@pytest.fixture(scope="module")
def warehouse_dsn(postgres) -> dict:
    postgres.create_database("ngo_wh", owner="ngo_owner", password=PASSWORD)
    return {"host": postgres.host, "port": postgres.port, "user": "ngo_owner", "database": "ngo_wh"}


@pytest.fixture
def secrets_seen(caplog: pytest.LogCaptureFixture):
    """Collects every response body; at the end, no body and no log record may hold the password."""
    caplog.set_level(logging.DEBUG)
    bodies: list[bytes] = []
    yield bodies
    assert bodies, "no responses were checked"
    for body in bodies:
        assert PASSWORD.encode() not in body
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in str(record.args or "")


def _postgres(dsn: dict, **extra) -> dict:
    return {"type": "postgres", **dsn, **extra}


def test_postgres_warehouse_secret_stays_secret(api, world: OrgWorld, warehouse_dsn, secrets_seen):
    token, org = world.tokens["account-manager"], world.slug

    def call(method, path, body=None):
        r = api.call(method, path, body, token=token, org=org)
        secrets_seen.append(r.content)
        return r

    # a failing connection: the test says why (the test server trusts passwords, so a wrong user
    # and database stand for wrong credentials), without echoing the password
    wrong = {**warehouse_dsn, "user": "nobody", "database": "nothing"}
    bad = call("POST", f"{WAREHOUSE}/test", _postgres(wrong, password=PASSWORD))
    assert bad.status_code == 200 and bad.json()["ok"] is False
    assert 'role "nobody" does not exist' in bad.json()["message"]

    ok = call("POST", f"{WAREHOUSE}/test", _postgres(warehouse_dsn, password=PASSWORD))
    assert ok.json() == {"ok": True, "message": ok.json()["message"]} and ok.json()["ok"] is True

    saved = call("PUT", WAREHOUSE, _postgres(warehouse_dsn, password=PASSWORD, schema="staging"))
    assert saved.status_code == 200
    assert saved.json()["secret_set"] is True and saved.json()["schema"] == "staging"

    # the spec references the secret file; the file is 0600 and encrypted; resolving gives it back
    spec = load_org_spec(org)
    assert spec.warehouse.password.file == "warehouse_password"
    assert PASSWORD not in spec.spec_path.read_text()
    assert yaml.safe_load(spec.spec_path.read_text())["warehouse"]["password"] == {"file": "warehouse_password"}
    secret_file = layout.secrets_dir() / org / "warehouse_password"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert PASSWORD not in secret_file.read_text()
    assert spec.warehouse.password.resolve(org) == PASSWORD

    shown = call("GET", WAREHOUSE)
    assert shown.json()["type"] == "postgres" and "password" not in shown.json()

    # re-test and edit without re-sending the password: the stored one is used
    assert call("POST", f"{WAREHOUSE}/test", _postgres(warehouse_dsn)).json()["ok"] is True
    edited = call("PUT", WAREHOUSE, _postgres(warehouse_dsn, schema="marts"))
    assert edited.json()["schema"] == "marts"
    assert load_org_spec(org).warehouse.password.resolve(org) == PASSWORD

    # bad input carrying the password: the error names the field, never the value
    invalid = call("PUT", WAREHOUSE, _postgres(warehouse_dsn, password=PASSWORD, port="not-a-port"))
    assert invalid.status_code == 422 and "body.payload.postgres.port" in invalid.json()["detail"]

    # no read endpoint shows it either
    for path in (
        "/api/currentuser",
        "/api/organizations/",
        f"/api/organizations/{org}",
        "/api/organizations/flags",
        "/api/users/",
        f"/api/users/{world.target.pk}",
        "/api/invitations/",
        "/api/openapi.json",
    ):
        assert call("GET", path).status_code == 200, path

    # deleting forgets the secret and falls back to the default DuckDB warehouse
    gone = call("DELETE", WAREHOUSE)
    assert gone.json() == {"type": "duckdb", "schema": "main", "secret_set": False}
    assert not secret_file.exists()
    assert load_org_spec(org).warehouse.type == "duckdb"


def test_new_postgres_warehouse_needs_a_password(api, world: OrgWorld, warehouse_dsn):
    r = api.put(WAREHOUSE, _postgres(warehouse_dsn), token=world.tokens["account-manager"], org=world.slug)
    assert r.status_code == 400
    assert r.json()["detail"] == "password: required for a new PostgreSQL warehouse"


def test_duckdb_warehouse_connection_test_opens_the_file(api, world: OrgWorld, dalgo_env: Path):
    import duckdb

    token, org = world.tokens["account-manager"], world.slug
    first = api.post(f"{WAREHOUSE}/test", {"type": "duckdb"}, token=token, org=org).json()
    assert first["ok"] is True and "will be created" in first["message"]
    path = layout.org_root(org) / "warehouse.duckdb"
    assert not path.exists()  # testing creates nothing
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(path)).close()
    second = api.post(f"{WAREHOUSE}/test", {"type": "duckdb"}, token=token, org=org).json()
    assert second == {"ok": True, "message": "opened the organization's DuckDB warehouse"}


def test_secret_files_encrypted_or_hand_written_both_resolve(db, monkeypatch):
    from cryptography.fernet import Fernet

    from dalgo_core import secret_store
    from dalgo_core.spec import SecretRef

    path = secret_store.write_secret("acme", "token", "s3cr3t-value")
    assert "s3cr3t-value" not in path.read_text()
    assert SecretRef(file="token").resolve("acme") == "s3cr3t-value"
    (path.parent / "plain").write_text("hand-written\n")
    assert SecretRef(file="plain").resolve("acme") == "hand-written"
    monkeypatch.setenv(secret_store.KEY_ENV, Fernet.generate_key().decode())  # another key
    with pytest.raises(LookupError, match="cannot be decrypted"):
        SecretRef(file="token").resolve("acme")


def test_accounts_and_orgs_do_not_load_dagster():
    """Users, organizations and warehouses read and write specs through dalgo_core.spec only: serving
    them does not load Dagster."""
    import subprocess
    import sys

    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'dalgo_api.settings'; django.setup();"
        "import dalgo_api.accounts.api, dalgo_api.orgs.api, dalgo_api.orgs.warehouse;"
        "sys.exit(any(m.split('.')[0].startswith('dagster') for m in sys.modules))"
    )
    env = {
        **__import__("os").environ,
        "DALGO_API_DATABASE_URL": "sqlite:///:memory:",
        "DALGO_API_SECRET_KEY": "tests-only-" + "k" * 40,
    }
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_bigquery_warehouse_key_is_stored_as_a_secret(api, world: OrgWorld):
    key = '{"type": "service_account", "private_key": "-----BEGIN KEY-----Zm9v"}'
    body = {"type": "bigquery", "project": "ngo-project", "dataset": "analytics", "keyfile_json": key}
    r = api.put(WAREHOUSE, body, token=world.tokens["account-manager"], org=world.slug)
    assert r.status_code == 200, r.content
    assert r.json() == {
        "type": "bigquery",
        "secret_set": True,
        "project": "ngo-project",
        "dataset": "analytics",
        "location": "US",
    }
    spec = load_org_spec(world.slug)
    assert spec.warehouse.keyfile_json.file == "warehouse_keyfile_json"
    assert spec.warehouse.keyfile_json.resolve(world.slug) == key
    assert "BEGIN KEY" not in spec.spec_path.read_text()
    assert not (layout.secrets_dir() / world.slug / "warehouse_password").exists()


def test_a_warehouse_change_rewrites_the_dbt_profile_at_once(api, world: OrgWorld, warehouse_dsn, tmp_path: Path):
    """dbt must write where data statistics read: the profile follows the warehouse when the API answers
    (Dagster, down here, loads the new spec when it starts)."""
    from dalgo_core.spec import DbtProjectSpec, write_org_spec
    from dalgo_core.warehouse.profiles import profiles_dir
    from tests.support.orgs import write_dbt_project

    project = write_dbt_project(tmp_path, "tiny", {"models/one.sql": "select 1 as x\n"})
    spec = load_org_spec(world.slug)
    spec.dbt_projects = [DbtProjectSpec(name="tiny", path=str(project))]
    write_org_spec(spec)
    token = world.tokens["account-manager"]
    r = api.put(WAREHOUSE, _postgres(warehouse_dsn, password=PASSWORD), token=token, org=world.slug)
    assert r.status_code == 200, r.content
    profile = yaml.safe_load((profiles_dir(load_org_spec(world.slug)) / "profiles.yml").read_text())
    (output,) = profile["dalgo"]["outputs"].values()
    assert output["type"] == "postgres" and output["dbname"] == "ngo_wh"
    assert PASSWORD not in (profiles_dir(load_org_spec(world.slug)) / "profiles.yml").read_text()
    r = api.delete(WAREHOUSE, token=token, org=world.slug)
    assert r.status_code == 200, r.content
    profile = yaml.safe_load((profiles_dir(load_org_spec(world.slug)) / "profiles.yml").read_text())
    assert [o["type"] for o in profile["dalgo"]["outputs"].values()] == ["duckdb"]
