"""One run of three connections, first syncs included, as Dagster runs it: ``dagster job execute`` of the
organization's all-assets job, with the location's own (multiprocess) executor. Into one DuckDB file
(a single writer at a time: the syncs take turns) and into one PostgreSQL schema (in parallel: the
schema and the state table are created once, under a lock)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from dalgo_core import layout
from dalgo_core.names import org_job_name
from tests.ingestion.embedded_support import embedded_env, faker_connection, postgres_warehouse  # noqa: F401
from tests.support.orgs import write_spec
from tests.support.postgres import PostgresServer

BIN = Path(sys.executable).parent
STREAMS = ("users", "products", "purchases")


def _connections(schema: str | None) -> list[dict[str, Any]]:
    """Three connections, one stream each; into one schema, or each into its own."""
    connections = []
    for i, stream in enumerate(STREAMS):
        connection = faker_connection(name=f"faker_{stream}", count=30, streams=[{"name": stream}])
        connection["destination_schema"] = schema or f"raw_{i}"
        connections.append(connection)
    return connections


def _run_everything(slug: str, dalgo_home: Path) -> subprocess.CompletedProcess:
    dagster_home = dalgo_home / "dagster_cli"
    dagster_home.mkdir(exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    argv = [str(BIN / "dagster"), "job", "execute", "-m", "dalgo_assets.locations", "-a", slug]
    return subprocess.run(
        [*argv, "-j", org_job_name(slug)], env=env, capture_output=True, text=True, timeout=900, cwd=dalgo_home
    )


def test_three_connections_into_one_duckdb_file(embedded_env: Path) -> None:  # noqa: F811
    write_spec(embedded_env / "orgs", "ducks", {"slug": "ducks", "name": "Ducks", "connections": _connections(None)})
    done = _run_everything("ducks", embedded_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert "Conflicting lock" not in done.stderr
    with duckdb.connect(str(layout.org_root("ducks") / "warehouse.duckdb"), read_only=True) as conn:
        counts = [conn.execute(f"select count(*) from raw_{i}.{s}").fetchone()[0] for i, s in enumerate(STREAMS)]
    assert all(n > 0 for n in counts), counts


def test_three_first_syncs_into_one_postgres_schema(
    embedded_env: Path,  # noqa: F811
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse = postgres_warehouse(postgres, "pgfirst", monkeypatch)
    spec = {"slug": "pgfirst", "name": "Pg", "warehouse": warehouse, "connections": _connections("raw")}
    write_spec(embedded_env / "orgs", "pgfirst", spec)
    done = _run_everything("pgfirst", embedded_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    with psycopg.connect(postgres.dsn("pgfirst")) as conn:
        counts = [conn.execute(f"select count(*) from raw.{s}").fetchone()[0] for s in STREAMS]
    assert all(n > 0 for n in counts), counts
