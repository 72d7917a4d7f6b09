"""The organization's pipelines (``/api/pipelines/``): a named selection of assets kept fresh by a
freshness target or run on a cron schedule (the spec's ``pipelines``; the automation in the code
location turns them into policies, sensors and schedules). Create, edit, delete, enable, disable, run
now, and read each selected asset's freshness state from Dagster."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from dalgo_api import bridge
from dalgo_api.accounts.auth import has_permission
from dalgo_api.audit import services as audit
from dalgo_api.common_responses import errors
from dalgo_api.errors import ApiError
from dalgo_api.pipelines.schemas import PipelineIn, PipelineOut
from dalgo_api.runs import idempotency
from dalgo_api.runs import services as runs
from dalgo_api.runs.schemas import RunOut
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import SpecSection
from dalgo_core.names import PIPELINE_TAG, pipeline_job_name
from dalgo_core.spec import PipelineSpec, selection_matches

pipelines = Router(tags=["pipelines"])


def _kind(p: PipelineSpec) -> str:
    return "freshness" if p.freshness else "schedule" if p.schedule else "manual"


def _matches(pattern: str, key: str) -> bool:
    return selection_matches(pattern, key.split("/"))


def _out(p: PipelineSpec, nodes: list[bridge.AssetNode] | None = None) -> dict:
    out = {
        "name": p.name,
        "assets": p.assets,
        "freshness": p.freshness,
        "schedule": p.schedule,
        "enabled": p.enabled,
        "kind": _kind(p),
    }
    if nodes is not None:
        selected = [n for n in nodes if n.materializable and any(_matches(pat, n.key) for pat in p.assets)]
        out["targets"] = [
            {
                "asset": n.key,
                "freshness": n.freshness,
                "last_materialization": (n.last_materialization or {}).get("timestamp"),
            }
            for n in selected
        ]
    return out


SECTION = SpecSection("pipelines", "pipeline")
_pipeline = SECTION.lookup


def _checked(slug: str, payload: PipelineIn) -> PipelineSpec:
    """The pipeline's spec entry, if every pattern selects at least one runnable asset (else 422)."""
    keys = [key for key, runnable in bridge.asset_keys(slug).items() if runnable]
    empty = [pat for pat in payload.assets if not any(_matches(pat, k) for k in keys)]
    if empty:
        raise ApiError(
            422,
            f"assets: {', '.join(repr(p) for p in empty)} select no asset of organization '{slug}'",
            [{"field": "body.assets", "message": f"'{p}' selects no asset"} for p in empty],
        )
    return PipelineSpec(**payload.dict())


@pipelines.get("/", response=list[PipelineOut], auth=has_permission(["can_view_pipelines"]))
def list_pipelines(request: HttpRequest) -> list[dict]:
    """Every pipeline with each selected asset's freshness state."""
    slug = request.auth.org.slug
    nodes = bridge.asset_nodes(slug)
    return [_out(p, nodes) for p in specs.load_spec(slug).pipelines]


@pipelines.get("/{name}", response=PipelineOut, auth=has_permission(["can_view_pipeline"], lookup=_pipeline))
def get_pipeline(request: HttpRequest, name: str) -> dict:
    return _out(request.auth.obj, bridge.asset_nodes(request.auth.org.slug))


@pipelines.post("/", response={201: PipelineOut}, auth=has_permission(["can_create_pipeline"]))
def create_pipeline(request: HttpRequest, payload: PipelineIn) -> tuple[int, dict]:
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name)
    entry = _checked(slug, payload)
    SECTION.add(slug, entry)
    return 201, _out(entry)


@pipelines.put("/{name}", response=PipelineOut, auth=has_permission(["can_edit_pipeline"], lookup=_pipeline))
def update_pipeline(request: HttpRequest, name: str, payload: PipelineIn) -> dict:
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name, current=name)
    entry = _checked(slug, payload)
    SECTION.replace(slug, name, entry)
    return _out(entry)


@pipelines.delete("/{name}", response={204: None}, auth=has_permission(["can_delete_pipeline"], lookup=_pipeline))
def delete_pipeline(request: HttpRequest, name: str) -> tuple[int, None]:
    slug = request.auth.org.slug
    SECTION.remove(slug, name)
    return 204, None


def _set_enabled(request: HttpRequest, name: str, enabled: bool) -> dict:
    entry = request.auth.obj.model_copy(update={"enabled": enabled})
    SECTION.replace(request.auth.org.slug, name, entry)
    return _out(entry)


@pipelines.post("/{name}/enable", response=PipelineOut, auth=has_permission(["can_edit_pipeline"], lookup=_pipeline))
def enable_pipeline(request: HttpRequest, name: str) -> dict:
    """Start the pipeline's schedule / freshness automation again."""
    return _set_enabled(request, name, True)


@pipelines.post("/{name}/disable", response=PipelineOut, auth=has_permission(["can_edit_pipeline"], lookup=_pipeline))
def disable_pipeline(request: HttpRequest, name: str) -> dict:
    """Stop the pipeline's schedule / freshness automation (it can still be run by hand)."""
    return _set_enabled(request, name, False)


# 400, 409 and 422 also answer a bad, in-progress or reused Idempotency-Key (the docstring)
@pipelines.post(
    "/{name}/runs",
    response={201: RunOut, **errors(400, 409, 422)},
    auth=has_permission(["can_run_pipeline"], lookup=_pipeline),
)
def run_pipeline(request: HttpRequest, name: str, idempotency_key: idempotency.KeyHeader = None) -> tuple[int, RunOut]:
    """Run the pipeline's selection now, tagged with the pipeline's name.

    A 201 always means the run was launched. When the run cannot be read back from Dagster after the
    launch, the answer still is 201 with its ``run_id``, ``status`` ``QUEUED`` and ``assets`` null.

    To retry safely, send an ``Idempotency-Key`` header, as for ``POST /api/runs/`` (any string of 1 to
    255 characters without control characters; a fresh UUID per run you want): a retry with the same
    key, in the same organization, within 24 hours, answers 201 with the run the first request launched
    (its current state) and launches nothing. Keys are per organization and shared with
    ``POST /api/runs/``: the same key for another pipeline or for an asset run is 422; while the first
    request with the key is still launching, a retry waits for it, then answers 409 (retry shortly); a
    key that is empty, too long or holds control characters is 400. A request that launched nothing
    (4xx, 503) does not use up its key."""
    ctx = request.auth
    slug = ctx.org.slug
    key = idempotency.check_key(idempotency_key)
    job = pipeline_job_name(slug, name)
    tags = runs.run_tags(ctx.user.email, "manual", **{PIPELINE_TAG: name})

    def launch(launch_id: str) -> str:
        return bridge.launch_run(slug, job_name=job, tags=tags, launch_id=launch_id)

    digest = idempotency.body_hash({"pipeline": name})  # no body: the request is the pipeline's run
    run_id, claimed_at = idempotency.launch_once(ctx.org, key, digest, launch)
    audit.note(target=f"run {run_id}", after={"run_id": run_id, "pipeline": name})
    return 201, runs.launched_answer(slug, run_id, tags=tags, job=job, created_at=claimed_at)
