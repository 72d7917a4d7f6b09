"""Connections as code: how an organization's Airbyte workspace differs from its spec, and applying the spec.

``make_plan`` reads the workspace (sources, destinations, connections through the public API) and pairs
each declared object with what exists: by the id ``apply`` recorded (``state.py``) or the spec's
``airbyte_connection_id``, else by name. ``apply`` creates or updates the destination, then each
connection's source and connection, recording the ids after each step so a half-finished apply is
picked up by the next one. Nothing is ever deleted: objects in the workspace that the spec does not
declare are listed and left alone.

Secrets are never compared by value (Airbyte masks them): ``apply`` records a digest of the values it
sent, and the plan shows an update when the values behind the references no longer match it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dalgo_assets.ingestion.server.client import DalgoAirbyteClient
from dalgo_assets.ingestion.server.declared import (
    Declared,
    declared_connection,
    declared_destination,
    declared_source,
    flatten,
)
from dalgo_assets.ingestion.server.state import read_state, write_state
from dalgo_core.spec import ConnectionSpec, OrgSpec

ID_KEYS = {"sources": "sourceId", "destinations": "destinationId", "connections": "connectionId"}
MASK = "**********"
SYMBOLS = {"create": "+", "update": "~", "unchanged": "="}
# fields Airbyte does not let a PATCH change
IMMUTABLE = ("workspaceId", "sourceId", "destinationId")

Diff = tuple[str, Any, Any]  # (field, what exists, what the spec declares)


class ReconcileError(Exception):
    """The workspace cannot be brought to the spec without a decision only a person can make."""


@dataclass
class Change:
    declared: Declared
    existing: Mapping[str, Any] | None
    diffs: list[Diff] = field(default_factory=list)

    @property
    def action(self) -> str:
        if self.existing is None:
            return "create"
        return "update" if self.diffs else "unchanged"

    @property
    def existing_id(self) -> str | None:
        return self.existing[ID_KEYS[self.declared.kind]] if self.existing else None


@dataclass
class ConnectionPlan:
    conn: ConnectionSpec
    source: Change
    connection: Change


@dataclass
class Plan:
    org: str
    url: str
    workspace_id: str
    destination: Change
    connections: list[ConnectionPlan]
    unmanaged: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [self.destination, *[c for cp in self.connections for c in (cp.source, cp.connection)]]

    @property
    def has_changes(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def render(self) -> str:
        lines = [f"organization '{self.org}': Airbyte workspace {self.workspace_id} at {self.url}"]
        for change in self.changes:
            lines.extend(_render_change(change))
        for item in self.unmanaged:
            lines.append(f"? connection {item['name']} ({item['connectionId']}) is not in the spec; left alone")
        counts = {a: sum(c.action == a for c in self.changes) for a in SYMBOLS}
        if self.has_changes:
            lines.append(
                f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['unchanged']} unchanged."
            )
        else:
            lines.append(f"No changes: the workspace matches the spec ({counts['unchanged']} object(s)).")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(absent)"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _render_change(change: Change) -> list[str]:
    d = change.declared
    head = f"{SYMBOLS[change.action]} {d.kind[:-1]} {d.name} ({d.summary})"
    if change.action == "unchanged":
        return [head + ": unchanged"]
    if change.action == "update":
        return [
            head + ": update",
            *[f"      {k}: {_show(old)} -> {_show(new)}" for k, old, new in change.diffs],
        ]
    if d.kind == "connections":
        streams = {s["name"]: s for s in d.body["configurations"]["streams"]}
        ends = {k: d.body[k] for k in ("sourceId", "destinationId")}
        fields = {**ends, **_connection_view(d.body, streams)}
    else:
        fields = flatten({k: v for k, v in d.shown.items() if k not in ("name", "workspaceId")})
    shown = [f"      {k}: {_show(v)}" for k, v in fields.items() if k != "name" and v is not None]
    return [head + ": create", *shown]


# -- comparing ------------------------------------------------------------------------------------


def _connection_view(body: Mapping[str, Any], declared_streams: Mapping[str, Mapping[str, Any]]) -> dict:
    keys = ("name", "namespaceDefinition", "namespaceFormat", "prefix", "nonBreakingSchemaUpdatesBehavior")
    view = {k: body.get(k) or None for k in keys}
    view["schedule.scheduleType"] = (body.get("schedule") or {}).get("scheduleType")
    for stream in (body.get("configurations") or {}).get("streams") or []:
        name = stream["name"]
        view[f"streams.{name}.syncMode"] = stream.get("syncMode")
        # Airbyte fills in source-defined cursors and keys: compare them only where the spec sets them
        for key in ("cursorField", "primaryKey"):
            if key in declared_streams.get(name, {}):
                view[f"streams.{name}.{key}"] = stream.get(key) or None
    return view


def _config_view(body: Mapping[str, Any], secret_paths: set[str]) -> dict:
    flat = flatten({"name": body.get("name"), "configuration": body.get("configuration") or {}})
    return {k: v for k, v in flat.items() if k not in secret_paths and v != MASK}


def _diffs(declared: Declared, existing: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[Diff]:
    if declared.kind == "connections":
        streams = {s["name"]: s for s in declared.body["configurations"]["streams"]}
        want, have = _connection_view(declared.body, streams), _connection_view(existing, streams)
        compared = want.keys() | have.keys()  # a stream only Airbyte syncs is a difference
    else:
        want = _config_view(declared.body, declared.secret_paths)
        have = _config_view(existing, declared.secret_paths)
        # a field only Airbyte has may be a connector default it filled in: compare what the spec sets
        compared = want.keys()
    diffs = [(k, have.get(k), want.get(k)) for k in sorted(compared) if have.get(k) != want.get(k)]
    digest = declared.secrets_digest
    same_object = recorded.get("id") == existing[ID_KEYS[declared.kind]]
    if digest and (not same_object or recorded.get("secrets_digest") != digest):
        paths = ", ".join(sorted(declared.secret_paths))
        diffs.append(("secrets", f"not the values last applied ({paths})", "values from the spec's references"))
    return diffs


def _change(declared: Declared, existing: Mapping[str, Any] | None, recorded: Mapping[str, Any]) -> Change:
    return Change(declared, existing, _diffs(declared, existing, recorded) if existing else [])


# -- pairing declared objects with existing ones ---------------------------------------------------


def _find(
    items: list[Mapping[str, Any]], kind: str, wanted_id: str | None, name: str | None, where: str
) -> Mapping[str, Any] | None:
    """The item with ``wanted_id``, else the one named ``name`` (if a name is given)."""
    key = ID_KEYS[kind]
    for item in items:
        if wanted_id and item[key] == wanted_id:
            return item
    named = [i for i in items if name is not None and i.get("name") == name]
    if len(named) > 1:
        ids = ", ".join(i[key] for i in named)
        raise ReconcileError(f"{where}: {len(named)} {kind} named '{name}' in the workspace ({ids}); keep one")
    return named[0] if named else None


def make_plan(spec: OrgSpec, client: DalgoAirbyteClient) -> Plan:
    """Compare the spec with the workspace; reads Airbyte and the recorded ids, changes nothing."""
    org = spec.slug
    client.validate_workspace_id()
    existing = {kind: list(client.list_items(kind)) for kind in ID_KEYS}
    state = read_state(spec)
    recorded_dest = state.get("destination") or {}
    dest_decl = declared_destination(spec)
    dest = _find(
        existing["destinations"],
        "destinations",
        recorded_dest.get("id"),
        dest_decl.name,
        f"organization '{org}'",
    )
    dest_id = dest["destinationId"] if dest else f"(new destination {dest_decl.name})"
    plans, claimed = [], set()
    for conn in spec.airbyte_connections:  # database and file sources are not Airbyte's
        where = f"organization '{org}', connection '{conn.name}'"
        recorded = state["connections"].get(conn.name) or {}
        if conn.airbyte_connection_id:
            found = _find(existing["connections"], "connections", conn.airbyte_connection_id, None, where)
            if found is None:
                raise ReconcileError(
                    f"{where}: airbyte_connection_id {conn.airbyte_connection_id} is not a connection "
                    f"of workspace {client.workspace_id}"
                )
        else:
            found = _find(existing["connections"], "connections", recorded.get("connection_id"), conn.name, where)
        src_decl = declared_source(spec, conn)
        if found:  # an existing connection keeps its source: find that one, never another by name
            src = _find(existing["sources"], "sources", found["sourceId"], None, where)
        else:  # a named source may exist already (a discover created it, or another connection reads it)
            named = (state.get("sources") or {}).get(conn.source_name or "") or {}
            src_id = recorded.get("source_id") or named.get("source_id")
            src = _find(existing["sources"], "sources", src_id, src_decl.name, where)
        _check_pairing(where, found, src, src_decl, dest_id)
        source = _change(
            src_decl,
            src,
            {"id": recorded.get("source_id"), "secrets_digest": recorded.get("source_secrets_digest")},
        )
        conn_decl = declared_connection(spec, conn, src["sourceId"] if src else f"(new source {conn.name})", dest_id)
        plans.append(ConnectionPlan(conn, source, _change(conn_decl, found, {})))
        if found:
            claimed.add(found["connectionId"])
    return Plan(
        org=org,
        url=client.rest_api_base_url.removesuffix("/api/public/v1"),
        workspace_id=client.workspace_id,
        destination=_change(dest_decl, dest, recorded_dest),
        connections=plans,
        unmanaged=[c for c in existing["connections"] if c["connectionId"] not in claimed],
    )


def _check_pairing(where: str, found: Mapping | None, src: Mapping | None, src_decl: Declared, dest_id: str) -> None:
    """Airbyte cannot change a connection's source or destination, nor a source's connector, in place."""
    if src is not None:
        have = (src.get("configuration") or {}).get("sourceType") or src.get("sourceType")
        want = src_decl.body["configuration"]["sourceType"]
        if have and have != want:
            raise ReconcileError(
                f"{where}: the Airbyte source {src['sourceId']} is source-{have}, "
                f"the spec says source-{want}; "
                "Airbyte cannot change a source's connector: delete that connection and source in Airbyte, "
                "or give the connection a new name, then apply"
            )
    if found is not None and found["destinationId"] != dest_id:
        raise ReconcileError(
            f"{where}: Airbyte connection {found['connectionId']} writes to "
            f"destination {found['destinationId']}, "
            f"not the organization's warehouse destination {dest_id}; Airbyte cannot move a connection: "
            "delete it in Airbyte (or rename the connection in the spec) and apply again"
        )


# -- applying -------------------------------------------------------------------------------------


def _apply_change(client: DalgoAirbyteClient, change: Change) -> str:
    kind, body = change.declared.kind, change.declared.body
    if change.action == "create":
        return str(client.create_item(kind, body)[ID_KEYS[kind]])
    if change.action == "update":
        client.update_item(kind, str(change.existing_id), {k: v for k, v in body.items() if k not in IMMUTABLE})
    return str(change.existing_id)


def apply(spec: OrgSpec, client: DalgoAirbyteClient, plan: Plan | None = None) -> Plan:
    """Make the workspace match the spec and record the ids; returns the plan that was applied."""
    plan = plan or make_plan(spec, client)
    state = read_state(spec)
    dest_id = _apply_change(client, plan.destination)
    state["destination"] = {"id": dest_id, "secrets_digest": plan.destination.declared.secrets_digest}
    write_state(spec, state)
    applied: dict[str, str] = {}  # Airbyte source ids by name: a named source is applied once
    for cp in plan.connections:
        name = cp.source.declared.name
        source_id = applied.get(name) or _apply_change(client, cp.source)
        applied[name] = source_id
        if cp.conn.source_name:
            state.setdefault("sources", {})[name] = {"source_id": source_id}
        declared = declared_connection(spec, cp.conn, source_id, dest_id)
        connection_id = _apply_change(client, replace(cp.connection, declared=declared))
        state["connections"][cp.conn.name] = {
            "connection_id": connection_id,
            "source_id": source_id,
            "source_secrets_digest": cp.source.declared.secrets_digest,
        }
        write_state(spec, state)
    return plan
