"""Embedded ingestion into PostgreSQL vs plain psycopg COPY of the same rows, same server, same run.

Starts its own PostgreSQL (tests.support.postgres), installs source-faker if needed, then loads
200,000 faker ``users`` records twice each way, alternating, and keeps each way's best run:

- **embedded**: Dalgo's whole path for one sync (``ConnectionSync``): connector check + discover + read,
  typing every value, COPY into a staging table, replace the final table, commit.
- **copy** (the baseline): the same connector ``read`` with the same config and catalog, its output
  parsed with orjson and written with psycopg ``COPY ... FROM STDIN`` (``write_row``) into a table of
  the same typed columns; nothing else. So the baseline **includes reading the connector's output**:
  the connector is the ceiling for both.

For context it also prints COPY alone of the same rows from memory (no connector). The last line is
the ratio embedded / copy. Run: ``.venv/bin/python bench/ingest_copy.py`` (no arguments).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.postgres

from dalgo_assets.ingestion.embedded.schema import Column
from dalgo_assets.ingestion.embedded.sync import ConnectionSync, plan_stream
from dalgo_assets.warehouse import WarehouseResource
from dalgo_assets.warehouse.resources import warehouse_resource
from dalgo_core.connectors.install import ensure_connector
from dalgo_core.connectors.protocol import ConnectorProcess
from dalgo_core.spec import OrgSpec, StreamSpec, parse_org_spec
from tests.support.postgres import PostgresServer

ROWS = 200_000
CONFIG = {"count": ROWS, "seed": 42, "parallelism": 2, "always_updated": True, "records_per_slice": 1000}
PG_TYPES = {
    "integer": "bigint",
    "number": "numeric",
    "boolean": "boolean",
    "string": "text",
    "timestamp_tz": "timestamptz",
    "timestamp": "timestamp",
    "date": "date",
    "json": "jsonb",
}


def _quiet(level: str, message: str) -> None:
    if level == "error":
        print(f"connector: {message}", file=sys.stderr)


def embedded(spec: OrgSpec, warehouse: WarehouseResource) -> float:
    sync = ConnectionSync("bench", spec.connections[0], warehouse, log=_quiet)
    start = time.perf_counter()
    (result,) = sync.run(["users"])
    elapsed = time.perf_counter() - start
    assert result.rows_loaded == ROWS, result
    return elapsed


def copy_baseline(executable: Path, dsn: str) -> tuple[float, list[list]]:
    """Connector read piped into plain COPY; returns the time and the rows (for the COPY-only figure)."""
    start = time.perf_counter()
    with ConnectorProcess(executable, CONFIG, _quiet) as proc:
        catalog = proc.discover()  # the catalog is needed to configure the read, as in any Airbyte sync
        table, entry = plan_stream(_users_stream(), catalog["users"], "baseline")
        sources = [c.source for c in table.columns]
        kinds = [c.kind for c in table.columns]
        json_cols = [i for i, k in enumerate(kinds) if k == "json"]
        rows: list[list] = []
        with psycopg.connect(dsn) as conn:
            _create(conn, "baseline.users", table.columns)
            with (
                conn.cursor() as cur,
                cur.copy(f"copy baseline.users ({', '.join(sources)}) from stdin") as copy,
            ):
                for msg in proc.read({"streams": [entry]}, None):
                    if msg["type"] == "RECORD":
                        data = msg["record"]["data"]
                        row = [data.get(s) for s in sources]
                        for i in json_cols:
                            if row[i] is not None:
                                row[i] = orjson.dumps(row[i]).decode()
                        copy.write_row(row)
                        rows.append(row)
            conn.commit()
    elapsed = time.perf_counter() - start
    assert len(rows) == ROWS
    return elapsed, rows


def copy_only(dsn: str, rows: list[list], columns: tuple[Column, ...]) -> float:
    start = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        _create(conn, "baseline.users_copy_only", columns)
        names = ", ".join(c.source for c in columns)
        with conn.cursor() as cur, cur.copy(f"copy baseline.users_copy_only ({names}) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
    return time.perf_counter() - start


def _create(conn: psycopg.Connection, name: str, columns: tuple[Column, ...]) -> None:
    conn.execute("create schema if not exists baseline")
    conn.execute(f"drop table if exists {name}")
    conn.execute(f"create table {name} ({', '.join(f'{c.source} {PG_TYPES[c.kind]}' for c in columns)})")


def _users_stream() -> StreamSpec:
    return StreamSpec(name="users", sync_mode="full_refresh")


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="dalgo-bench-"))  # connectors install here unless DALGO_CONNECTORS_DIR
    os.environ.setdefault("DALGO_HOME", str(home))
    # its PostgreSQL on 127.0.0.1 stands for the organization's, in a network the operator allows
    os.environ.setdefault("DALGO_PRIVATE_NETWORKS", "127.0.0.1/32")
    try:
        run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(home: Path) -> None:
    with PostgresServer() as server:
        dsn = server.create_database("bench", owner="bench", password="bench")
        os.environ["BENCH_PG_PASSWORD"] = "bench"
        spec = parse_org_spec(
            {
                "slug": "bench",
                "name": "Bench",
                "warehouse": {
                    "type": "postgres",
                    "host": server.host,
                    "port": server.port,
                    "user": "bench",
                    "password": {"env": "BENCH_PG_PASSWORD"},
                    "database": "bench",
                },
                "connections": [
                    {
                        "name": "faker",
                        "source": {"connector": "source-faker", "config": CONFIG},
                        "destination_schema": "raw_faker",
                        "streams": [{"name": "users", "sync_mode": "full_refresh"}],
                    }
                ],
            },
            org="bench",
            path=home / "org.yaml",
        )
        warehouse = warehouse_resource(spec)
        executable = ensure_connector("source-faker")
        embedded_times, copy_times, rows = [], [], []
        for round_ in (1, 2):
            embedded_times.append(embedded(spec, warehouse))
            elapsed, rows = copy_baseline(executable, dsn)
            copy_times.append(elapsed)
            print(
                f"round {round_}: embedded {embedded_times[-1]:.1f}s, connector read + COPY {elapsed:.1f}s",
                flush=True,
            )
        table, _ = plan_stream(_users_stream(), {"json_schema": _schema_of(executable)}, "baseline")
        only = copy_only(dsn, rows, table.columns)
        with psycopg.connect(dsn) as conn:
            (loaded,) = conn.execute("select count(*) from raw_faker.users").fetchone()
        assert loaded == ROWS
    best_embedded, best_copy = ROWS / min(embedded_times), ROWS / min(copy_times)
    print(f"COPY alone of the same rows from memory (no connector): {ROWS / only:,.0f} rows/s")
    print(
        f"ingest ratio {best_embedded / best_copy:.2f}: embedded {best_embedded:,.0f} rows/s, "
        f"copy {best_copy:,.0f} rows/s ({ROWS:,} rows; copy = connector read + psycopg COPY, best of 2)"
    )


def _schema_of(executable: Path) -> dict:
    with ConnectorProcess(executable, CONFIG, _quiet) as proc:
        return proc.discover()["users"]["json_schema"]


if __name__ == "__main__":
    main()
