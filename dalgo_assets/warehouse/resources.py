"""Dagster resources for an organization's warehouse.

``WarehouseResource`` carries the warehouse's settings and *references* to its secrets (``env:NAME`` or
``file:NAME``), never their values, so Dagit shows where a secret comes from and not what it is. The
values are read only at run time: to connect (ingestion, data statistics) and to give dbt its
environment. BigQuery organizations also get dagster-gcp's ``BigQueryResource``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from dalgo_core import layout
from dalgo_core.sandbox.policy import POLICY_ENV, Policy, existing
from dalgo_core.sandbox.tenant import org_policy
from dalgo_core.spec import (
    BigQueryWarehouse,
    DuckDBWarehouse,
    OrgSpec,
    PostgresWarehouse,
    SecretRef,
)
from dalgo_core.warehouse.connect import postgres_target
from dalgo_core.warehouse.profiles import duckdb_path, secret_env_names


def _ref(text: str | None) -> SecretRef | None:
    if not text:
        return None
    kind, _, name = text.partition(":")
    return SecretRef(**{kind: name})


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class WarehouseResource(dg.ConfigurableResource):
    """An organization's warehouse: DuckDB, PostgreSQL or BigQuery."""

    org: str
    type: str = Field(description="duckdb, postgres or bigquery")
    schema_name: str = Field(description="default schema (dataset on BigQuery)")
    duckdb_path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    database: str | None = None
    sslmode: str | None = None
    project: str | None = None
    location: str | None = None
    password_ref: str | None = Field(None, description="where the password is read from, never the value")
    keyfile_ref: str | None = Field(None, description="where the BigQuery key is read from, never the value")
    secret_env_name: str | None = Field(None, description="environment variable dbt reads the password from")
    sandbox_policy: str = Field("", description="what the organization's dbt may see and reach (JSON, no secrets)")

    # -- run-time secrets ---------------------------------------------------------------------------

    def _password(self) -> str:
        ref = _ref(self.password_ref)
        return ref.resolve(self.org) if ref else ""

    @contextlib.contextmanager
    def dbt_environment(self, *read_only: str | Path) -> Iterator[None]:
        """Give a dbt process started inside this block (``dalgo-dbt``) the warehouse's secrets and the
        organization's sandbox policy, with ``read_only`` (its project) added to what it may read."""
        with self.secret_environment():
            values = {}
            if self.sandbox_policy:
                policy = Policy.from_json(self.sandbox_policy)
                extra, names = list(read_only), []
                creds = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                if self.type == "bigquery" and creds:
                    extra, names = [*extra, creds], ["GOOGLE_APPLICATION_CREDENTIALS"]
                policy = replace(policy, read_only=(*policy.read_only, *existing(extra))).with_env(names)
                policy.check_endpoints()  # the step fails here saying why, not in dbt's first call
                values[POLICY_ENV] = policy.to_json()
            with _environ(values):
                yield

    @contextlib.contextmanager
    def secret_environment(self) -> Iterator[None]:
        """Expose the warehouse's secrets to code started inside this block."""
        if self.type == "postgres" and self.secret_env_name:
            with _environ({self.secret_env_name: self._password()}):
                yield
        elif self.type == "bigquery" and self.keyfile_ref:
            from dagster_gcp.bigquery.utils import setup_gcp_creds

            with setup_gcp_creds(_ref(self.keyfile_ref).resolve(self.org)):
                yield
        else:
            yield

    # -- connections --------------------------------------------------------------------------------

    def postgres_dsn(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self._password(),
            "dbname": self.database,
            **({"sslmode": self.sslmode} if self.sslmode else {}),
        }

    @contextlib.contextmanager
    def connect(self, *files_in: str | Path) -> Iterator[Any]:
        """A DB-API connection (duckdb or psycopg 3); BigQuery uses ``bigquery_client``.

        A DuckDB connection reads no file but the warehouse and the folders ``files_in``: the tenant's
        dbt may leave views that call ``read_text`` or ``ATTACH``, and this connection is the platform's."""
        if self.type == "duckdb":
            import duckdb

            path = layout.no_links(Path(self.duckdb_path or "warehouse.duckdb"))
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = duckdb.connect(str(path))
            allowed = ", ".join("'" + str(Path(d)).replace("'", "''") + "/'" for d in files_in)
            conn.execute(f"set allowed_directories = [{allowed}]")
            conn.execute("set enable_external_access = false")
        elif self.type == "postgres":
            import psycopg

            dsn = self.postgres_dsn()
            conn = psycopg.connect(**{**dsn, **postgres_target(dsn["host"], dsn["port"])}, connect_timeout=10)
        else:
            raise NotImplementedError(f"{self.type} warehouses connect through bigquery_client()")
        try:
            yield conn
        finally:
            conn.close()

    def check(self) -> None:
        """Raise with the driver's message if the warehouse cannot be reached."""
        if self.type == "bigquery":
            with self.secret_environment():
                from google.cloud import bigquery

                bigquery.Client(project=self.project, location=self.location).get_dataset(self.schema_name)
            return
        with self.connect() as conn:
            conn.execute("select 1")


def warehouse_resource(spec: OrgSpec) -> WarehouseResource:
    wh = spec.warehouse
    policy = org_policy(spec).to_json()
    if isinstance(wh, DuckDBWarehouse):
        return WarehouseResource(
            org=spec.slug,
            type="duckdb",
            schema_name=wh.schema_,
            duckdb_path=str(duckdb_path(spec)),
            sandbox_policy=policy,
        )
    if isinstance(wh, PostgresWarehouse):
        return WarehouseResource(
            sandbox_policy=policy,
            org=spec.slug,
            type="postgres",
            schema_name=wh.schema_,
            host=wh.host,
            port=wh.port,
            user=wh.user,
            database=wh.database,
            sslmode=wh.sslmode,
            password_ref=wh.password.describe(),
            secret_env_name=next(iter(secret_env_names(spec))),
        )
    assert isinstance(wh, BigQueryWarehouse)
    return WarehouseResource(
        sandbox_policy=policy,
        org=spec.slug,
        type="bigquery",
        schema_name=wh.dataset,
        project=wh.project,
        location=wh.location,
        keyfile_ref=wh.keyfile_json.describe() if wh.keyfile_json else None,
    )


def warehouse_resources(spec: OrgSpec) -> dict[str, dg.ConfigurableResource]:
    """The resources an organization's definitions get for its warehouse."""
    resources: dict[str, dg.ConfigurableResource] = {"warehouse": warehouse_resource(spec)}
    wh = spec.warehouse
    if isinstance(wh, BigQueryWarehouse):
        from dagster_gcp import BigQueryResource  # heavy (google-cloud): only for BigQuery organizations

        key = wh.keyfile_json
        resources["bigquery"] = BigQueryResource(
            project=wh.project,
            location=wh.location,
            # dagster-gcp takes the base64-encoded service-account key; EnvVar keeps it out of Dagit.
            gcp_credentials=dg.EnvVar(key.env) if key and key.env else None,
        )
    return resources
