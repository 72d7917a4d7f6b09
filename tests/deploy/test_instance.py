"""The production instance yaml and its connection settings, without starting any server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster._core.instance.config import dagster_instance_config

from dalgo_assets.deploy.instance import POSTGRES_INSTANCE, DeployError, pg_env_from_url


def test_url_becomes_the_instance_variables() -> None:
    assert pg_env_from_url("postgresql://dagster:p%40ss@db.internal:6543/dagster_prod") == {
        "DAGSTER_PG_HOST": "db.internal",
        "DAGSTER_PG_PORT": "6543",
        "DAGSTER_PG_USER": "dagster",
        "DAGSTER_PG_PASSWORD": "p@ss",
        "DAGSTER_PG_DB": "dagster_prod",
    }
    assert pg_env_from_url("postgres://u@h/d")["DAGSTER_PG_PORT"] == "5432"


@pytest.mark.parametrize(
    ("url", "problem"),
    [("mysql://u:p@h/d", "expected postgresql://"), ("postgresql://h:5432/d", "needs a user"),
     ("postgresql://u:p@h:5432/", "needs a user, a host and a database")],
)
def test_bad_url_names_the_setting(url: str, problem: str) -> None:
    with pytest.raises(DeployError, match="--postgres-url") as err:
        pg_env_from_url(url)
    assert problem in str(err.value)


def test_instance_yaml_is_valid_dagster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in pg_env_from_url("postgresql://dagster:secret@127.0.0.1:5432/dagster").items():
        monkeypatch.setenv(name, value)
    shutil.copy(POSTGRES_INSTANCE, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3 otherwise
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # no secret in the file
    runs = config["concurrency"]["runs"]
    assert runs["tag_concurrency_limits"] == [
        {"key": "dagster/code_location", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
    ]
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert config["run_coordinator"]["config"]["dequeue_interval_seconds"] == 1
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_retries"] == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}
