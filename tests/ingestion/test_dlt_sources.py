"""Database and file sources run by dlt, through the real sandbox: a throwaway PostgreSQL source database,
a CSV and a Parquet file, into a DuckDB and a PostgreSQL warehouse, with dbt models reading the results in
the same Dagster run; then an insert and an update moved by an incremental sync and merged, a type change
rebuilt, a change held by a paused connection until approved, a new column an ignoring one leaves out,
failed loads that keep the old rows (the fast path's and dlt's), a reset, the files discovered, and what a
hostile tenant's file source cannot read."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dalgo_assets.definitions import build_org_definitions
from dalgo_assets.ingestion.dlt import discovery
from dalgo_assets.warehouse import warehouse_resources
from dalgo_core.connectors import changes
from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.file_sources import files_root
from dalgo_core.names import reset_job_name, reset_run_config
from dalgo_core.spec import OrgSpec, load_org_spec
from tests.ingestion.embedded_support import failure_message, loaded, postgres_warehouse, run_log
from tests.support.orgs import write_dbt_project, write_spec
from tests.support.postgres import PostgresServer

ORDERS = 50

SOURCES_YML = """
version: 2
sources:
  - name: shop
    schema: raw
    tables: [{name: orders}, {name: customers}]
  - name: exports
    schema: files
    tables: [{name: people}, {name: sales}]
"""
MODELS = {
    "models/sources.yml": SOURCES_YML,
    "models/customer_totals.sql": (
        "select c.name, count(*) as orders, sum(o.amount) as total\n"
        "from {{ source('shop', 'orders') }} o join {{ source('shop', 'customers') }} c on c.id = o.customer_id\n"
        "group by c.name\n"
    ),
    "models/people_sales.sql": (
        "select p.name, sum(s.amount) as sold\n"
        "from {{ source('exports', 'people') }} p join {{ source('exports', 'sales') }} s on s.person_id = p.id\n"
        "group by p.name\n"
    ),
}


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> Iterator[Callable[..., Any]]:
    """The source database, ``shop``: customers (full refresh) and orders (a cursor and a primary key);
    yields a function running SQL on it. Each test works on its own copy (``shop_for``)."""
    dsn = postgres.create_database("shop", owner="shop_reader", password="r3ader pass")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("create table customers (id integer primary key, name text not null)")
        db.execute("insert into customers values (1, 'Asha'), (2, 'Bilal'), (3, 'Chen')")
        db.execute(
            "create table orders (id bigint primary key, customer_id integer, amount numeric(10, 2), "
            "qty smallint, paid boolean, placed date, note varchar(40), updated_at timestamptz not null)"
        )
        db.execute(
            f"insert into orders select g, 1 + g % 3, g * 1.25, g % 7, g % 2 = 0, date '2024-01-01' + g, "
            f"'order ' || g, timestamptz '2024-06-01 00:00+00' + g * interval '1 minute' "
            f"from generate_series(1, {ORDERS}) g"
        )

    def run(sql: str, database: str = "shop") -> list[tuple]:
        with psycopg.connect(postgres.dsn(database), autocommit=True) as db:
            cur = db.execute(sql)
            return cur.fetchall() if cur.description else []

    yield run


def shop_for(postgres: PostgresServer, shop: Callable[..., Any], name: str) -> str:
    """A copy of the source database for one test (``create database ... template``)."""
    shop(f"create database {name} template shop owner shop_reader", database="postgres")
    return name


def write_files(slug: str) -> None:
    """The organization's exports: people.csv and sales.parquet in its files folder."""
    folder = files_root(slug) / "exports"
    folder.mkdir(parents=True)
    (folder / "people.csv").write_text("id,name,joined,score\n1,Asha,2023-01-05,4.5\n2,Bilal,2023-02-11,3.0\n")
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "person_id": pa.array([1, 1, 2], pa.int32()),
            "amount": pa.array([Decimal("10.50"), Decimal("2.25"), Decimal("7.00")], pa.decimal128(8, 2)),
        }
    )
    pq.write_table(table, folder / "sales.parquet")


