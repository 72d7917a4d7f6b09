"""Each warehouse gets its dbt profile and Dagster resources from the spec, secrets by reference only."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_gcp import BigQueryResource

from dalgo_assets.warehouse import warehouse_resources
from dalgo_core.spec import parse_org_spec
from dalgo_core.warehouse.profiles import dbt_profile, render_profiles


def _spec(tmp_path: Path, warehouse: dict):
    return parse_org_spec(
        {"slug": "acme", "name": "Acme", "warehouse": warehouse}, org="acme", path=tmp_path / "acme" / "org.yaml"
    )


def test_duckdb_is_the_default_with_one_file_per_org(dalgo_env: Path) -> None:
    spec = parse_org_spec({"slug": "acme", "name": "Acme"}, org="acme", path=dalgo_env / "orgs/acme/org.yaml")
    output = dbt_profile(spec)["dalgo"]["outputs"]["duckdb"]
    assert output["type"] == "duckdb"
    assert output["path"] == str(dalgo_env / "home" / "orgs" / "acme" / "warehouse.duckdb")
    assert warehouse_resources(spec)["warehouse"].duckdb_path == output["path"]


def test_postgres_profile_reads_the_password_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    spec = _spec(
        tmp_path,
        {
            "type": "postgres",
            "host": "localhost",  # resolves: dbt_environment checks it (dalgo_core.egress)
            "port": 6543,
            "user": "acme",
            "database": "wh",
            "password": {"env": "ACME_PG_PASSWORD"},
            "schema": "analytics",
        },
    )
    monkeypatch.setenv("ACME_PG_PASSWORD", "s3cret-value")
    text = render_profiles(spec)
    assert "s3cret-value" not in text
    output = yaml.safe_load(text)["dalgo"]["outputs"]["postgres"]
    assert output["password"] == "{{ env_var('DALGO_SECRET_ACME_PASSWORD', '') }}"
    where = (output["host"], output["port"], output["dbname"], output["schema"])
    assert where == ("localhost", 6543, "wh", "analytics")
    resource = warehouse_resources(spec)["warehouse"]
    assert resource.password_ref == "env:ACME_PG_PASSWORD"
    assert "s3cret-value" not in json.dumps(resource._convert_to_config_dictionary(), default=str)
    # at run time dbt gets the secret under the profile's variable, and only inside the block
    import os

    with resource.dbt_environment():
        assert os.environ["DALGO_SECRET_ACME_PASSWORD"] == "s3cret-value"
    assert "DALGO_SECRET_ACME_PASSWORD" not in os.environ


def test_file_secret_is_read_from_the_org_secrets_folder(dalgo_env: Path) -> None:
    spec = _spec(
        dalgo_env,
        {"type": "postgres", "host": "db", "user": "acme", "database": "wh", "password": {"file": "pg_password"}},
    )
    resource = warehouse_resources(spec)["warehouse"]
    with pytest.raises(LookupError, match=r"acme.*pg_password"):
        resource.postgres_dsn()
    secret = dalgo_env / "home" / "platform" / "secrets" / "acme" / "pg_password"
    secret.parent.mkdir(parents=True)
    secret.write_text("from-file\n")
    assert resource.postgres_dsn()["password"] == "from-file"


def test_bigquery_profile_and_dagster_gcp_resource(tmp_path: Path, monkeypatch) -> None:
    spec = _spec(
        tmp_path,
        {
            "type": "bigquery",
            "project": "ngo-gcp",
            "dataset": "analytics",
            "location": "asia-south1",
            "keyfile_json": {"env": "ACME_BQ_KEY"},
        },
    )
    output = dbt_profile(spec)["dalgo"]["outputs"]["bigquery"]
    assert output == {
        "type": "bigquery",
        "project": "ngo-gcp",
        "dataset": "analytics",
        "location": "asia-south1",
        "method": "oauth",
        "threads": 4,
    }
    resources = warehouse_resources(spec)
    bigquery = resources["bigquery"]
    assert isinstance(bigquery, BigQueryResource)
    assert bigquery.project == "ngo-gcp" and bigquery.location == "asia-south1"
    assert isinstance(bigquery.gcp_credentials, dg.EnvVar) and bigquery.gcp_credentials.env_var_name == "ACME_BQ_KEY"
    # dbt finds the key through application default credentials, written only for the run
    key = {"type": "service_account", "project_id": "ngo-gcp"}
    monkeypatch.setenv("ACME_BQ_KEY", base64.b64encode(json.dumps(key).encode()).decode())
    import os

    with resources["warehouse"].dbt_environment():
        assert json.loads(Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()) == key
