"""What an organization's spec declares in its Airbyte workspace, as Airbyte public API request bodies.

Per connection: a source (the connector and its config, secrets filled in) and a connection (its streams
and sync modes, landing in the connection's raw schema through a custom namespace); per organization: one
destination, its warehouse. Syncs are scheduled by Dagster, so every connection is ``manual`` in Airbyte.
Each body also comes in a printable form where every secret is shown as its reference, never its value.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dalgo_core.connectors.config import set_path
from dalgo_core.spec import (
    BigQueryWarehouse,
    ConnectionSpec,
    DuckDBWarehouse,
    OrgSpec,
    PostgresWarehouse,
    SecretRef,
    SourceSpec,
    StreamSpec,
)
from dalgo_core.warehouse.profiles import duckdb_path


class DeclarationError(Exception):
    """A declared object cannot be built (a secret that cannot be read)."""


@dataclass
class Declared:
    """One Airbyte object as the spec declares it."""

    kind: str  # sources | destinations | connections
    name: str
    summary: str
    body: dict[str, Any]  # what is sent to Airbyte, secrets included
    shown: dict[str, Any]  # the same with secrets replaced by their references
    secret_paths: set[str] = field(default_factory=set)  # "configuration.<dotted path>"

    @property
    def secrets_digest(self) -> str | None:
        """A digest of the secret values, so a plan can tell that a secret changed without storing it."""
        if not self.secret_paths:
            return None
        flat = flatten(self.body)
        material = json.dumps([self.kind, self.name, *[(p, flat.get(p)) for p in sorted(self.secret_paths)]])
        return hashlib.sha256(material.encode()).hexdigest()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are leaves."""
    if not isinstance(value, dict) or (prefix and not value):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _with_secrets(
    org: str, where: str, config: dict[str, Any], secrets: dict[str, SecretRef]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config with the secret values, config with the secret references)."""
    real, shown = copy.deepcopy(config), copy.deepcopy(config)
    for dotted, ref in secrets.items():
        try:
            set_path(real, dotted, ref.resolve(org))
        except LookupError as exc:
            raise DeclarationError(f"{where}, secret '{dotted}': {exc}") from None
        set_path(shown, dotted, f"<secret {ref.describe()}>")
    return real, shown


def _declared(kind: str, name: str, summary: str, body: dict, shown: dict, secrets: dict) -> Declared:
    return Declared(kind, name, summary, body, shown, {f"configuration.{p}" for p in secrets})


def declared_source_of(spec: OrgSpec, name: str, source: SourceSpec, where: str = "") -> Declared:
    """The Airbyte source ``name`` with a source's connector and configuration (``where``: how errors name
    it)."""
    config = {"sourceType": source.connector.removeprefix("source-"), **source.config}
    where = where or f"organization '{spec.slug}', source '{name}'"
    real, shown = _with_secrets(spec.slug, where, config, source.secrets)
    workspace = {"workspaceId": spec.ingestion.server.workspace_id} if spec.ingestion.server else {}
    return _declared(
        "sources",
        name,
        source.connector,
        {"name": name, **workspace, "configuration": real},
        {"name": name, **workspace, "configuration": shown},
        source.secrets,
    )


def declared_source(spec: OrgSpec, conn: ConnectionSpec) -> Declared:
    """A connection's source: its named source (shared by the connections that read it), or its own,
    named after the connection."""
    where = f"organization '{spec.slug}', connection '{conn.name}'"
    if conn.source_name:
        where += f", source '{conn.source_name}'"
    return declared_source_of(spec, conn.source_name or conn.name, conn.source, where)


def destination_name(spec: OrgSpec) -> str:
    return f"{spec.slug}_warehouse"


def _warehouse_config(spec: OrgSpec) -> tuple[dict[str, Any], dict[str, SecretRef]]:
    wh = spec.warehouse
    if isinstance(wh, PostgresWarehouse):
        config = {
            "destinationType": "postgres",
            "host": wh.host,
            "port": wh.port,
            "database": wh.database,
            "schema": wh.schema_,
            "username": wh.user,
            "ssl_mode": {"mode": wh.sslmode or "disable"},
        }
        return config, {"password": wh.password}
    if isinstance(wh, BigQueryWarehouse):
        config = {
            "destinationType": "bigquery",
            "project_id": wh.project,
            "dataset_id": wh.dataset,
            "dataset_location": wh.location,
            "loading_method": {"method": "Standard"},
        }
        return config, ({"credentials_json": wh.keyfile_json} if wh.keyfile_json else {})
    assert isinstance(wh, DuckDBWarehouse)
    return {"destinationType": "duckdb", "destination_path": str(duckdb_path(spec)), "schema": wh.schema_}, {}


def declared_destination(spec: OrgSpec) -> Declared:
    config, secrets = _warehouse_config(spec)
    real, shown = _with_secrets(spec.slug, f"organization '{spec.slug}', warehouse", config, secrets)
    name = destination_name(spec)
    workspace = {"workspaceId": spec.ingestion.server.workspace_id} if spec.ingestion.server else {}
    return _declared(
        "destinations",
        name,
        spec.warehouse.type,
        {"name": name, **workspace, "configuration": real},
        {"name": name, **workspace, "configuration": shown},
        secrets,
    )


# the connection's schema_change_policy as the public API's nonBreakingSchemaUpdatesBehavior
SCHEMA_POLICIES = {
    "ignore": "ignore",
    "propagate_columns": "propagate_columns",
    "propagate_fully": "propagate_fully",
    "pause": "disable_connection",
}


def sync_mode(stream: StreamSpec) -> str:
    """The public API's sync mode: incremental streams with a primary key are deduplicated."""
    if stream.sync_mode == "full_refresh":
        return "full_refresh_overwrite"
    return "incremental_deduped_history" if stream.primary_key else "incremental_append"


def stream_body(stream: StreamSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"name": stream.name, "syncMode": sync_mode(stream)}
    if stream.cursor_field:
        body["cursorField"] = stream.cursor_field
    if stream.primary_key:
        body["primaryKey"] = stream.primary_key
    return body


def declared_connection(spec: OrgSpec, conn: ConnectionSpec, source_id: str, destination_id: str) -> Declared:
    """The connection body; ``source_id``/``destination_id`` may be placeholders while planning."""
    body = {
        "name": conn.name,
        "sourceId": source_id,
        "destinationId": destination_id,
        "configurations": {"streams": [stream_body(s) for s in conn.streams]},
        "namespaceDefinition": "custom_format",
        "namespaceFormat": conn.destination_schema,
        "prefix": "",
        "schedule": {"scheduleType": "manual"},
        "nonBreakingSchemaUpdatesBehavior": SCHEMA_POLICIES[conn.schema_change_policy],
    }
    summary = f"{len(conn.streams)} stream(s) into schema {conn.destination_schema}"
    return Declared("connections", conn.name, summary, body, body)
