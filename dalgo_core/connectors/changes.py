"""Schema changes of a connection's source: the catalog a connector discovers now against the one the
connection applied, and what the connection's policy does with the difference.

The *applied* catalog of a connection is the JSON schema each of its streams is loaded with, and the names
of every stream the source had when it was last applied (chosen, approved or propagated). Comparing a
discovered catalog with it gives the changes: streams added or removed, columns added, removed or retyped
(a column's kind, ``types.column_kind``, changed). Each connection's ``schema_change_policy`` is Airbyte's
(``nonBreakingSchemaUpdatesBehavior``):

- ``ignore``: the changes are listed, the streams keep loading with the applied schemas;
- ``propagate_columns``: column changes of the connection's streams are applied at the sync (new columns
  load, retyped ones migrate); added and removed streams wait for approval;
- ``propagate_fully``: column changes are applied and a removed stream is no longer synced (its table
  stays); an added stream is chosen by the platform after the sync (``Outcome.adding``: choosing it adds an
  asset, a change of the spec a run cannot make to its own code location), and syncs in full from the next
  sync;
- ``pause``: nothing syncs while changes are pending; a user reviews and approves them.

Approving takes the discovered catalog as the applied one (under ``propagate_fully`` with the added streams
chosen). The two catalogs are kept per connection in the organization's root (``ingestion/<connection>/``),
written by syncs, the API's tasks and approvals.

Every sync that follows the policy reports, per stream of the connection, whether a change waits for
approval (``observations``: the metadata of an observation of the stream's asset, ``dalgo_core.names``),
which the alert dispatcher turns into ``schema_change_pending`` alerts and recoveries, and which streams
the platform is to add.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from dalgo_core import layout
from dalgo_core.connectors.types import column_kind
from dalgo_core.names import (
    SCHEMA_CHANGE_METADATA,
    SCHEMA_CHANGE_PENDING,
    SCHEMA_CHANGE_RESOLVED,
    SCHEMA_CHANGE_STREAMS_ADDED_METADATA,
    SCHEMA_CHANGE_SUMMARY_METADATA,
)

Kind = Literal["stream_added", "stream_removed", "column_added", "column_removed", "column_retyped"]
APPLIED_FILE, DISCOVERED_FILE = "applied_catalog.json", "discovered_catalog.json"
Note = Callable[[str, str], None]  # (level, message)
FULL_PROPAGATION = "propagate_fully"


@dataclass(frozen=True)
class SchemaChange:
    kind: Kind
    stream: str
    column: str | None = None
    old_type: str | None = None
    new_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """As the API shows it: the fields and a sentence."""
        return {**asdict(self), "description": self.describe()}

    @property
    def column_level(self) -> bool:
        return self.column is not None

    def describe(self) -> str:
        if self.kind == "stream_added":
            return f"stream '{self.stream}' added"
        if self.kind == "stream_removed":
            return f"stream '{self.stream}' removed"
        what = f"stream '{self.stream}': column '{self.column}'"
        if self.kind == "column_retyped":
            return f"{what} changed type from {self.old_type} to {self.new_type}"
        return f"{what} {'added' if self.kind == 'column_added' else 'removed'}"


def describe(changes: list[SchemaChange]) -> str:
    return "; ".join(c.describe() for c in changes)


@dataclass
class AppliedCatalog:
    """The JSON schema each chosen stream loads with, and every stream name the source had."""

    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    known: list[str] = field(default_factory=list)

    @classmethod
    def from_discovered(cls, discovered: Mapping[str, Mapping[str, Any]], chosen: list[str]) -> AppliedCatalog:
        return cls(
            streams={s: dict(discovered[s].get("json_schema") or {}) for s in chosen if s in discovered},
            known=sorted(discovered),
        )


def _columns(json_schema: Mapping[str, Any]) -> dict[str, str]:
    return {name: column_kind(prop) for name, prop in (json_schema.get("properties") or {}).items()}


def diff(applied: AppliedCatalog, discovered: Mapping[str, Mapping[str, Any]], chosen: list[str]) -> list[SchemaChange]:
    """What changed in the source since the catalog was applied: streams added and removed, and the
    column changes of the chosen streams."""
    known = set(applied.known) | set(applied.streams)
    changes = [SchemaChange("stream_added", s) for s in sorted(discovered) if s not in known]
    changes += [SchemaChange("stream_removed", s) for s in sorted(known) if s not in discovered]
    for stream in chosen:
        if stream not in discovered or stream not in applied.streams:
            continue
        old, new = _columns(applied.streams[stream]), _columns(discovered[stream].get("json_schema") or {})
        changes += [SchemaChange("column_added", stream, c, new_type=new[c]) for c in new if c not in old]
        changes += [SchemaChange("column_removed", stream, c, old_type=old[c]) for c in old if c not in new]
        changes += [
            SchemaChange("column_retyped", stream, c, old[c], new[c]) for c in new if c in old and old[c] != new[c]
        ]
    return changes


@dataclass
class Outcome:
    """What a sync does with the changes: the catalog to load with (and keep), the changes it applied
    and those left pending, and whether the connection is held until a user approves."""

    applied: AppliedCatalog
    propagated: list[SchemaChange]
    pending: list[SchemaChange]
    held: bool = False
    skipped: list[str] = field(default_factory=list)  # removed streams no longer synced
    adding: list[str] = field(default_factory=list)  # streams added to the source the platform chooses next


def apply_policy(
    policy: str,
    applied: AppliedCatalog,
    discovered: Mapping[str, Mapping[str, Any]],
    chosen: list[str],
) -> Outcome:
    """The sync's answer to the changes under a connection's policy (module docstring)."""
    changes = diff(applied, discovered, chosen)
    if not changes or policy in ("ignore", "pause"):
        return Outcome(applied, [], changes, held=bool(changes) and policy == "pause")
    fully = policy == FULL_PROPAGATION
    columns = [c for c in changes if c.column_level]
    removed = [c for c in changes if c.kind == "stream_removed" and c.stream in chosen]
    added = [c for c in changes if c.kind == "stream_added"] if fully else []
    propagated = columns + (removed if fully else [])
    streams = dict(applied.streams)
    for stream in {c.stream for c in columns}:
        streams[stream] = dict(discovered[stream].get("json_schema") or {})
    known = list(applied.known)
    if fully:
        for change in removed:
            streams.pop(change.stream, None)
        known = [s for s in known if s not in {c.stream for c in removed}]
    pending = [c for c in changes if c not in propagated and c not in added]
    skipped = [c.stream for c in removed] if fully else []
    adding = [c.stream for c in added]
    return Outcome(AppliedCatalog(streams, known), propagated, pending, skipped=skipped, adding=adding)


class SchemaChangesHeld(Exception):
    """The connection's policy is pause and the source changed: the sync does not run."""


