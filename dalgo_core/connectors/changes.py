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
  stays); an added stream waits for approval, because choosing it adds an asset (a change of the spec);
- ``pause``: nothing syncs while changes are pending; a user reviews and approves them.

Approving takes the discovered catalog as the applied one. The two catalogs are kept per connection in
the organization's root (``ingestion/<connection>/``), written by syncs, the API's tasks and approvals.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from dalgo_core import layout
from dalgo_core.connectors.types import column_kind

Kind = Literal["stream_added", "stream_removed", "column_added", "column_removed", "column_retyped"]
APPLIED_FILE, DISCOVERED_FILE = "applied_catalog.json", "discovered_catalog.json"
Note = Callable[[str, str], None]  # (level, message)


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
    columns = [c for c in changes if c.column_level]
    removed = [c for c in changes if c.kind == "stream_removed" and c.stream in chosen]
    propagated = columns + (removed if policy == "propagate_fully" else [])
    streams = dict(applied.streams)
    for stream in {c.stream for c in columns}:
        streams[stream] = dict(discovered[stream].get("json_schema") or {})
    known = list(applied.known)
    if policy == "propagate_fully":
        for change in removed:
            streams.pop(change.stream, None)
        known = [s for s in known if s not in {c.stream for c in removed}]
    pending = [c for c in changes if c not in propagated]
    skipped = [c.stream for c in removed] if policy == "propagate_fully" else []
    return Outcome(AppliedCatalog(streams, known), propagated, pending, skipped=skipped)


class SchemaChangesHeld(Exception):
    """The connection's policy is pause and the source changed: the sync does not run."""


def follow_policy(org: str, connection: Any, discovered: Mapping[str, Mapping[str, Any]], note: Note) -> Outcome:
    """What a sync does with the catalog it just discovered (any engine's): kept as the last discovered,
    compared with the applied one (the first sync's catalog is the baseline) and followed as the
    connection's policy says, each step said through ``note``; ``SchemaChangesHeld`` when it pauses."""
    chosen = [s.name for s in connection.streams]
    save_discovered(org, connection.name, discovered)
    applied = load_applied(org, connection.name)
    if applied is None:  # the first sync (or a connection written by hand): today's catalog is the baseline
        baseline = AppliedCatalog.from_discovered(discovered, chosen)
        save_applied(org, connection.name, baseline)
        return Outcome(baseline, [], [])
    outcome = apply_policy(connection.schema_change_policy, applied, discovered, chosen)
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
    return outcome


# --- the two catalogs of a connection, in the organization's root ---------------------------------


def catalog_dir(org: str, connection: str) -> Path:
    return layout.inside(layout.org_root(org), "ingestion", connection)


def _write(path: Path, data: Any) -> None:
    """Atomically, through a new file (never through a link planted in the tenant's root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalog-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def _read(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
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
