"""An organization's warehouse: from the API's input (with its secret) to the spec (with a reference).

The password (PostgreSQL) or service-account key (BigQuery) goes to the secrets backend
(``dalgo_core.secret_store``: ``$DALGO_SECRETS_DIR/<slug>/<name>``, 0600, Fernet-encrypted); the spec
only says ``{file: <name>}``. Nothing here returns or logs a secret; connection errors are scrubbed of
it before they are shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dalgo_core import secret_store
from dalgo_core.spec import (
    BigQueryWarehouse,
    DuckDBWarehouse,
    OrgSpec,
    PostgresWarehouse,
    SecretRef,
    Warehouse,
)
from dalgo_core.warehouse.connect import postgres_target

PASSWORD_SECRET = "warehouse_password"
KEYFILE_SECRET = "warehouse_keyfile_json"
_SECRET_FIELDS = {"postgres": ("password", PASSWORD_SECRET), "bigquery": ("keyfile_json", KEYFILE_SECRET)}
CONNECT_TIMEOUT_SECONDS = 5


class WarehouseInputError(ValueError):
    """The input cannot make a warehouse (e.g. a PostgreSQL warehouse without a password)."""


def secret_field(data: dict[str, Any]) -> tuple[str, str] | None:
    """``(input field, secret file name)`` of a warehouse type, if it has a secret."""
    return _SECRET_FIELDS.get(data["type"])


def resolve_secret(slug: str, data: dict[str, Any], current: Warehouse | None) -> str | None:
    """The secret of a warehouse input: the one given, else the stored one when the type is unchanged
    (so a client can edit a warehouse, or test it again, without re-sending the password)."""
    field = secret_field(data)
    if field is None:
        return None
    given = data.get(field[0])
    if given:
        return given
    if current is not None and current.type == data["type"]:
        ref = getattr(current, field[0])
        if ref is not None:
            return ref.resolve(slug)
    if data["type"] == "postgres":
        raise WarehouseInputError("password: required for a new PostgreSQL warehouse")
    return None  # BigQuery without a key: application default credentials


def to_spec_warehouse(data: dict[str, Any], has_secret: bool) -> Warehouse:
    """The spec's warehouse for an input, its secret replaced by a reference to the secret file."""
    fields = {k: v for k, v in data.items() if v is not None}
    field = secret_field(data)
    if field is not None:
        fields.pop(field[0], None)
        if has_secret:
            fields[field[0]] = SecretRef(file=field[1])
    model = {"duckdb": DuckDBWarehouse, "postgres": PostgresWarehouse, "bigquery": BigQueryWarehouse}
    return model[data["type"]].model_validate(fields)


@contextlib.contextmanager
def secrets_restored_on_failure(slug: str) -> Iterator[None]:
    """The warehouse's stored secrets as they were (encrypted bytes) if the block fails: a refused
    change loses nothing."""
    paths = [secret_store.secret_path(slug, name) for _, name in _SECRET_FIELDS.values()]
    saved = {path: path.read_bytes() for path in paths if path.exists()}
    try:
        yield
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        for path, content in saved.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(0o600)
        raise


def store_secret(slug: str, data: dict[str, Any], secret: str | None) -> None:
    """Write the warehouse's secret, and remove secrets of other warehouse types."""
    field = secret_field(data)
    for _, name in _SECRET_FIELDS.values():
        if field is None or name != field[1]:
            secret_store.delete_secret(slug, name)
    if field is not None and secret is not None:
        secret_store.write_secret(slug, field[1], secret)


def public_view(warehouse: Warehouse) -> dict[str, Any]:
    """The warehouse as the API shows it: settings, and whether a secret is set, never the secret."""
    data = warehouse.model_dump(mode="json", by_alias=True, exclude_none=True)
    for field, _ in _SECRET_FIELDS.values():
        if field in data:
            data.pop(field)
    field = _SECRET_FIELDS.get(warehouse.type)
    data["secret_set"] = bool(field and getattr(warehouse, field[0]) is not None)
    return data


def _scrub(message: str, secret: str | None) -> str:
    return message.replace(secret, "***") if secret else message


def test_connection(spec: OrgSpec, secret: str | None) -> tuple[bool, str]:
    """Open a real connection to the warehouse (psycopg, duckdb, or the BigQuery client) and run a
    trivial query; ``(ok, message)``, the message never containing the secret."""
    wh = spec.warehouse
    try:
        if isinstance(wh, PostgresWarehouse):
            import psycopg

            options = {"sslmode": wh.sslmode} if wh.sslmode else {}
            with psycopg.connect(
                **postgres_target(wh.host, wh.port),
                user=wh.user,
                password=secret or "",
                dbname=wh.database,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                **options,
            ) as conn:
                conn.execute("select 1")
            return True, f"connected to PostgreSQL database '{wh.database}' on {wh.host}:{wh.port}"
        if isinstance(wh, DuckDBWarehouse):
            # the file is the platform's choice, inside the organization's root: testing creates nothing
            from dalgo_core.warehouse.connect import WarehouseEmpty, read_warehouse

            try:
                with read_warehouse(spec) as conn:
                    conn.execute("select 1")
            except WarehouseEmpty:
                return True, "the DuckDB warehouse will be created on the first run"
            return True, "opened the organization's DuckDB warehouse"
        return _test_bigquery(wh, secret)
    except Exception as exc:  # the driver's message is the useful part, whatever the driver
        return False, _scrub(f"{type(exc).__name__}: {exc}".strip(), secret)


def _test_bigquery(wh: BigQueryWarehouse, secret: str | None) -> tuple[bool, str]:
    import json

    from google.cloud import bigquery
    from google.oauth2 import service_account

    credentials = None
    if secret:
        info = json.loads(secret)
        credentials = service_account.Credentials.from_service_account_info(info)
    client = bigquery.Client(project=wh.project, location=wh.location, credentials=credentials)
    client.get_dataset(wh.dataset)
    return True, f"found BigQuery dataset '{wh.dataset}' in project '{wh.project}'"
