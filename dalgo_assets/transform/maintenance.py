"""dbt project chores as recorded Dagster runs: ``git pull``, ``dbt deps`` and ``dbt clean``.

Dalgo runs these inside a web request or a Celery task and keeps their output in Redis for a while
(or not at all); here each is a one-op job per dbt project, ``<org>__<project>__<command>``, whose
output goes to the run's event log (one message per command) and to the step's captured stdout, so it
stays in Dagster's run history. The job holds the pool of the project's builds (``dalgo_core.pools``:
the warehouse's on DuckDB), so a chore never runs beside a dbt build of the same project.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from dalgo_core.dbt_projects import (
    DbtProjectError,
    git_sync,
    located_project,
    prepare_project,
    run_dbt,
)
from dalgo_core.names import COMMAND_TAG, MAINTENANCE_COMMANDS, ORG_TAG, maintenance_job_name
from dalgo_core.pools import dbt_project_pool
from dalgo_core.redact import redact, tenant_error
from dalgo_core.spec import DbtProjectSpec, OrgSpec


def _show(context: dg.OpExecutionContext, output: str) -> None:
    redacted = redact(output)
    print(redacted, flush=True)  # captured stdout of the step
    context.log.info(redacted)


def _git_pull(context: dg.OpExecutionContext, spec: OrgSpec, project: DbtProjectSpec) -> None:
    if project.git is None:  # a local folder is the operator's: it changes only by the operator's hand
        context.log.info(f"dbt project '{project.name}' is a local folder, not a git checkout: nothing to pull")
        return
    try:
        _show(context, git_sync(spec, project))
    except DbtProjectError as exc:
        raise dg.Failure(description=str(exc)) from None
    try:  # the code changed: prepare its manifest now (the API reloads the code location)
        prepare_project(spec, project)
    except DbtProjectError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info("manifest prepared; the API reloads the organization's code location once this run succeeded")


def _dbt_command(*args: str) -> Callable[[dg.OpExecutionContext, OrgSpec, DbtProjectSpec], None]:
    def run(context: dg.OpExecutionContext, spec: OrgSpec, project: DbtProjectSpec) -> None:
        prepared = located_project(spec, project)
        try:
            result = run_dbt(spec, prepared, *args)
        except DbtProjectError as exc:
            raise dg.Failure(description=str(exc)) from None
        output = f"$ dbt {' '.join(args)}\n{result.stdout}{result.stderr}".rstrip()
        _show(context, output)
        if result.returncode != 0:
            raise dg.Failure(description=f"`dbt {args[0]}` exited with {result.returncode}:\n{tenant_error(output)}")
        try:  # clean removes, deps may change, what the manifest was built from: prepare it again
            prepare_project(spec, project, force=True)
        except DbtProjectError as exc:
            raise dg.Failure(description=str(exc)) from None
        context.log.info("manifest prepared again")

    return run


# the target folder lives in the organization's state folder, outside the project: clean it too
ACTIONS = {
    "git_pull": _git_pull,
    "dbt_deps": _dbt_command("deps"),
    "dbt_clean": _dbt_command("clean", "--no-clean-project-files-only"),
}


def maintenance_job(spec: OrgSpec, project: DbtProjectSpec, command: str) -> dg.JobDefinition:
    action = ACTIONS[command]

    @dg.op(name=f"{spec.slug}__{project.name}__{command}_op", pool=dbt_project_pool(spec, project.name))
    def chore(context) -> None:  # noqa: ANN001 (unannotated: Dagster resolves no string annotation here)
        action(context, spec, project)

    @dg.job(
        name=maintenance_job_name(spec.slug, project.name, command),
        tags={ORG_TAG: spec.slug, COMMAND_TAG: command},
        description=f"`{command.replace('_', ' ')}` for dbt project '{project.name}' of {spec.name}",
    )
    def _job() -> None:
        chore()

    return _job


def maintenance_jobs(spec: OrgSpec) -> list[dg.JobDefinition]:
    """Every chore job of every dbt project of the organization."""
    return [maintenance_job(spec, p, c) for p in spec.dbt_projects for c in MAINTENANCE_COMMANDS]
