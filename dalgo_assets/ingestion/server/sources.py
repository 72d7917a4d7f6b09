"""Sources of an organization on its Airbyte server, for the API's tasks: a connector's spec, a
configuration's check, a source's streams, a connection's schema changes and their approval, and the
workspace brought to the spec. Each goes through dagster-airbyte's client (``DalgoAirbyteClient``) to
Airbyte's configuration API, where Airbyte runs the connector itself:

- spec: ``source_definitions/list_for_workspace`` finds the connector's definition (its Docker repository
  ``airbyte/<connector>``), ``source_definition_specifications/get`` its spec;
- check: ``scheduler/sources/check_connection`` (a configuration not saved yet);
- discover: the source is created or updated in the workspace (named as in the spec), then
  ``sources/discover_schema``;
- schema changes: Airbyte applies its own policy at each sync (``nonBreakingSchemaUpdatesBehavior``); on
  demand, the connection's catalog (``connections/get``) is compared with the source's discovered one, and
  approving writes the discovered catalog to the connection (``connections/update``, active again).
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from dalgo_assets.ingestion.server.client import DalgoAirbyteClient
from dalgo_assets.ingestion.server.declared import declared_source_of
from dalgo_assets.ingestion.server.reconcile import apply, make_plan
from dalgo_assets.ingestion.server.resource import airbyte_client
from dalgo_assets.ingestion.server.state import connection_id, read_state, write_state
from dalgo_core import layout
from dalgo_core.connectors.changes import AppliedCatalog
from dalgo_core.connectors.streams import protocol_stream
from dalgo_core.spec import ConnectionSpec, OrgSpec, SourceSpec

Progress = Callable[[str], None]


def _definition(client: DalgoAirbyteClient, connector: str) -> Mapping[str, Any]:
    found = client.config_call("source_definitions/list_for_workspace", {"workspaceId": client.workspace_id})
    repository = f"airbyte/{connector}"
    for definition in found.get("sourceDefinitions") or []:
        if definition.get("dockerRepository") == repository:
            return definition
    raise dg.Failure(f"the Airbyte server has no connector {repository} in workspace {client.workspace_id}")


def read_spec(spec: OrgSpec, connector: str, progress: Progress) -> dict[str, Any]:
    client = airbyte_client(spec)
    progress(f"reading the specification of {connector} from the Airbyte server")
    definition = _definition(client, connector)
    found = client.config_call(
        "source_definition_specifications/get",
        {"sourceDefinitionId": definition["sourceDefinitionId"], "workspaceId": client.workspace_id},
    )
    return {
        "documentationUrl": found.get("documentationUrl") or definition.get("documentationUrl"),
        "connectionSpecification": found.get("connectionSpecification") or {},
    }


def check(spec: OrgSpec, connector: str, config: Mapping[str, Any], progress: Progress) -> tuple[bool, str]:
    """Airbyte's check of a configuration not saved yet: (succeeded, Airbyte's message)."""
    client = airbyte_client(spec)
    definition = _definition(client, connector)
    progress(f"checking the configuration with {connector} on the Airbyte server")
    found = client.config_call(
        "scheduler/sources/check_connection",
        {
            "sourceDefinitionId": definition["sourceDefinitionId"],
            "connectionConfiguration": dict(config),
            "workspaceId": client.workspace_id,
        },
    )
    succeeded = str(found.get("status", "")).lower() == "succeeded"
    return succeeded, str(found.get("message") or ("the connection check succeeded" if succeeded else "failed"))


def ensure_source(spec: OrgSpec, client: DalgoAirbyteClient, name: str, source: SourceSpec) -> str:
    """The Airbyte source named ``name`` with the source's configuration (created or updated); its id is
    recorded with the organization's Airbyte ids."""
    declared = declared_source_of(spec, name, source)
    state = read_state(spec)
    recorded = (state.get("sources") or {}).get(name) or {}
    existing = {s["sourceId"]: s for s in client.list_items("sources")}
    found = existing.get(recorded.get("source_id", "")) or next(
        (s for s in existing.values() if s.get("name") == name), None
    )
    if found is None:
        source_id = str(client.create_item("sources", declared.body)["sourceId"])
    else:
        source_id = str(found["sourceId"])
        client.update_item("sources", source_id, {k: v for k, v in declared.body.items() if k != "workspaceId"})
    state.setdefault("sources", {})[name] = {"source_id": source_id, "secrets_digest": declared.secrets_digest}
    write_state(spec, state)
    return source_id


