"""Database and file sources (dlt, in the sandbox) against the limit of the same rows, same run.

Starts its own PostgreSQL (tests.support.postgres) with a table of 2,000,000 orders (nine columns: bigint,
text, numeric, integer, boolean, varchar, timestamptz, timestamp, text with NULLs) and a CSV of the same
rows, then measures, best of three rounds each (every way in each round):

- **pg -> duckdb**: Dalgo's whole sync (``DltRun.sync``: job, sandbox, worker, the source's catalog for
  the connection's schema change policy, connectorx reading the table with PostgreSQL's binary COPY into
  Arrow, DuckDB inserting the batches) of the table into a DuckDB warehouse, against psycopg ``COPY ...
  TO STDOUT`` of the rows as CSV plus DuckDB's own load of that CSV (``create table as select * from
  read_csv``);
- **pg -> pg**: the same sync into a PostgreSQL warehouse (binary ``COPY`` out of the source piped into
  binary ``COPY`` into the table, after ``TRUNCATE`` in the same transaction), against psycopg ``COPY``
  out of the source piped into ``COPY`` into the warehouse;
- **csv -> duckdb**: a file source of the CSV into the DuckDB warehouse (DuckDB's own reader creates the
  table), against DuckDB's own scan of it;
- **csv vs embedded**: the same file source against embedded Airbyte ``source-file`` on a 100,000-row
  head of the CSV (rows/s compared; source-file is installed from PyPI on first use).

Every sync is a full refresh with the sandbox on, in one transaction per table (readers never see it
empty, a failed load keeps the old rows), and includes starting the worker; the worker's own line says
how long its read and load took. The last line is the ratios. Run: ``.venv/bin/python bench/ingest_db.py``
(no arguments).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.postgres

from dalgo_assets.ingestion.dlt.run import DltRun
from dalgo_assets.ingestion.embedded.sync import ConnectionSync
from dalgo_assets.warehouse.resources import warehouse_resource
from dalgo_core.file_sources import files_root
from dalgo_core.spec import OrgSpec, parse_org_spec
from tests.support.postgres import PostgresServer

ROWS = 2_000_000
EMBEDDED_ROWS = 100_000
COLUMNS = (
    "id bigint primary key, customer text not null, amount numeric(12,2), qty integer, paid boolean, "
    "category varchar(20), created_at timestamptz, updated_at timestamp, note text"
)


def _quiet(level: str, message: str) -> None:
    if level == "error":
        print(f"  {message}", file=sys.stderr)


def _steps(level: str, message: str) -> None:
    """The worker's own timing line (read and loaded), and errors."""
    if level == "error" or message.startswith("read "):
        print(f"    {message}", file=sys.stderr if level == "error" else sys.stdout, flush=True)


def best(label: str, runs: list[float]) -> float:
    print(f"  {label}: " + ", ".join(f"{t:.2f}s" for t in runs), flush=True)
    return min(runs)


def make_source(server: PostgresServer) -> str:
    dsn = server.create_database("shop", owner="shop", password="bench-shop-pw")
    with psycopg.connect(dsn) as db:
        db.execute(f"create table orders ({COLUMNS})")
        db.execute(
            "insert into orders select g, 'customer ' || (g % 50000), (g % 100000) / 100.0, g % 17, g % 3 = 0, "
            "(array['books','food','tools','toys'])[1 + g % 4], timestamptz '2024-01-01' + g * interval '1 second', "
            "timestamp '2024-01-01' + g * interval '1 second', case when g % 5 = 0 then null else 'note ' || g end "
            f"from generate_series(1, {ROWS}) g"
        )
    return dsn


def org(slug: str, server: PostgresServer, warehouse: dict | None, home: Path) -> OrgSpec:
    data = {
        "slug": slug,
        "name": slug,
        "connections": [
            {
                "name": "shop",
                "source": {
                    "type": "database",
                    "host": server.host,
                    "port": server.port,
                    "database": "shop",
                    "user": "shop",
                    "password": {"env": "BENCH_SHOP_PASSWORD"},
                },
                "streams": [{"name": "orders"}],
            },
            {
                "name": "export",
                "source": {"type": "files", "url": "export", "format": "csv"},
                "destination_schema": "files",
                "streams": [{"name": "orders"}],
            },
            {
                "name": "file",
                "source": {
                    "connector": "source-file",
                    "config": {
                        "dataset_name": "orders",
                        "format": "csv",
                        "url": str(files_root(slug) / "head" / "orders.csv"),
                        "provider": {"storage": "local"},
                    },
                },
                "destination_schema": "embedded",
                "streams": [{"name": "orders"}],
            },
        ],
    }
    if warehouse:
        data["warehouse"] = warehouse
    return parse_org_spec(data, org=slug, path=home / f"{slug}.yaml")


def dlt_sync(spec: OrgSpec, connection: int) -> float:
    conn = spec.connections[connection]
    run = DltRun(spec, conn, warehouse_resource(spec), _steps)
    start = time.perf_counter()
    (result,) = run.sync(["orders"])
    elapsed = time.perf_counter() - start
    assert result.rows_loaded == ROWS, result
    return elapsed


