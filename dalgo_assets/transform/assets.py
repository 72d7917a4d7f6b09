"""Each dbt model an asset, each dbt test an asset check: one ``@dbt_assets`` per dbt project."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from dalgo_assets.transform.dbt_integration import DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets
from dalgo_assets.transform.translator import OrgDbtTranslator, RelationIndex, dbt_relations
from dalgo_assets.warehouse.writers import writer_tags
from dalgo_core.dbt_projects import PreparedProject, dbt_executable, read_manifest
from dalgo_core.pools import dbt_project_pool
from dalgo_core.spec import DbtProjectSpec, OrgSpec
from dalgo_core.warehouse.profiles import PROFILE_NAME, profiles_dir


def dbt_resource_key(project: str) -> str:
    return f"dbt_{project}"


@dataclass
class LoadedProject:
    spec: DbtProjectSpec
    prepared: PreparedProject
    manifest: Mapping[str, Any]


@dataclass
class DbtDefinitions:
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)


def load_projects(spec: OrgSpec) -> list[LoadedProject]:
    loaded = []
    for project in spec.dbt_projects:
        prepared, manifest = read_manifest(spec, project)
        loaded.append(LoadedProject(project, prepared, manifest))
    return loaded


def project_relations(org: str, projects: list[LoadedProject]) -> dict:
    relations: dict = {}
    for project in projects:
        relations.update(dbt_relations(org, project.spec.name, project.manifest))
    return relations


def _project_assets(
    spec: OrgSpec, project: LoadedProject, translator: OrgDbtTranslator
) -> tuple[dg.AssetsDefinition, DbtCliResource]:
    dbt_project = DbtProject(
        project_dir=project.prepared.project_dir,
        target_path=project.prepared.target_dir,
        profiles_dir=profiles_dir(spec),
        profile=PROFILE_NAME,
    )
    key = dbt_resource_key(project.spec.name)
    runs_dir = project.prepared.target_dir.parent / "runs"

    @dbt_assets(
        manifest=project.manifest,
        project=dbt_project,
        name=f"{spec.slug}__{project.spec.name}",
        dagster_dbt_translator=translator,
        required_resource_keys={key, "warehouse"},
        pool=dbt_project_pool(spec, project.spec.name),
        op_tags=writer_tags(spec),
    )
    def _dbt_build(context: AssetExecutionContext):
        dbt: DbtCliResource = getattr(context.resources, key)
        with context.resources.warehouse.dbt_environment(project.prepared.project_dir):
            invocation = dbt.cli(
                ["build"], context=context, target_path=runs_dir / context.run_id, raise_on_error=False
            )
            yield from invocation.stream()
        raise_for_dbt_errors(invocation, f"organization '{spec.slug}', dbt project '{project.spec.name}'")

    resource = SandboxedDbtCli(project_dir=dbt_project, profile=PROFILE_NAME, dbt_executable=dbt_executable())
    return _dbt_build, resource


class SandboxedDbtCli(DbtCliResource):
    """dagster-dbt's resource, running dbt only through ``dalgo-dbt`` (the organization's sandbox).

    dagster-dbt also builds a dbt adapter inside the run worker before each invocation (for column
    metadata and row counts, which these assets do not ask for); that renders the project's Jinja with
    the run worker's environment and files, outside the sandbox, so it is not done here."""

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


def raise_for_dbt_errors(invocation: DbtCliInvocation, where: str) -> None:
    """Fail the step for dbt errors, but not for failing dbt tests: those are failed asset checks."""
    if invocation.is_successful():
        return
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except Exception:  # dbt stopped before writing results: a connection or compilation error
        raise dg.Failure(description=f"{where}: dbt build failed: {invocation.get_error()}") from None
    errors = [r for r in results if r["status"] in ("error", "runtime error")]
    if errors:
        details = "\n".join(f"{r['unique_id']}: {(r.get('message') or '').strip()}" for r in errors)
        raise dg.Failure(description=f"{where}: dbt build failed for {len(errors)} node(s):\n{details}")


def build_dbt_definitions(spec: OrgSpec, projects: list[LoadedProject], relations: RelationIndex) -> DbtDefinitions:
    """The organization's dbt assets, with sources wired to whatever builds their tables."""
    out = DbtDefinitions()
    for project in projects:
        translator = OrgDbtTranslator(spec.slug, project.spec.name, relations)
        assets_def, resource = _project_assets(spec, project, translator)
        out.assets.append(assets_def)
        out.resources[dbt_resource_key(project.spec.name)] = resource
    return out