def write_shop_org(
    root: Path, postgres: PostgresServer, slug: str, database: str, warehouse: dict | None, policies: dict[str, str]
) -> OrgSpec:
    """The organization: the shop database and the exports, each connection with its schema change policy."""
    project = write_dbt_project(root / "dbt", f"{slug}_reports", MODELS)
    spec: dict[str, Any] = {
        "slug": slug,
        "name": slug.title(),
        "dbt_projects": [{"name": "reports", "path": str(project)}],
        "connections": [
            {
                "name": "shop",
                "schema_change_policy": policies.get("shop", "propagate_columns"),
                "source": {
                    "type": "database",
                    "host": postgres.host,
                    "port": postgres.port,
                    "database": database,
                    "user": "shop_reader",
                    "password": {"env": "SHOP_PASSWORD"},
                },
                "streams": [
                    {
                        "name": "orders",
                        "sync_mode": "incremental",
                        "cursor_field": ["updated_at"],
                        "primary_key": [["id"]],
                    },
                    {"name": "customers"},
                ],
            },
            {
                "name": "exports",
                "schema_change_policy": policies.get("exports", "propagate_columns"),
                "source": {"type": "files", "url": "exports", "format": "csv"},
                "destination_schema": "files",
                "streams": [{"name": "people"}],
            },
            {
                "name": "sales",
                "source": {"type": "files", "url": "exports", "format": "parquet"},
                "destination_schema": "files",
                "streams": [{"name": "sales"}],
            },
        ],
    }
    if warehouse:
        spec["warehouse"] = warehouse
    write_spec(root / "orgs", slug, spec)
    write_files(slug)
    spec_ = load_org_spec(slug)
    prepare_projects(spec_)
    return spec_


def materialize(
    spec: OrgSpec, instance: dg.DagsterInstance, keys: list[str] | None = None
) -> dg.ExecuteInProcessResult:
    defs = build_org_definitions(spec)
    selection = [dg.AssetKey([spec.slug, *k.split("/")]) for k in keys] if keys else None
    return dg.materialize(
        list(defs.assets or []),
        selection=selection,
        resources=dict(defs.resources or {}),
        instance=instance,
        raise_on_error=False,
    )


def reset(spec: OrgSpec, instance: dg.DagsterInstance, connection: str, streams: list[str]) -> list[str]:
    job = build_org_definitions(spec).resolve_job_def(reset_job_name(spec.slug, connection))
    result = job.execute_in_process(
        run_config=reset_run_config(spec.slug, connection, streams), instance=instance, raise_on_error=False
    )
    assert result.success, failure_message(result)
    return run_log(instance, result)


def assert_reports(query: Callable[[str], list[tuple]], schema: str) -> None:
    """The dbt models read the synced tables: orders per customer, and the Parquet sales per CSV person."""
    assert query(f"select name, orders from {schema}.customer_totals order by name") == [
        ("Asha", 16),
        ("Bilal", 17),
        ("Chen", 17),
    ]
    assert query(f"select name, sold from {schema}.people_sales order by name") == [
        ("Asha", Decimal("12.75")),
        ("Bilal", Decimal("7.00")),
    ]


def insert_and_update(
    spec: OrgSpec, instance: dg.DagsterInstance, source: Callable[[str], Any], query: Callable[[str], Any], change: str
) -> None:
    """A new order and a change to order 3 at the source: the incremental sync moves those two rows only,
    and merges the change on the primary key."""
    source(f"update orders set {change}, updated_at = now() where id = 3")
    source(f"insert into orders values ({ORDERS + 1}, 2, 1.00, 1, true, '2025-01-01', 'new', now())")
    result = materialize(spec, instance, ["shop/orders"])
    assert result.success, failure_message(result)
    assert loaded(result)["orders"]["rows_loaded"] == 2
    assert query("select count(*), count(distinct id) from raw.orders") == [(ORDERS + 1, ORDERS + 1)]


