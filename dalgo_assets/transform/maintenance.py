"""dbt project chores as recorded Dagster runs: ``git pull``, ``dbt deps`` and ``dbt clean``.

Dalgo runs these inside a web request or a Celery task and keeps their output in Redis for a while
(or not at all); here each is a one-op job per dbt project, ``<org>__<project>__<command>``, whose
output goes to the run's event log (one message per command) and to the step's captured stdout, so it
stays in Dagster's run history. The job holds the project's dbt pool, so a chore never runs beside a
dbt build of the same project.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import dagster as dg

from dalgo_core.dbt_projects import (
    DbtProjectError,
    dbt_env,
    dbt_executable,
    git_sync,
    located_project,
    prepare_project,
)
from dalgo_core.names import COMMAND_TAG, MAINTENANCE_COMMANDS, ORG_TAG, dbt_pool, maintenance_job_name
from dalgo_core.spec import DbtProjectSpec, OrgSpec
from dalgo_core.warehouse.profiles import PROFILE_NAME, profiles_dir


def _run(context: dg.OpExecutionContext, cmd: list[str], cwd: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    output = f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}".rstrip()
    print(output, flush=True)  # captured stdout of the step
    context.log.info(output)
    if result.returncode != 0:
        raise dg.Failure(description=f"`{' '.join(cmd[:2])}` exited with {result.returncode}:\n{output[-4000:]}")
    return output


def _git_pull(context: dg.OpExecutionContext, spec: OrgSpec, project: DbtProjectSpec) -> None:
    where = located_project(spec, project).project_dir
    if project.git is not None:
        output = git_sync(spec, project)
        print(output, flush=True)
        context.log.info(output)
    elif (where / ".git").exists() or (where.parent / ".git").exists():
        _run(context, ["git", "-C", str(where), "pull", "--ff-only"], str(where))
    else:
        context.log.info(f"{where} is a local folder, not a git checkout: nothing to pull")
        return
    try:  # the code changed: prepare its manifest now (the API reloads the code location)
        prepare_project(spec, project)
    except DbtProjectError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info("manifest prepared; reload the organization's code location to use it")


def _dbt_command(*args: str) -> Callable[[dg.OpExecutionContext, OrgSpec, DbtProjectSpec], None]:
    def run(context: dg.OpExecutionContext, spec: OrgSpec, project: DbtProjectSpec) -> None:
        prepared = located_project(spec, project)
        env = dbt_env(prepared, profiles_dir(spec))
        _run(context, [dbt_executable(), *args, "--profile", PROFILE_NAME], str(prepared.project_dir), env)
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

    @dg.op(name=f"{spec.slug}__{project.name}__{command}_op", pool=dbt_pool(spec.slug, project.name))
    def chore(context) -> None:  # unannotated: Dagster resolves no string annotation here
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
