"""The production instance yaml and its connection settings (a PostgreSQL server only for the restart)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres.utils import pg_url_from_config

from dalgo_ops.instance import POSTGRES_INSTANCE, DeployError, pg_env_from_url, write_postgres_instance
from tests.support.postgres import AWKWARD_PASSWORD, PostgresServer


def use_postgres(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """The ``DAGSTER_PG_*`` variables the instance yaml reads, as ``dalgo serve`` sets them."""
    for name, value in pg_env_from_url(url).items():
        monkeypatch.setenv(name, value)


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
    [
        ("mysql://u:p@h/d", "expected postgresql://"),
        ("postgresql://h:5432/d", "needs a user"),
        ("postgresql://u:p@h:5432/", "needs a user, a host and a database"),
    ],
)
def test_bad_url_names_the_setting(url: str, problem: str) -> None:
    with pytest.raises(DeployError, match="--postgres-url") as err:
        pg_env_from_url(url)
    assert problem in str(err.value)


def test_dagsters_storage_connects_with_a_password_with_special_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer
) -> None:
    """``--postgres-url`` with a percent-encoded password: the instance yaml's settings, as Dagster turns
    them into its storage's connection, log in on a server that checks the password."""
    url = postgres.create_database("dagster_pw", owner="dagster_pw", password=AWKWARD_PASSWORD)
    postgres.require_password("dagster_pw")
    use_postgres(monkeypatch, url)
    shutil.copy(POSTGRES_INSTANCE, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    db = config["storage"]["postgres"]["postgres_db"]
    resolved = {k: os.environ[v["env"]] if isinstance(v, dict) and "env" in v else v for k, v in db.items()}
    engine = sqlalchemy.create_engine(pg_url_from_config({"postgres_db": resolved}))
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select current_user")).scalar() == "dagster_pw"
    finally:
        engine.dispose()


def test_instance_yaml_is_valid_dagster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_postgres(monkeypatch, "postgresql://dagster:secret@127.0.0.1:5432/dagster")
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


def test_serve_adds_the_one_host_run_launcher_and_compose_keeps_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_postgres(monkeypatch, "postgresql://dagster:secret@127.0.0.1:5432/dagster")
    config, _ = dagster_instance_config(str(write_postgres_instance(tmp_path / "serve").parent))
    assert config["run_launcher"]["module"] == "dalgo_assets.instance.run_launcher"
    assert config["run_launcher"]["class"] == "OneHostRunLauncher"
    # docker compose mounts the yaml itself: its run workers live in the code-server containers
    assert "run_launcher" not in yaml.safe_load(POSTGRES_INSTANCE.read_text())


def test_webserver_pool_survives_a_postgres_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The webserver keeps pooled connections (``optimize_for_webserver``); after a PostgreSQL restart
    they are pinged and replaced, so no read fails (the API answered 503 once per pool before)."""
    with PostgresServer() as server:  # its own: restarting the session one would disturb other tests
        dsn = server.create_database("dagster_restart", owner="dagster", password="dagster-secret")
        use_postgres(monkeypatch, dsn)
        home = write_postgres_instance(tmp_path / "dagster").parent
        with DagsterInstance.from_config(str(home)) as instance:
            instance.optimize_for_webserver(statement_timeout=15000, pool_recycle=3600, max_overflow=20)
            reads = (instance.get_runs, instance.event_log_storage.get_asset_records, instance.all_instigator_state)
            for read in reads:
                read()  # every pool holds a connection now
            server.restart()
            for read in reads:
                read()
