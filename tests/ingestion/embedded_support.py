"""Helpers for the embedded-ingestion tests: org specs with a source-faker connection, and syncs.

Connector venvs go to one folder per test session (per xdist worker), so source-faker is installed
once and reused by every test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dalgo_assets.ingestion.embedded import build_embedded_ingestion
from dalgo_assets.warehouse import warehouse_resources
from dalgo_core.spec import OrgSpec, load_org_spec
from tests.support.orgs import write_spec
from tests.support.postgres import PostgresServer


@pytest.fixture
def embedded_env(dalgo_env: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``dalgo_env`` plus a connectors folder shared by the whole test session."""
    monkeypatch.setenv("DALGO_CONNECTORS_DIR", str(tmp_path_factory.getbasetemp() / "airbyte-connectors"))
    return dalgo_env


def faker_connection(
    *,
    count: int = 20,
    always_updated: bool = False,
    streams: list[dict[str, Any]] | None = None,
    name: str = "faker",
    connector: str = "source-faker",
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "source": {
            "connector": connector,
            "config": config
            if config is not None
            else {"count": count, "seed": 7, "parallelism": 1, "always_updated": always_updated},
        },
        "destination_schema": "raw_faker",
        "streams": streams
        or [
            {"name": "users", "sync_mode": "incremental"},
            {"name": "products", "sync_mode": "full_refresh"},
        ],
    }


def postgres_warehouse(postgres: PostgresServer, slug: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh database on the test server, its password in an environment variable."""
    env = f"{slug.upper()}_PG_PASSWORD"
    monkeypatch.setenv(env, "s3cret")
    postgres.create_database(slug, owner=slug, password="s3cret")
    return {
        "type": "postgres",
        "host": postgres.host,
        "port": postgres.port,
        "user": slug,
        "password": {"env": env},
        "database": slug,
    }


def faker_users_on_postgres(
    orgs_dir: Path, postgres: PostgresServer, slug: str, count: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[OrgSpec, Callable[[str], list[tuple]], str]:
    """An organization on its own PostgreSQL database with a faker connection of one incremental
    stream, ``users``; returns its spec, a query function on the database and the database's DSN."""
    warehouse = postgres_warehouse(postgres, slug, monkeypatch)
    connection = faker_connection(count=count, streams=[{"name": "users", "sync_mode": "incremental"}])
    spec = write_org(orgs_dir, slug, connection, warehouse)
    dsn = postgres.dsn(slug, slug, "s3cret")

    def query(sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(dsn) as db:
            return db.execute(sql).fetchall()

    return spec, query, dsn


def write_org(
    orgs_dir: Path, slug: str, connection: dict[str, Any], warehouse: dict[str, Any] | None = None
) -> OrgSpec:
    spec: dict[str, Any] = {"slug": slug, "name": slug.title(), "connections": [connection]}
    if warehouse:
        spec["warehouse"] = warehouse
    write_spec(orgs_dir, slug, spec)
    return load_org_spec(slug)


def sync(
    spec: OrgSpec, streams: list[str] | None = None, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """Materialize the org's ingestion assets (all streams, or the given ones) in process."""
    ingestion = build_embedded_ingestion(spec)
    selection = None
    if streams is not None:
        selection = [dg.AssetKey([spec.slug, c.name, s]) for c in spec.connections for s in streams]
    return dg.materialize(
        ingestion.assets,
        resources={**warehouse_resources(spec), **ingestion.resources},
        selection=selection,
        raise_on_error=False,
        instance=instance,
    )


def run_log(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The messages the run logged (``context.log``), in order."""
    return [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]


def loaded(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Materialization metadata by stream name."""
    return {
        e.asset_key.path[-1]: {k: v.value for k, v in e.step_materialization_data.materialization.metadata.items()}
        for e in result.all_events
        if e.is_step_materialization and e.asset_key is not None
    }


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success, "the sync should have failed"
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "no step failure event"
    return str(failures[0].step_failure_data.error.message)
