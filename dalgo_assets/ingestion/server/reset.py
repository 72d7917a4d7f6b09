"""A server connection's reset: Airbyte's own reset job, which clears the streams' data in the
destination and their state in Airbyte. A reset of every stream is the public API's ``reset`` job; a
reset of some streams the configuration API's ``connections/reset/stream``, the streams named with the
namespaces of the connection's catalog. The run waits for Airbyte's job and fails with its message."""

from __future__ import annotations

import dagster as dg

from dalgo_assets.ingestion.reset import reset_job
from dalgo_assets.ingestion.server import AIRBYTE_RESOURCE_KEY
from dalgo_core.spec import ConnectionSpec, OrgSpec


def server_reset_job(spec: OrgSpec, connection: ConnectionSpec, connection_id: str | None) -> dg.JobDefinition:
    """The connection's reset job, run by the organization's Airbyte server."""

    def action(context: dg.OpExecutionContext, streams: list[str] | None) -> list[str]:
        if not connection_id:
            raise dg.Failure(
                description=f"connection '{connection.name}' has no Airbyte connection yet: "
                f"run `dalgo airbyte apply {spec.slug}` or give its airbyte_connection_id"
            )
        client = getattr(context.resources, AIRBYTE_RESOURCE_KEY).get_client()
        job = client.reset_and_poll(connection_id, streams)
        which = ", ".join(streams) if streams else "every stream"
        return [
            f"Airbyte reset job {job.get('jobId')} of connection {connection_id} succeeded: {which} cleared",
            f"connection '{connection.name}': the next sync reads {which} in full",
        ]

    return reset_job(spec, connection, AIRBYTE_RESOURCE_KEY, action)