def _streams(catalog: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A configuration API catalog's streams by name, in the protocol's shape."""
    return {s["stream"]["name"]: protocol_stream(s["stream"]) for s in catalog.get("streams") or []}


def _discover(client: DalgoAirbyteClient, source_id: str) -> dict[str, dict[str, Any]]:
    found = client.config_call("sources/discover_schema", {"sourceId": source_id, "disable_cache": True})
    job = found.get("jobInfo") or {}
    if job.get("succeeded") is False or found.get("catalog") is None:
        reason = (job.get("failureReason") or {}).get("externalMessage") or "Airbyte found no catalog"
        raise dg.Failure(f"discover failed on the Airbyte server: {reason}")
    return _streams(found["catalog"])


def discover(spec: OrgSpec, name: str, source: SourceSpec, progress: Progress) -> dict[str, dict[str, Any]]:
    client = airbyte_client(spec)
    progress(f"saving source '{name}' on the Airbyte server")
    source_id = ensure_source(spec, client, name, source)
    progress(f"discovering the streams of {source.connector} on the Airbyte server")
    return _discover(client, source_id)


def _connection(spec: OrgSpec, connection: ConnectionSpec) -> tuple[DalgoAirbyteClient, Mapping[str, Any]]:
    cid = connection_id(spec, connection)
    if not cid:
        raise dg.Failure(f"connection '{connection.name}' is not on the Airbyte server yet (apply the spec first)")
    client = airbyte_client(spec)
    return client, client.config_call("connections/get", {"connectionId": cid})


def connection_catalogs(
    spec: OrgSpec, connection: ConnectionSpec, progress: Progress
) -> tuple[dict[str, dict[str, Any]], AppliedCatalog]:
    """(the source's catalog discovered now, the connection's catalog on the server)."""
    client, found = _connection(spec, connection)
    progress(f"discovering the streams of {connection.source.connector} on the Airbyte server")
    discovered = _discover(client, found["sourceId"])
    entries = (found.get("syncCatalog") or {}).get("streams") or []
    applied = AppliedCatalog(
        streams={
            e["stream"]["name"]: dict(e["stream"].get("jsonSchema") or {})
            for e in entries
            if (e.get("config") or {}).get("selected", True)
        },
        known=sorted(e["stream"]["name"] for e in entries),
    )
    return discovered, applied


def approve(
    spec: OrgSpec, connection: ConnectionSpec, discovered: Mapping[str, Mapping[str, Any]], progress: Progress
) -> None:
    """Write the discovered catalog to the connection (its streams' choices kept), and make it active."""
    client, found = _connection(spec, connection)
    configs = {
        e["stream"]["name"]: e.get("config") or {} for e in (found.get("syncCatalog") or {}).get("streams") or []
    }
    streams = []
    for name, stream in discovered.items():
        config = {
            "selected": False,
            "syncMode": "full_refresh",
            "destinationSyncMode": "overwrite",
            **configs.get(name, {}),
        }
        streams.append(
            {
                "stream": {
                    "name": name,
                    "jsonSchema": stream.get("json_schema") or {},
                    "supportedSyncModes": stream.get("supported_sync_modes") or ["full_refresh"],
                    "sourceDefinedCursor": stream.get("source_defined_cursor", False),
                    "defaultCursorField": stream.get("default_cursor_field") or [],
                    "sourceDefinedPrimaryKey": stream.get("source_defined_primary_key") or [],
                    "namespace": stream.get("namespace"),
                },
                "config": config,
            }
        )
    progress(f"applying the source's catalog to Airbyte connection {found['connectionId']}")
    client.config_call(
        "connections/update",
        {"connectionId": found["connectionId"], "syncCatalog": {"streams": streams}, "status": "active"},
    )


def apply_spec(spec: OrgSpec, progress: Progress) -> list[str]:
    """Make the workspace match the spec (``dalgo airbyte apply``); the plan applied, line by line. One
    apply of an organization at a time (two tasks must not both create its destination)."""
    client = airbyte_client(spec)
    with layout.lock_file(f"{spec.slug}.airbyte-apply").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        progress("comparing the Airbyte workspace with the organization's spec")
        plan = make_plan(spec, client)
        if plan.has_changes:
            progress("applying the changes to the Airbyte workspace")
            apply(spec, client, plan)
    return plan.render().splitlines()
