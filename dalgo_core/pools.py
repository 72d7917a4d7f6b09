"""The concurrency pools an organization's runs take (``dalgo_core.names``: one per dbt project, one per
connection). Dagster's run queue limits a pool only once the pool has a row in its storage, and a pool
created in the middle of a queue pass is not counted in that pass; so the platform creates them ahead:
at start for every organization (``dalgo_ops.storage``) and with every spec change (the API)."""

from __future__ import annotations

from dalgo_core.names import connection_pool, dbt_pool
from dalgo_core.spec import OrgSpec


def org_pools(spec: OrgSpec) -> list[str]:
    """The concurrency pools of the organization's dbt projects and connections."""
    return [dbt_pool(spec.slug, p.name) for p in spec.dbt_projects] + [
        connection_pool(spec.slug, c.name) for c in spec.connections
    ]