def follow_policy(
    org: str,
    connection: Any,
    discovered: Mapping[str, Mapping[str, Any]],
    note: Note,
    report: Callable[[Outcome], None] | None = None,
) -> Outcome:
    """What a sync does with the catalog it just discovered (any engine's): kept as the last discovered,
    compared with the applied one (the first sync's catalog is the baseline) and followed as the
    connection's policy says, each step said through ``note`` and the outcome given to ``report`` (also
    when the policy pauses the sync); ``SchemaChangesHeld`` when it pauses."""
    chosen = [s.name for s in connection.streams]
    save_discovered(org, connection.name, discovered)
    applied = load_applied(org, connection.name)
    if applied is None:  # the first sync (or a connection written by hand): today's catalog is the baseline
        baseline = AppliedCatalog.from_discovered(discovered, chosen)
        save_applied(org, connection.name, baseline)
        outcome = Outcome(baseline, [], [])
    else:
        outcome = apply_policy(connection.schema_change_policy, applied, discovered, chosen)
    if report is not None:
        report(outcome)
    if outcome.held:
        raise SchemaChangesHeld(
            "the source's schema changed and the connection's policy is to pause: "
            f"{describe(outcome.pending)}; review and approve the changes "
            f"(POST /api/connections/{connection.name}/schema-changes/approve) to sync again"
        )
    if outcome.propagated:
        note("warning", f"schema changes applied ({connection.schema_change_policy}): {describe(outcome.propagated)}")
        save_applied(org, connection.name, outcome.applied)
    if outcome.pending:
        note("warning", f"schema changes waiting for approval: {describe(outcome.pending)}")
    for stream in outcome.skipped:
        note("warning", f"stream '{stream}' is no longer in the source: not synced (its table stays)")
    if outcome.adding:
        note(
            "warning",
            f"streams added to the source ({connection.schema_change_policy}): {', '.join(outcome.adding)}; the "
            "platform adds them to the connection after this sync, each syncs in full at the next sync",
        )
    return outcome


