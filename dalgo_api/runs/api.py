"""The organization's assets (``/api/assets/``), runs and their logs (``/api/runs/``). Everything is scoped
to the ``x-dalgo-org`` organization: a run id of another organization is 404, exactly like an unknown one.
Run failures reach people as alerts (``dalgo_api.alerts``)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from dalgo_api import bridge
from dalgo_api.accounts.auth import RequestContext, has_permission
from dalgo_api.audit import services as audit
from dalgo_api.common_responses import errors
from dalgo_api.errors import ApiError
from dalgo_api.runs import cache, idempotency, services
from dalgo_api.runs.schemas import (
    AssetDetailOut,
    AssetOut,
    LineageOut,
    LogPage,
    OutputOut,
    RunIn,
    RunOut,
    RunPage,
    RunStatus,
)
from dalgo_api.specs import store as specs

assets = Router(tags=["assets"])
runs = Router(tags=["runs"])


# --- assets ----------------------------------------------------------------------------------------


@assets.get("/", response=list[AssetOut], auth=has_permission(["can_view_assets"]))
def list_assets(request: HttpRequest) -> list[dict]:
    """Every asset of the organization: ingestion streams, dbt models and external sources, with the last
    materialization, freshness state and latest check results."""
    slug = request.auth.org.slug
    spec = specs.load_spec(slug)
    return [services.asset_out(spec, n) for n in bridge.asset_nodes(slug)]


@assets.get("/lineage", response=LineageOut, auth=has_permission(["can_view_assets"]))
def lineage(request: HttpRequest) -> dict:
    """The lineage graph: every asset and every upstream -> downstream edge."""
    slug = request.auth.org.slug
    spec = specs.load_spec(slug)
    nodes = bridge.asset_nodes(slug)
    edges = [{"upstream": up, "downstream": n.key} for n in nodes for up in n.upstream]
    return {"nodes": [services.asset_out(spec, n) for n in nodes], "edges": edges}


@assets.get("/{path:key}", response=AssetDetailOut, auth=has_permission(["can_view_assets"]))
def get_asset(request: HttpRequest, key: str) -> dict:
    """One asset with its upstream and downstream assets and a link into Dagit for operators."""
    slug = request.auth.org.slug
    node = services.find_asset(slug, key.strip("/"))
    return {
        **services.asset_out(specs.load_spec(slug), node),
        "description": node.description,
        "upstream": node.upstream,
        "downstream": node.downstream,
        "dagit_url": services.asset_dagit_url(slug, node.key),
    }


# --- runs ------------------------------------------------------------------------------------------


def _run(ctx: RequestContext, params: dict) -> object:
    return services.get_run(ctx.org.slug, params["run_id"])


# 400, 409 and 422 also answer a bad, in-progress or reused Idempotency-Key (the docstring)
@runs.post("/", response={201: RunOut, **errors(400, 409, 422)}, auth=has_permission(["can_run_assets"]))
def start_run(
    request: HttpRequest,
    payload: RunIn,
    idempotency_key: idempotency.KeyHeader = None,
) -> tuple[int, RunOut]:
    """Materialize a selection of the organization's assets. The run waits in Dagster's queue while the
    organization's run slots or a pool its steps take (a dbt project's, a connection's, or a DuckDB
    warehouse's: one writer at a time) are taken: ``state`` is then ``queued``, with the queue position
    and the reason.

    A 201 always means the run was launched. When the run cannot be read back from Dagster after the
    launch, the answer still is 201 with its ``run_id``, ``status`` ``QUEUED`` and what the request says.

    To retry safely, send an ``Idempotency-Key`` header (any string of 1 to 255 characters without
    control characters; a fresh UUID per run you want): a retry with the same key, in the same
    organization, within 24 hours, answers 201 with the run the first request launched (its current
    state) and launches nothing. Keys are per organization. The same key with a different body is 422;
    while the first request with the key is still launching, a retry waits for it, then answers 409
    (retry shortly); a key that is empty, too long or holds control characters is 400. A request that
    launched nothing (4xx, 503) does not use up its key."""
    ctx = request.auth
    slug = ctx.org.slug
    key = idempotency.check_key(idempotency_key)
    tags = services.run_tags(ctx.user.email, "manual")

    def launch(launch_id: str) -> str:
        keys = services.check_selection(slug, payload.assets)
        return bridge.launch_run(slug, asset_keys=keys, tags=tags, launch_id=launch_id)

    digest = idempotency.body_hash(payload.model_dump(mode="json"))
    run_id, claimed_at = idempotency.launch_once(ctx.org, key, digest, launch)
    audit.note(target=f"run {run_id}", after={"run_id": run_id, "assets": list(payload.assets)})
    return 201, services.launched_answer(slug, run_id, assets=payload.assets, tags=tags, created_at=claimed_at)


class RunFilters(Schema):
    status: list[RunStatus] = Field(default_factory=list, description="Repeat for several statuses")
    created_after: datetime | None = None
    created_before: datetime | None = None
    asset: str | None = Field(None, description="Runs that selected this asset key")
    trigger: str | None = Field(None, description="manual, pipeline, maintenance, ...")
    pipeline: str | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=64)


@runs.get("/", response=RunPage, auth=has_permission(["can_view_runs"]))
def list_runs(request: HttpRequest, filters: Query[RunFilters]) -> dict:
    """The organization's runs, newest first, a page at a time: every run of its code location, whoever
    launched it (this API, Dagit, its sensors and schedules). A new run shows within two seconds."""
    slug = request.auth.org.slug
    query = _run_query(filters)
    if query.first_page:  # the newest runs: kept up to date in this process by the bridge
        return _run_page(slug, query)
    return cache.run_list(slug, filters.model_dump_json(), lambda: _run_page(slug, query))


def _run_page(slug: str, query: bridge.RunQuery) -> dict:
    found, next_cursor = bridge.list_runs(slug, query)
    return {"runs": services.run_outs(slug, found), "next_cursor": next_cursor}


def _run_query(filters: RunFilters) -> bridge.RunQuery:
    return bridge.RunQuery(
        statuses=list(filters.status),
        created_after=filters.created_after,
        created_before=filters.created_before,
        trigger=filters.trigger,
        pipeline=filters.pipeline,
        asset_key=filters.asset.strip("/") if filters.asset else None,
        limit=filters.limit,
        cursor=filters.cursor,
    )


@runs.get("/{run_id}", response=RunOut, auth=has_permission(["can_view_runs"], lookup=_run))
def get_run(request: HttpRequest, run_id: str) -> dict:
    """One run; a queued run says where it is in the queue and why, a failed one its error."""
    return services.run_out(request.auth.org.slug, request.auth.obj, detail=True)


@runs.post("/{run_id}/cancel", response=RunOut, auth=has_permission(["can_cancel_run"], lookup=_run))
def cancel_run(request: HttpRequest, run_id: str) -> dict:
    """Cancel a queued or running run (409 once it has ended)."""
    slug = request.auth.org.slug
    run = request.auth.obj
    if run.finished:
        raise ApiError(409, f"run '{run_id}' already ended ({run.status})")
    bridge.cancel_run(slug, run_id)
    audit.note(target=f"run {run_id}", before={"status": run.status}, after={"status": "CANCELING"})
    return services.launched(slug, run_id)


@runs.post("/{run_id}/retry", response={201: RunOut}, auth=has_permission(["can_run_assets"], lookup=_run))
def retry_run(request: HttpRequest, run_id: str) -> tuple[int, RunOut]:
    """Run a failed or cancelled run again from where it stopped (the steps that failed or did not run),
    as a new run tagged ``retry`` with the first run's pipeline; 409 for a run that has not failed."""
    ctx = request.auth
    slug = ctx.org.slug
    run = ctx.obj
    if run.status not in ("FAILURE", "CANCELED"):
        raise ApiError(409, f"run '{run_id}' is {run.status}: only a failed or cancelled run can be retried")
    tags = services.run_tags(ctx.user.email, "retry")
    new_id = bridge.retry_run(slug, run_id, tags)
    audit.note(target=f"run {new_id}", before={"run_id": run_id, "status": run.status}, after={"run_id": new_id})
    return 201, services.launched_answer(slug, new_id, tags=tags, job=run.job)


