"""A reset of a connection, or of some of its streams: their tables and connector state dropped from
the organization's warehouse, so the next sync reads them in full and creates the tables anew.

``reset_connection`` does it in one transaction (what ``dalgo reset`` and the reset job run); each
connection has a reset job, ``<org>__<connection>__reset`` (``dalgo_core.names``), whose run config
names the streams (none: all of them). The job holds the connection's pool, so a reset never runs beside
a sync of that connection, and on DuckDB it is a warehouse writer like the syncs. On PostgreSQL the
views built on a dropped table (dbt's) are dropped with it, and said so; dbt creates them again at its
next build. A connection-wide (GLOBAL) state is dropped as well, even by a reset of some streams: the
connector resumes every stream from it, so the reset streams would not be read in full otherwise.
"""

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from pydantic import Field

from dalgo_assets.ingestion.embedded.loaders import open_loader
from dalgo_assets.ingestion.embedded.state import GLOBAL_KEY
from dalgo_assets.warehouse import WarehouseResource
from dalgo_assets.warehouse.writers import writer_tags
from dalgo_core.names import CONNECTION_TAG, ORG_TAG, connection_pool, reset_job_name, reset_op_name
from dalgo_core.spec import ConnectionSpec, OrgSpec


class UnknownStreams(ValueError):
    """Streams a reset names that the connection does not have."""


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


def reset_streams(connection: ConnectionSpec, streams: list[str] | None) -> list[str]:
    """The streams a reset covers, in the spec's order (all of them when none are named)."""
    known = [s.name for s in connection.streams]
    if not streams:
        return known
    unknown = [s for s in streams if s not in known]
    if unknown:
        raise UnknownStreams(
            f"connection '{connection.name}' has no stream {', '.join(repr(s) for s in unknown)} "
            f"(its streams: {', '.join(known)})"
        )
    return [s for s in known if s in streams]


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


class ResetConfig(dg.Config):
    streams: list[str] = Field(default_factory=list, description="the streams to reset; none: every stream")


def reset_job(spec: OrgSpec, connection: ConnectionSpec) -> dg.JobDefinition:
    """The connection's reset job: one op, holding the connection's pool."""
    org = spec.slug

    @dg.op(
        name=reset_op_name(org, connection.name),
        pool=connection_pool(org, connection.name),
        tags=writer_tags(spec),
        description=f"Drop the tables and state of streams of connection '{connection.name}'",
    )
    def reset(context: dg.OpExecutionContext, config: ResetConfig, warehouse: WarehouseResource) -> None:
        try:
            result = reset_connection(org, connection, warehouse, config.streams)
        except UnknownStreams as exc:
            raise dg.Failure(description=str(exc)) from None
        except Exception as exc:
            raise dg.Failure(
                description=f"organization '{org}', connection '{connection.name}': the reset failed: {exc}"
            ) from None
        for line in result.lines():
            context.log.info(line)

    @dg.job(
        name=reset_job_name(org, connection.name),
        tags={ORG_TAG: org, CONNECTION_TAG: connection.name},
        description=f"Reset connection '{connection.name}' of {spec.name}: tables and state dropped, next sync full",
    )
    def _job() -> None:
        reset()

    return _job