# --- what a sync reports, per stream: a change waiting for approval, streams to add ---------------


def waiting(connection: Any, pending: list[SchemaChange], held: bool) -> dict[str, list[SchemaChange]]:
    """Per stream of the connection, the changes it waits on: its own (columns, its removal) and the
    connection's streams added or removed, which only an approval of the connection applies; every change
    when the connection is held (none of its streams syncs)."""
    chosen = [s.name for s in connection.streams]
    if held:
        return {stream: list(pending) for stream in chosen}
    shared = [c for c in pending if c.stream not in chosen]
    return {stream: [c for c in pending if c.stream == stream] + shared for stream in chosen}


def observations(connection: Any, outcome: Outcome) -> dict[str, dict[str, Any]]:
    """Per stream of the connection, the metadata of the observation of its asset that reports it
    (``dalgo_core.names``): pending with what waits, or resolved; and the streams the platform is to add."""
    found = {}
    for stream, waits in waiting(connection, outcome.pending, outcome.held).items():
        metadata: dict[str, Any] = {SCHEMA_CHANGE_METADATA: SCHEMA_CHANGE_PENDING if waits else SCHEMA_CHANGE_RESOLVED}
        if waits:
            metadata[SCHEMA_CHANGE_SUMMARY_METADATA] = describe(waits)
        if outcome.adding:
            metadata[SCHEMA_CHANGE_STREAMS_ADDED_METADATA] = list(outcome.adding)
        found[stream] = metadata
    return found


def approved(connection: Any) -> dict[str, dict[str, Any]]:
    """The observations of an approval: no stream of the connection waits any more."""
    return observations(connection, Outcome(AppliedCatalog(), [], []))


def adopt(org: str, connection: str, streams: list[str]) -> None:
    """Apply the schemas of streams the connection now chooses (added to the source, then to the
    connection): they are known and load with the catalog last discovered."""
    applied, discovered = load_applied(org, connection), load_discovered(org, connection)
    if applied is None or discovered is None:
        return
    for stream in streams:
        if stream in discovered.streams:
            applied.streams[stream] = dict(discovered.streams[stream].get("json_schema") or {})
    applied.known = sorted(set(applied.known) | set(streams))
    save_applied(org, connection, applied)


# --- the two catalogs of a connection, in the organization's root ---------------------------------


def catalog_dir(org: str, connection: str) -> Path:
    return layout.inside(layout.org_root(org), "ingestion", connection)


def _write(path: Path, data: Any) -> None:
    layout.write_org_file(path, json.dumps(data).encode())


def _read(path: Path) -> Any | None:
    try:
        return json.loads(layout.read_org_file(path))
    except (FileNotFoundError, ValueError):  # layout's refusals included: read as no catalog
        return None


def load_applied(org: str, connection: str) -> AppliedCatalog | None:
    data = _read(catalog_dir(org, connection) / APPLIED_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
        return None
    return AppliedCatalog(streams=data["streams"], known=[str(s) for s in data.get("known") or []])


def save_applied(org: str, connection: str, catalog: AppliedCatalog) -> None:
    _write(catalog_dir(org, connection) / APPLIED_FILE, asdict(catalog))


@dataclass(frozen=True)
class Discovered:
    streams: dict[str, dict[str, Any]]
    at: str  # ISO time of the discover


def load_discovered(org: str, connection: str) -> Discovered | None:
    data = _read(catalog_dir(org, connection) / DISCOVERED_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
        return None
    return Discovered(streams=data["streams"], at=str(data.get("at") or ""))


def save_discovered(org: str, connection: str, streams: Mapping[str, Mapping[str, Any]]) -> Discovered:
    found = Discovered(streams={k: dict(v) for k, v in streams.items()}, at=datetime.now(UTC).isoformat())
    _write(catalog_dir(org, connection) / DISCOVERED_FILE, asdict(found))
    return found


def forget(org: str, connection: str) -> None:
    """Drop a connection's catalogs (the connection was deleted)."""
    import shutil

    shutil.rmtree(catalog_dir(org, connection), ignore_errors=True)
