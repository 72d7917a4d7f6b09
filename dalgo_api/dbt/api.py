"""The organization's dbt projects (``/api/dbt/projects/``): add, change or remove a project (a git URL
and ref, or a local folder); each change writes the spec, prepares the manifests (git checkout,
``dbt deps``, ``dbt parse``) and reloads the code location. ``POST .../commands/<git_pull|dbt_deps|
dbt_clean>`` runs that chore as a recorded Dagster run, so its output stays in the run's logs."""

from __future__ import annotations

import os
from typing import Literal

from django.http import HttpRequest
from ninja import Router

from dalgo_api import bridge
from dalgo_api.accounts.auth import has_permission
from dalgo_api.audit import services as audit
from dalgo_api.dbt.schemas import DbtProjectIn, DbtProjectOut
from dalgo_api.errors import ApiError
from dalgo_api.runs import services as runs
from dalgo_api.runs.schemas import RunOut
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import SpecSection
from dalgo_core.dbt_projects import DbtProjectError, check_tenant_location
from dalgo_core.names import COMMAND_TAG, MAINTENANCE_COMMANDS, maintenance_job_name
from dalgo_core.spec import DbtProjectSpec

dbt = Router(tags=["dbt"])
COMMAND_WAIT_SECONDS = float(os.environ.get("DALGO_COMMAND_WAIT_SECONDS", "600"))
# git pull brings new models: answered once they are live. dbt deps and clean queue like any run (behind
# the project's dbt runs) and answer at once; the next change or reload picks up their manifest.
RELOADING_COMMANDS = {"git_pull"}
Command = Literal["git_pull", "dbt_deps", "dbt_clean"]


def _out(project: DbtProjectSpec) -> dict:
    return {"name": project.name, "path": project.path, "git": project.git, "commands": list(MAINTENANCE_COMMANDS)}


SECTION = SpecSection("dbt_projects", "dbt project")
_project = SECTION.lookup


def _entry(slug: str, payload: DbtProjectIn, current: DbtProjectSpec | None = None) -> DbtProjectSpec:
    """The project as the spec holds it; a local folder or ``file://`` repository only among the
    organization's own folders (422 naming the field)."""
    entry = DbtProjectSpec(name=payload.name, path=payload.path, git=payload.git)
    try:
        check_tenant_location(specs.load_spec(slug), entry, current)
    except DbtProjectError as exc:
        field = str(exc).split(":", 1)[0]
        raise ApiError(422, str(exc), [{"field": field, "message": str(exc)}]) from None
    return entry


@dbt.get("/projects/", response=list[DbtProjectOut], auth=has_permission(["can_view_dbt_workspace"]))
def list_projects(request: HttpRequest) -> list[dict]:
    return [_out(p) for p in specs.load_spec(request.auth.org.slug).dbt_projects]


@dbt.get("/projects/{name}", response=DbtProjectOut, auth=has_permission(["can_view_dbt_workspace"], lookup=_project))
def get_project(request: HttpRequest, name: str) -> dict:
    return _out(request.auth.obj)


@dbt.post("/projects/", response={201: DbtProjectOut}, auth=has_permission(["can_create_dbt_workspace"]))
def create_project(request: HttpRequest, payload: DbtProjectIn) -> tuple[int, dict]:
    """Add a dbt project: its models become assets ``<project>/<model>`` (422 if it does not parse)."""
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name)
    entry = _entry(slug, payload)
    SECTION.add(slug, entry, prepare=True)
    return 201, _out(entry)


@dbt.put("/projects/{name}", response=DbtProjectOut, auth=has_permission(["can_edit_dbt_workspace"], lookup=_project))
def update_project(request: HttpRequest, name: str, payload: DbtProjectIn) -> dict:
    """Point a project at another git URL/ref or folder (or rename it); the manifest is prepared again."""
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name, current=name)
    entry = _entry(slug, payload, request.auth.obj)
    SECTION.replace(slug, name, entry, prepare=True)
    return _out(entry)


@dbt.delete(
    "/projects/{name}", response={204: None}, auth=has_permission(["can_delete_dbt_workspace"], lookup=_project)
)
def delete_project(request: HttpRequest, name: str) -> tuple[int, None]:
    """Remove a project from the organization (its tables stay in the warehouse)."""
    slug = request.auth.org.slug
    SECTION.remove(slug, name)
    return 204, None


@dbt.post(
    "/projects/{name}/commands/{command}",
    response={201: RunOut},
    auth=has_permission(["can_run_orgtask"], lookup=_project),
)
def run_command(request: HttpRequest, name: str, command: Command) -> tuple[int, dict]:
    """Run ``git pull``, ``dbt deps`` or ``dbt clean`` for the project as a Dagster run (its output in
    ``GET /api/runs/{run_id}/logs``; it waits for any dbt run of the same project). ``git_pull`` is
    answered once its run finished and, if it succeeded, the organization's code location was reloaded:
    a model pulled from git is live then (after ``DALGO_COMMAND_WAIT_SECONDS``, 600, the run is answered
    as it stands). ``dbt_deps`` and ``dbt_clean`` are answered at once, with the queued run."""
    ctx = request.auth
    slug = ctx.org.slug
    run_id = bridge.launch_run(
        slug,
        job_name=maintenance_job_name(slug, name, command),
        tags=runs.run_tags(ctx.user.email, "maintenance", **{COMMAND_TAG: command}),
    )
    audit.note(target=f"run {run_id}", after={"run_id": run_id, "dbt_project": name, "command": command})
    if command in RELOADING_COMMANDS:
        run = bridge.wait_for_run(slug, run_id, COMMAND_WAIT_SECONDS)
        if run is not None and run.status == "SUCCESS":
            bridge.reload_location(slug)
    return 201, runs.launched(slug, run_id)
