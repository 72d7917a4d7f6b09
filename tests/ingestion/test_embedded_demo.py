"""End to end: the demo's marts with their upstream run source-faker ingestion first, then dbt."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from dalgo_assets.definitions import build_org_definitions
from dalgo_assets.warehouse import warehouse_resources
from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.spec import load_org_spec
from tests.ingestion.embedded_support import embedded_env  # noqa: F401 (fixture)
from tests.support.orgs import copy_demo_org


def test_demo_customers_with_upstream_ingests_then_transforms(embedded_env: Path) -> None:  # noqa: F811
    copy_demo_org(embedded_env / "orgs")
    spec = load_org_spec("demo_ngo")
    prepare_projects(spec)
    defs = build_org_definitions(spec)
    customers = dg.AssetKey(["demo_ngo", "sales", "customers"])
    result = dg.materialize(
        list(defs.assets or []),
        selection=dg.AssetSelection.assets(customers).upstream(),
        resources=dict(defs.resources or {}),
        raise_on_error=False,
    )
    assert result.success
    order = [e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization and e.asset_key]
    faker = [order.index(f"demo_ngo/faker/{s}") for s in ("users", "purchases", "products")]
    assert max(faker) < order.index("demo_ngo/sales/stg_users") < order.index("demo_ngo/sales/customers")
    assert "demo_ngo/analytics/customer_segments" not in order  # downstream of the selection: not run

    with duckdb.connect(warehouse_resources(spec)["warehouse"].duckdb_path, read_only=True) as db:
        (schema,) = db.execute(
            "select table_schema from information_schema.tables where table_name = 'customers'"
        ).fetchone()
        customers_rows, with_orders = db.execute(
            f"select count(*), count(*) filter (where number_of_orders > 0) from {schema}.customers"
        ).fetchone()
    assert customers_rows == 500 and with_orders > 0