class LogQuery(Schema):
    cursor: str | None = Field(None, max_length=200, description="The cursor of the previous page")
    limit: int = Field(200, ge=1, le=1000)


@runs.get("/{run_id}/logs", response=LogPage, auth=has_permission(["can_view_logs"], lookup=_run))
def run_logs(request: HttpRequest, run_id: str, params: Query[LogQuery]) -> dict:
    """The run's event log, oldest first. To follow a running run, call again with the returned
    ``cursor`` until ``finished`` is true and ``has_more`` false."""
    slug = request.auth.org.slug
    run = request.auth.obj

    def read() -> dict:
        try:
            events, cursor, has_more = bridge.run_logs(slug, run, params.cursor, params.limit)
        except ValueError:
            raise ApiError(422, "cursor: not a cursor returned by this endpoint") from None
        return {"events": [services.event_out(e) for e in events], "cursor": cursor, "has_more": has_more}

    page = cache.log_page(run, params.cursor, params.limit, read)
    return {**page, "run_status": run.status, "finished": run.finished}


class OutputQuery(Schema):
    cursor: str | None = Field(None, max_length=200)
    max_bytes: int = Field(65536, ge=1024, le=1048576)


@runs.get("/{run_id}/output/{file_key}", response=OutputOut, auth=has_permission(["can_view_logs"], lookup=_run))
def run_output(request: HttpRequest, run_id: str, file_key: str, params: Query[OutputQuery]) -> dict:
    """A step's raw stdout/stderr (dbt's, git's) named by the ``file_key`` of a LOGS_CAPTURED event."""
    if not file_key.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ApiError(422, "file_key: use the file_key of a LOGS_CAPTURED event")
    return bridge.captured_log(request.auth.org.slug, run_id, file_key, params.cursor, params.max_bytes)
