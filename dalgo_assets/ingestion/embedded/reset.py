"""An embedded connection's reset: the tables and connector state of its streams (all, or those
named) dropped from the organization's warehouse in one transaction, so the next sync reads them in
full and creates the tables anew (the job around it: ``dalgo_assets/ingestion/reset.py``). On
PostgreSQL the views built on a dropped table (dbt's) are dropped with it, and said so; dbt creates them
again at its next build. A connection-wide (GLOBAL) state is dropped as well, even by a reset of some
streams: the connector resumes every stream from it, so the reset streams would not be read in full
otherwise.
"""

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from dalgo_assets.ingestion.embedded.loading import open_loader
from dalgo_assets.ingestion.embedded.state import GLOBAL_KEY
from dalgo_assets.ingestion.reset import reset_job, reset_streams
from dalgo_assets.warehouse import WarehouseResource
from dalgo_core.spec import ConnectionSpec, OrgSpec


@dataclass(frozen=True)
class ResetResult:
    connection: str
    streams: list[str]  # the streams reset
    dropped: list[str] = field(default_factory=list)  # tables (and the views dropped with them)
    states: list[str] = field(default_factory=list)  # streams whose saved state was dropped

    def lines(self) -> list[str]:
        """What was done, one line each, for a run's log and the command line."""
        out = [f"dropped {name}" for name in self.dropped]
        out += [
            "dropped the connection-wide state" if s == GLOBAL_KEY else f"dropped the state of stream '{s}'"
            for s in self.states
        ]
        if not out:
            out.append("nothing to drop: no table or state of these streams in the warehouse")
        out.append(f"connection '{self.connection}': {', '.join(self.streams)} will be synced in full at the next sync")
        return out


def reset_connection(
    org: str, connection: ConnectionSpec, warehouse: WarehouseResource, streams: list[str] | None = None
) -> ResetResult:
    """Drop the tables and the saved state of the connection's streams (all, or those named)."""
    names = reset_streams(connection, streams)
    schema = connection.destination_schema
    result = ResetResult(connection.name, names)
    workdir = Path(tempfile.mkdtemp(prefix="dalgo-reset-"))
    try:
        with open_loader(warehouse, workdir) as loader:
            for stream in names:
                result.dropped.extend(loader.drop_stream(schema, stream.lower()))
                if loader.forget_state(schema, org, connection.name, stream):
                    result.states.append(stream)
            if loader.forget_state(schema, org, connection.name, GLOBAL_KEY):
                result.states.append(GLOBAL_KEY)
            loader.commit()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def embedded_reset_job(spec: OrgSpec, connection: ConnectionSpec) -> dg.JobDefinition:
    """The connection's reset job, dropping its tables and state in the organization's warehouse."""

    def action(context: dg.OpExecutionContext, streams: list[str] | None) -> list[str]:
        return reset_connection(spec.slug, connection, context.resources.warehouse, streams).lines()

    return reset_job(spec, connection, "warehouse", action)
