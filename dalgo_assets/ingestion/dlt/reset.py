"""A database or file connection's reset: its streams' tables (on PostgreSQL with the views built on
them) and dlt state dropped from the warehouse by the worker, so the next sync reads them in full (the job
around it: ``dalgo_assets/ingestion/reset.py``)."""

import dagster as dg

from dalgo_assets.ingestion.dlt.run import DltRun, DltSyncError
from dalgo_assets.ingestion.reset import reset_job
from dalgo_core.spec import ConnectionSpec, OrgSpec


def dlt_reset_job(spec: OrgSpec, connection: ConnectionSpec) -> dg.JobDefinition:
    def action(context: dg.OpExecutionContext, streams: list[str] | None) -> list[str]:
        names = streams or [s.name for s in connection.streams]
        run = DltRun(spec, connection, context.resources.warehouse, lambda level, message: context.log.debug(message))
        try:
            return run.reset(names)
        except DltSyncError as exc:
            raise dg.Failure(description=str(exc)) from None

    return reset_job(spec, connection, "warehouse", action)