@pytest.fixture
def env(dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOP_PASSWORD", "r3ader pass")
    return dalgo_env


def test_database_and_files_into_duckdb_with_dbt_then_incremental_and_reset(
    env: Path, postgres: PostgresServer, shop: Callable[..., Any]
) -> None:
    database = shop_for(postgres, shop, "shop_duck")
    spec = write_shop_org(env, postgres, "duckorg", database, None, {"exports": "pause"})
    instance = dg.DagsterInstance.ephemeral()

    # ingestion and the dbt models reading its tables, in one run
    first = materialize(spec, instance)
    assert first.success, failure_message(first)
    order = [e.asset_key.to_user_string() for e in first.all_events if e.is_step_materialization and e.asset_key]
    assert order.index("duckorg/shop/orders") < order.index("duckorg/reports/customer_totals")
    assert order.index("duckorg/exports/people") < order.index("duckorg/reports/people_sales")
    assert order.index("duckorg/sales/sales") < order.index("duckorg/reports/people_sales")
    meta = loaded(first)
    assert meta["orders"] == {"rows_loaded": ORDERS, "table": "raw.orders", "sync_mode": "incremental"}
    assert meta["customers"]["rows_loaded"] == 3 and meta["people"]["rows_loaded"] == 2
    assert meta["sales"]["rows_loaded"] == 3

    path = warehouse_resources(spec)["warehouse"].duckdb_path

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(path, read_only=True) as db:
            return db.sql(sql).fetchall()

    (schema,) = query("select table_schema from information_schema.tables where table_name = 'customer_totals'")[0]
    assert_reports(query, schema)
    # the source's own types, precision included
    types = dict(query("select column_name, data_type from information_schema.columns where table_name = 'orders'"))
    assert types["amount"] == "DECIMAL(10,2)" and types["placed"] == "DATE" and types["paid"] == "BOOLEAN"
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE" and types["id"] == "BIGINT"
    people = dict(query("select column_name, data_type from information_schema.columns where table_name = 'people'"))
    assert people["joined"] == "DATE" and people["score"] == "DOUBLE"

    # an insert and an update: the incremental sync moves those two rows only and merges the update
    insert_and_update(spec, instance, lambda sql: shop(sql, database=database), query, "amount = 999.99")
    assert query("select amount from raw.orders where id = 3") == [(Decimal("999.99"),)]
    assert query("select count(*) from raw_staging.orders") == [(0,)]  # the staged rows do not stay

    # a reset drops the table and the cursor: the next sync reads every row again
    lines = reset(spec, instance, "shop", ["orders"])
    assert "dropped raw.orders" in lines
    assert not query("select * from information_schema.tables where table_name = 'orders'")
    third = materialize(spec, instance, ["shop/orders"])
    assert third.success, failure_message(third)
    assert loaded(third)["orders"]["rows_loaded"] == ORDERS + 1

    # the files as streams, found by the worker: each file's columns and types
    csv = discovery.discover(spec, spec.connections[1].source, lambda message: None)
    assert list(csv) == ["people"] and csv["people"]["files"] == "people.csv"
    assert csv["people"]["json_schema"]["properties"]["joined"] == {"type": ["null", "string"], "format": "date"}
    assert csv["people"]["cursor_candidates"] == ["joined", "id"]
    parquet = discovery.discover(spec, spec.connections[2].source, lambda message: None)
    assert {c["name"]: c["type"] for c in parquet["sales"]["columns"]} == {
        "id": "int64",
        "person_id": "int32",
        "amount": "decimal128(8, 2)",
    }

    # the CSV's score becomes text: the connection's policy (pause) holds the sync before it loads anything;
    # once the change is approved, the stream's table is rebuilt with the new type, and said so
    (files_root("duckorg") / "exports" / "people.csv").write_text("id,name,joined,score\n1,Asha,2023-01-05,high\n")
    held = materialize(spec, instance, ["exports/people"])
    assert "policy is to pause: stream 'people': column 'score' changed type from number to string" in (
        failure_message(held)
    )
    assert query("select count(*) from files.people") == [(2,)]
    discovered = changes.load_discovered("duckorg", "exports")
    assert discovered is not None  # approved as the API's approval does
    changes.save_applied("duckorg", "exports", changes.AppliedCatalog.from_discovered(discovered.streams, ["people"]))
    changed = materialize(spec, instance, ["exports/people"])
    assert changed.success, failure_message(changed)
    assert "table files.people: column 'score' changed type from DOUBLE to VARCHAR" in "\n".join(
        run_log(instance, changed)
    )
    assert query("select name, score from files.people") == [("Asha", "high")]


def test_database_and_csv_into_postgres_with_dbt_merge_and_type_change(
    env: Path, postgres: PostgresServer, shop: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = shop_for(postgres, shop, "shop_pg")
    warehouse = postgres_warehouse(postgres, "pgorg", monkeypatch)
    spec = write_shop_org(env, postgres, "pgorg", database, warehouse, {"shop": "ignore"})
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(spec, instance)
    assert first.success, failure_message(first)

    def query(sql: str) -> list[tuple]:
        with psycopg.connect(postgres.dsn("pgorg", "pgorg", "s3cret")) as db:
            return db.execute(sql).fetchall()

    assert_reports(query, "public")
    types = dict(query("select column_name, data_type from information_schema.columns where table_name = 'orders'"))
    assert types["amount"] == "numeric" and types["placed"] == "date" and types["updated_at"].startswith("timestamp")

    insert_and_update(spec, instance, lambda sql: shop(sql, database=database), query, "note = 'changed'")
    assert query("select note from raw.orders where id = 3") == [("changed",)]

    # a column's type changes at the source: the stream's table is rebuilt (with dbt's view on it), in full;
    # a column added at the source is not loaded (the policy ignores it), and waits for approval
    shop("alter table orders alter column qty type text using 'q' || qty", database=database)
    shop("alter table orders add column discount numeric(4, 2) default 0.5", database=database)
    third = materialize(spec, instance, ["shop/orders"])
    assert third.success, failure_message(third)
    assert loaded(third)["orders"]["rows_loaded"] == ORDERS + 1
    log = "\n".join(run_log(instance, third))
    assert "table raw.orders: column 'qty' changed type from integer to varchar" in log
    assert "dropped public.customer_totals" in log
    assert "schema changes waiting for approval: stream 'orders': column 'discount' added" in log
    assert query("select qty from raw.orders where id = 1") == [("q1",)]
    assert not query(
        "select 1 from information_schema.columns where table_name = 'orders' and column_name = 'discount'"
    )

    def warehouse_sql(sql: str) -> None:
        with psycopg.connect(postgres.dsn("pgorg", "pgorg", "s3cret"), autocommit=True) as db:
            db.execute(sql)

    # a full refresh that fails (a check added to the warehouse's table by hand refuses a row) keeps the old
    # rows: TRUNCATE and binary COPY in one transaction; without the check, the next sync loads
    shop("update customers set name = 'Chen Li' where id = 3", database=database)
    warehouse_sql("alter table raw.customers add constraint short_names check (length(name) < 6)")
    failed = materialize(spec, instance, ["shop/customers"])
    assert "short_names" in failure_message(failed)
    assert query("select name from raw.customers order by id") == [("Asha",), ("Bilal",), ("Chen",)]
    warehouse_sql("alter table raw.customers drop constraint short_names")
    loaded_now = materialize(spec, instance, ["shop/customers"])
    assert loaded_now.success, failure_message(loaded_now)
    assert query("select name from raw.customers order by id") == [("Asha",), ("Bilal",), ("Chen Li",)]

    # an incremental load that fails (a column's type changed by hand) keeps the table as it was; once the
    # table is fixed, the next sync reads again from the last loaded state and loads
    warehouse_sql("alter table raw.orders alter column note type integer using length(note)")
    shop("update orders set note = 'again', updated_at = now() where id = 5", database=database)
    failed = materialize(spec, instance, ["shop/orders"])
    assert "note" in failure_message(failed)
    assert query("select note from raw.orders where id = 5") == [(7,)]
    warehouse_sql("alter table raw.orders alter column note type text")
    retried = materialize(spec, instance, ["shop/orders"])
    assert retried.success, failure_message(retried)
    assert "the previous sync did not finish loading" in "\n".join(run_log(instance, retried))
    assert query("select note from raw.orders where id = 5") == [("again",)]


@pytest.fixture
def web_files(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving people.jsonl: a private address."""
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "people.jsonl").write_text('{"id": 1, "name": "Asha"}\n{"id": 2, "name": "Bilal", "tags": ["a"]}\n')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_file_sources_stay_in_their_folder(
    env: Path, tmp_path: Path, web_files: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink out of the organization's files folder is refused before anything runs; a file on a
    private address is out of the sandbox's reach unless the operator allows private addresses."""
    secret = tmp_path / "platform-secret"
    secret.mkdir()
    (secret / "people.csv").write_text("id\n1\n")
    files_root("tenant").mkdir(parents=True)
    os.symlink(secret, files_root("tenant") / "escape")
    write_spec(
        env / "orgs",
        "tenant",
        {
            "slug": "tenant",
            "name": "Tenant",
            "connections": [
                {
                    "name": "escape",
                    "source": {"type": "files", "url": "escape", "format": "csv"},
                    "streams": [{"name": "people"}],
                },
                {
                    "name": "web",
                    "source": {"type": "files", "url": web_files, "format": "jsonl"},
                    "destination_schema": "web",
                    "streams": [{"name": "people"}],
                },
            ],
        },
    )
    spec = load_org_spec("tenant")
    instance = dg.DagsterInstance.ephemeral()
    escaped = materialize(spec, instance, ["escape/people"])
    assert "leads outside the folders file sources may read" in failure_message(escaped)
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("DALGO_PRIVATE_NETWORKS", raising=False)
    refused = materialize(spec, instance, ["web/people"])
    # the egress proxy answers 403 to a private address: the listing finds nothing, or the read is refused
    assert any(m in failure_message(refused) for m in ("no file matches 'people.jsonl'", "403"))

    # the same file (JSON lines), where the operator lets the sandbox reach private addresses (a development machine)
    monkeypatch.setenv("DALGO_SANDBOX_ALLOW_PRIVATE", "1")
    allowed = materialize(spec, instance, ["web/people"])
    assert allowed.success, failure_message(allowed)
    assert loaded(allowed)["people"]["rows_loaded"] == 2
    with duckdb.connect(warehouse_resources(spec)["warehouse"].duckdb_path, read_only=True) as db:
        assert db.sql("select count(*) from web.people").fetchall() == [(2,)]
        assert not db.sql("select * from information_schema.tables where table_schema = 'main'").fetchall()


def test_bigquery_warehouse_job_and_policy(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BigQuery down to the generated configuration: dlt's BigQuery destination with the organization's
    project, location and service-account key (the spec's base64 reference decoded), the sandbox's egress
    on for Google's API, and the declared database the only endpoint."""
    import base64
    import json

    from dalgo_assets.ingestion.dlt.job import Job
    from dalgo_core.sandbox import Endpoint

    key = {"type": "service_account", "project_id": "ngo-data", "private_key": "test-only-not-a-key"}
    monkeypatch.setenv("BQ_KEY", base64.b64encode(json.dumps(key).encode()).decode())
    write_spec(
        env / "orgs",
        "bq",
        {
            "slug": "bq",
            "name": "BQ",
            "warehouse": {
                "type": "bigquery",
                "project": "ngo-data",
                "dataset": "analytics",
                "location": "EU",
                "keyfile_json": {"env": "BQ_KEY"},
            },
            "connections": [
                {
                    "name": "shop",
                    "source": {
                        "type": "database",
                        "dialect": "mysql",
                        "host": "db.example.org",
                        "database": "shop",
                        "user": "reader",
                        "password": {"env": "SHOP_PASSWORD"},
                    },
                    "streams": [{"name": "Orders", "sync_mode": "incremental", "cursor_field": ["updated"]}],
                },
                {
                    "name": "bucket",
                    "source": {
                        "type": "files",
                        "url": "s3://ngo-exports/2024",
                        "format": "parquet",
                        "files": {"visits": "visits/*.parquet"},
                        "aws_access_key_id": {"env": "S3_KEY_ID"},
                        "aws_secret_access_key": {"env": "S3_SECRET"},
                        "endpoint_url": "https://s3.example.org",
                    },
                    "destination_schema": "bucket",
                    "streams": [{"name": "visits"}],
                },
            ],
        },
    )
    spec = load_org_spec("bq")
    job = Job(spec, spec.connections[0], warehouse_resources(spec)["warehouse"])
    content = job.build("sync", ["Orders"])
    assert content["destination"] == {"type": "bigquery", "project": "ngo-data", "location": "EU", "credentials": key}
    assert content["dataset"] == "raw" and content["pipeline"] == "bq__shop"
    assert content["streams"] == [
        {
            "name": "Orders",
            "table": "orders",
            "sync_mode": "incremental",
            "cursor": "updated",
            "primary_key": [],
            "pattern": None,
        }
    ]
    assert content["source"]["connectorx_url"] == "mysql://reader:r3ader%20pass@db.example.org:3306/shop"
    assert content["source"]["sqlalchemy_url"].startswith("mysql+pymysql://reader:")
    policy = job.policy("sync")
    assert policy.egress and policy.endpoints == (Endpoint("db.example.org", 3306),)
    assert "r3ader pass" in job.secrets and key["private_key"] in job.secrets
    assert not job.policy("reset").endpoints  # a reset reaches the warehouse only

    # S3: the bucket through the egress proxy, its keys from their secrets
    monkeypatch.setenv("S3_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("S3_SECRET", "s3-secret-value")
    files = Job(spec, spec.connections[1], warehouse_resources(spec)["warehouse"])
    source = files.build("sync", ["visits"])["source"]
    assert source["bucket_url"] == "s3://ngo-exports/2024" and source["format"] == "parquet"
    assert source["credentials"] == {
        "aws_access_key_id": "AKIAEXAMPLEKEY",
        "aws_secret_access_key": "s3-secret-value",
        "endpoint_url": "https://s3.example.org",
    }
    assert files.streams(["visits"])[0]["pattern"] == "visits/*.parquet"
    assert files.policy("sync").egress and not files.policy("sync").endpoints
    assert "s3-secret-value" in files.secrets
