"""The concurrency pools an organization's steps take: the one place that decides them.

A step that writes the warehouse takes the pool of its dbt project or of its connection
(``dalgo_core.names``), so that one build per project and one sync per connection run at a time while
the others run beside them; but a DuckDB file takes one writing process at a time, so there every
writing step takes the warehouse's own pool instead: two runs writing one DuckDB file (a user's sync and
the automation's dbt build) wait for each other instead of meeting on its file lock. (The steps of one
run are kept apart by the run's executor, ``dalgo_assets.warehouse.writers``.)

Dagster's run queue limits a pool only once the pool has a row in its storage, and a pool created in the
middle of a queue pass is not counted in that pass; so the platform creates them ahead: at start for
every organization (``dalgo_ops.storage``) and with every spec change (the API)."""

from __future__ import annotations

from dalgo_core.names import connection_pool, dbt_pool, warehouse_pool
from dalgo_core.spec import OrgSpec, SpecError, list_org_slugs, load_org_spec


def single_writer(spec: OrgSpec) -> bool:
    """Whether the organization's warehouse takes one writing process at a time (a DuckDB file)."""
    return spec.warehouse.type == "duckdb"


def write_pool(spec: OrgSpec, pool: str) -> str:
    """The pool of a step that writes the organization's warehouse, whose own pool would be ``pool``:
    the warehouse's pool where it takes one writer at a time, else ``pool``."""
    return warehouse_pool(spec.slug) if single_writer(spec) else pool


def dbt_project_pool(spec: OrgSpec, project: str) -> str:
    """The pool of a dbt project's builds, and of its chores (which must not run beside a build)."""
    return write_pool(spec, dbt_pool(spec.slug, project))


def sync_pool(spec: OrgSpec, connection: str) -> str:
    """The pool of a connection's syncs and resets."""
    return write_pool(spec, connection_pool(spec.slug, connection))


def org_pools(spec: OrgSpec) -> list[str]:
    """The concurrency pools the organization's steps take (each once)."""
    pools = [dbt_project_pool(spec, p.name) for p in spec.dbt_projects]
    pools += [sync_pool(spec, c.name) for c in spec.connections]
    return list(dict.fromkeys(pools))


def all_org_pools() -> set[str]:
    """The pools of every organization of the folder whose spec loads (a broken one gets its pools when
    it is fixed)."""
    pools: set[str] = set()
    for slug in list_org_slugs():
        try:
            pools.update(org_pools(load_org_spec(slug)))
        except (SpecError, FileNotFoundError):
            continue
    return pools