def copy_pg_to_pg(source: str, target: str) -> float:
    start = time.perf_counter()
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        dst.execute("drop table if exists baseline_orders")
        dst.execute(f"create table baseline_orders ({COLUMNS})")
        with (
            src.cursor() as out_cur,
            out_cur.copy("copy orders to stdout") as out,
            dst.cursor() as in_cur,
            in_cur.copy("copy baseline_orders from stdin") as into,
        ):
            for data in out:
                into.write(data)
        dst.commit()
    return time.perf_counter() - start


def copy_out_csv(source: str, path: Path) -> float:
    start = time.perf_counter()
    with (
        psycopg.connect(source) as src,
        src.cursor() as cur,
        cur.copy("copy orders to stdout (format csv, header)") as out,
        open(path, "wb") as handle,
    ):
        for data in out:
            handle.write(data)
    return time.perf_counter() - start


def duckdb_scan(path: Path, database: Path) -> float:
    start = time.perf_counter()
    with duckdb.connect(str(database)) as db:
        db.execute(f"create or replace table baseline_orders as select * from read_csv('{path}')")
    return time.perf_counter() - start


def embedded_file(spec: OrgSpec) -> float:
    sync = ConnectionSync(spec.slug, spec.connections[2], warehouse_resource(spec), log=_quiet)
    start = time.perf_counter()
    (result,) = sync.run(["orders"])
    elapsed = time.perf_counter() - start
    assert result.rows_loaded == EMBEDDED_ROWS, result
    return elapsed


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="dalgo-bench-"))
    os.environ.setdefault("DALGO_HOME", str(home / "home"))
    os.environ["BENCH_SHOP_PASSWORD"] = "bench-shop-pw"
    # its PostgreSQL on 127.0.0.1 stands for the organization's, in a network the operator allows
    os.environ.setdefault("DALGO_PRIVATE_NETWORKS", "127.0.0.1/32")
    os.environ["BENCH_WH_PASSWORD"] = "bench-wh-pw"
    try:
        run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run(home: Path) -> None:
    with PostgresServer() as server:
        print(f"source: {ROWS:,} rows in PostgreSQL", flush=True)
        source = make_source(server)
        target = server.create_database("wh", owner="wh", password="bench-wh-pw")
        pg_wh = {
            "type": "postgres",
            "host": server.host,
            "port": server.port,
            "user": "wh",
            "password": {"env": "BENCH_WH_PASSWORD"},
            "database": "wh",
        }
        duck, pg = org("bench_duck", server, None, home), org("bench_pg", server, pg_wh, home)
        export = files_root(duck.slug) / "export"
        export.mkdir(parents=True)
        csv = export / "orders.csv"
        head = files_root(duck.slug) / "head"
        head.mkdir(parents=True)
        times: dict[str, list[float]] = {k: [] for k in ("pg_duck", "pg_pg", "csv_duck", "copy_pg", "out", "scan")}
        for round_ in (1, 2, 3):
            print(f"round {round_}", flush=True)
            times["out"].append(copy_out_csv(source, csv))
            times["scan"].append(duckdb_scan(csv, home / "baseline.duckdb"))
            times["copy_pg"].append(copy_pg_to_pg(source, target))
            times["pg_duck"].append(dlt_sync(duck, 0))
            times["pg_pg"].append(dlt_sync(pg, 0))
            times["csv_duck"].append(dlt_sync(duck, 1))
        with open(csv) as full, open(head / "orders.csv", "w") as part:
            for _ in range(EMBEDDED_ROWS + 1):
                part.write(full.readline())
        embedded = best("embedded source-file, 100,000 rows", [embedded_file(duck) for _ in range(1)])

    out, scan = best("COPY out as CSV", times["out"]), best("DuckDB scan of the CSV", times["scan"])
    limits = {"pg_duck": out + scan, "pg_pg": best("COPY out -> COPY in", times["copy_pg"]), "csv_duck": scan}
    ours = {k: best(f"dlt {k.replace('_', ' -> ')}", times[k]) for k in limits}
    ratio = {k: limits[k] / ours[k] for k in limits}
    for k in limits:
        print(f"{k.replace('_', ' -> ')}: {ROWS / ours[k]:,.0f} rows/s vs limit {ROWS / limits[k]:,.0f} rows/s")
    vs_embedded = (ROWS / ours["csv_duck"]) / (EMBEDDED_ROWS / embedded)
    print(f"embedded source-file: {EMBEDDED_ROWS / embedded:,.0f} rows/s")
    print(
        f"ingest_db ratios (of the limit, best of 3, {ROWS:,} rows): pg->duckdb {ratio['pg_duck']:.2f}, "
        f"pg->pg {ratio['pg_pg']:.2f}, csv->duckdb {ratio['csv_duck']:.2f}; "
        f"csv->duckdb {vs_embedded:.1f}x embedded source-file (rows/s)"
    )


if __name__ == "__main__":
    main()
