"""An organization's Airbyte workspace as a Dagster resource, built from its spec without calling Airbyte.

``DalgoAirbyteWorkspace`` is dagster-airbyte's ``AirbyteWorkspace`` with two additions:

- secrets: a ``{env: NAME}`` reference becomes ``dg.EnvVar(NAME)`` (Dagit shows the variable, never the
  value); a ``{file: NAME}`` reference is kept as its file name and read when a run first needs the client;
- what a sync reported: every stream's materialization carries the job's id, status, rows, bytes and
  duration, and the records Airbyte counted for that stream (read: emitted; loaded: committed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_airbyte import AirbyteWorkspace
from dagster_airbyte.resources import AirbyteClient
from dagster_airbyte.types import AirbyteOutput
from dagster_shared.utils.cached_method import cached_method
from pydantic import Field

from dalgo_assets.ingestion.server.client import DalgoAirbyteClient, job_metadata
from dalgo_core.spec import AirbyteServerSpec, OrgSpec, SecretRef

SECRET_FIELDS = ("password", "client_id", "client_secret")


class DalgoAirbyteWorkspace(AirbyteWorkspace):
    """An organization's Airbyte workspace (self-managed Airbyte 1.7+ or Airbyte Cloud)."""

    org: str = Field(description="the organization this workspace belongs to")
    password_file: str | None = Field(None, description="secret file holding the password, read at run time")
    client_id_file: str | None = Field(None, description="secret file holding the client id, read at run time")
    client_secret_file: str | None = Field(None, description="secret file holding the client secret")

    @cached_method
    def get_client(self) -> DalgoAirbyteClient:
        values = {name: getattr(self, name) for name in AirbyteClient.model_fields}
        for name in SECRET_FIELDS:
            file_name = getattr(self, f"{name}_file")
            if file_name:
                values[name] = SecretRef(file=file_name).resolve(self.org)
        return DalgoAirbyteClient(**values)

    def _generate_materialization(self, airbyte_output: AirbyteOutput, dagster_airbyte_translator: Any) -> Iterator:
        job = airbyte_output.job_details
        reported = job_metadata(job)
        records = self.get_client().stream_records(job["jobId"]) if "jobId" in job else {}
        for event in super()._generate_materialization(airbyte_output, dagster_airbyte_translator):
            stream = event.asset_key.path[-1]
            extra = {}
            if stream in records:
                extra = {
                    "airbyte/records_synced": records[stream]["committed"],
                    "airbyte/records_emitted": records[stream]["emitted"],
                }
            yield dg.AssetMaterialization(
                asset_key=event.asset_key,
                description=event.description,
                metadata={**event.metadata, **reported, **extra},
            )


def _secret_kwargs(server: AirbyteServerSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name in SECRET_FIELDS:
        ref: SecretRef | None = getattr(server, name)
        if ref is None:
            continue
        if ref.env:
            kwargs[name] = dg.EnvVar(ref.env)
        else:
            kwargs[f"{name}_file"] = ref.file
    return kwargs


def api_base_urls(server: AirbyteServerSpec) -> dict[str, str]:
    base = server.url.rstrip("/")
    return {"rest_api_base_url": f"{base}/api/public/v1", "configuration_api_base_url": f"{base}/api/v1"}


def airbyte_workspace(spec: OrgSpec) -> DalgoAirbyteWorkspace:
    """The organization's workspace resource; reads no secret and makes no HTTP call."""
    server = spec.ingestion.server
    assert server is not None, "ingestion mode 'server' is validated to have a server section"
    return DalgoAirbyteWorkspace(
        org=spec.slug,
        workspace_id=server.workspace_id,
        username=server.username,
        poll_interval=server.poll_interval_seconds,
        **api_base_urls(server),
        **_secret_kwargs(server),
    )


def airbyte_client(spec: OrgSpec) -> DalgoAirbyteClient:
    """A client with the secrets read now, for commands run outside Dagster (plan, apply)."""
    server = spec.ingestion.server
    if spec.ingestion.mode != "server" or server is None:
        raise ValueError(
            f"organization '{spec.slug}' uses {spec.ingestion.mode} ingestion; "
            "connections as code needs `ingestion: {mode: server, server: {...}}` in its spec"
        )
    secrets = {name: ref.resolve(spec.slug) for name in SECRET_FIELDS if (ref := getattr(server, name))}
    return DalgoAirbyteClient(
        workspace_id=server.workspace_id,
        username=server.username,
        request_max_retries=2,
        request_retry_delay=0.25,
        request_timeout=15,
        **api_base_urls(server),
        **secrets,
    )
