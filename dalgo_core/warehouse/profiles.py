"""dbt profiles generated from an organization's warehouse.

Secrets never appear in a generated profile: a PostgreSQL password is read by dbt from an environment
variable named by the platform (``DALGO_SECRET_<ORG>_PASSWORD``), and a BigQuery key through application
default credentials; run-time code fills both from the spec's secret references just before dbt starts
(see ``WarehouseResource.dbt_environment``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dalgo_core import layout
from dalgo_core.spec import (
    BigQueryWarehouse,
    DuckDBWarehouse,
    OrgSpec,
    PostgresWarehouse,
    SecretRef,
)

PROFILE_NAME = "dalgo"
DBT_THREADS = 4


def duckdb_path(spec: OrgSpec) -> Path:
    """The organization's DuckDB warehouse: always ``warehouse.duckdb`` in its root."""
    assert isinstance(spec.warehouse, DuckDBWarehouse)
    return spec.state_dir() / "warehouse.duckdb"


def secret_env_names(spec: OrgSpec) -> dict[str, SecretRef]:
    """The environment variables a dbt run needs, each with the reference that fills it."""
    wh = spec.warehouse
    prefix = f"DALGO_SECRET_{spec.slug.upper()}_"
    if isinstance(wh, PostgresWarehouse):
        return {prefix + "PASSWORD": wh.password}
    return {}


def _env(name: str) -> str:
    # The default keeps `dbt parse` working where the secret is not available (it needs no connection).
    return "{{ env_var('" + name + "', '') }}"


def dbt_profile(spec: OrgSpec) -> dict[str, Any]:
    """The organization's dbt profile (``profiles.yml`` content) for its warehouse."""
    wh = spec.warehouse
    secret = next(iter(secret_env_names(spec)), None)
    output: dict[str, Any]
    if isinstance(wh, DuckDBWarehouse):
        output = {"type": "duckdb", "path": str(duckdb_path(spec)), "schema": wh.schema_}
    elif isinstance(wh, PostgresWarehouse):
        output = {
            "type": "postgres",
            "host": wh.host,
            "port": wh.port,
            "user": wh.user,
            "password": _env(secret),
            "dbname": wh.database,
            "schema": wh.schema_,
            **({"sslmode": wh.sslmode} if wh.sslmode else {}),
        }
    elif isinstance(wh, BigQueryWarehouse):
        output = {
            "type": "bigquery",
            "project": wh.project,
            "dataset": wh.dataset,
            "location": wh.location,
            # Application default credentials: at run time a service-account key from the spec is
            # exposed through GOOGLE_APPLICATION_CREDENTIALS (WarehouseResource.dbt_environment).
            "method": "oauth",
        }
    else:  # pragma: no cover - the spec's union is closed
        raise TypeError(f"unknown warehouse {wh!r}")
    output["threads"] = DBT_THREADS
    return {PROFILE_NAME: {"target": wh.type, "outputs": {wh.type: output}}}


def render_profiles(spec: OrgSpec) -> str:
    return yaml.safe_dump(dbt_profile(spec), sort_keys=False)


def profiles_dir(spec: OrgSpec) -> Path:
    return spec.state_dir() / "dbt"


def write_profiles(spec: OrgSpec) -> Path:
    """Write ``profiles.yml`` for the organization if it changed; return its folder."""
    folder = profiles_dir(spec)
    path = folder / "profiles.yml"
    text = render_profiles(spec).encode()
    try:
        current = layout.read_org_file(path, max_bytes=len(text))
    except (FileNotFoundError, layout.RefusedFile):
        current = None
    if current != text:
        layout.write_org_file(path, text)
    return folder
