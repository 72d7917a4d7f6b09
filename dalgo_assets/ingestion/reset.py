"""A reset of a connection, or of some of its streams: their data and state cleared, the next sync a
full one. Each connection has a reset job, ``<org>__<connection>__reset`` (``dalgo_core.names``), whose
run config names the streams (none: all of them); it holds the pool of the connection's syncs, so a
reset never runs beside a sync of that connection, and on DuckDB it is a warehouse writer like the syncs
(the warehouse's pool, ``dalgo_core.pools``). What the op
does is the ingestion mode's: embedded connections drop their tables and state in the organization's
warehouse (``embedded/reset.py``), an Airbyte server's connections run Airbyte's own reset job
(``server/reset.py``).
"""

from collections.abc import Callable

import dagster as dg
from pydantic import Field

from dalgo_assets.warehouse.writers import writer_tags
from dalgo_core.names import CONNECTION_TAG, ORG_TAG, reset_job_name, reset_op_name
from dalgo_core.pools import sync_pool
from dalgo_core.spec import ConnectionSpec, OrgSpec

# (the op's context, the streams to reset: all of them when None) -> what was done, one line each
ResetAction = Callable[[dg.OpExecutionContext, list[str] | None], list[str]]


class UnknownStreams(ValueError):
    """Streams a reset names that the connection does not have."""


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


class ResetConfig(dg.Config):
    streams: list[str] = Field(default_factory=list, description="the streams to reset; none: every stream")


def reset_job(spec: OrgSpec, connection: ConnectionSpec, resource_key: str, action: ResetAction) -> dg.JobDefinition:
    """The connection's reset job: one op, holding the pool of the connection's syncs, running ``action``."""
    org = spec.slug

    @dg.op(
        name=reset_op_name(org, connection.name),
        pool=sync_pool(spec, connection.name),
        tags=writer_tags(spec),
        required_resource_keys={resource_key},
        description=f"Clear the data and state of streams of connection '{connection.name}'",
    )
    def reset(context: dg.OpExecutionContext, config: ResetConfig) -> None:
        try:
            streams = reset_streams(connection, config.streams)
            lines = action(context, streams if config.streams else None)
        except (UnknownStreams, dg.Failure) as exc:
            raise dg.Failure(description=getattr(exc, "description", None) or str(exc)) from None
        except Exception as exc:
            raise dg.Failure(
                description=f"organization '{org}', connection '{connection.name}': the reset failed: {exc}"
            ) from None
        for line in lines:
            context.log.info(line)

    @dg.job(
        name=reset_job_name(org, connection.name),
        tags={ORG_TAG: org, CONNECTION_TAG: connection.name},
        description=f"Reset connection '{connection.name}' of {spec.name}: data and state cleared, next sync full",
    )
    def _job() -> None:
        reset()

    return _job
