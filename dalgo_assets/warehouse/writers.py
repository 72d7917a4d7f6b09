"""One writer at a time where the warehouse allows only one: a DuckDB file takes a single writing
process, so the steps of one run that write it (connection syncs, dbt builds) run one after another,
by Dagster's own executor limit on an op tag. PostgreSQL and BigQuery take their steps in parallel.
(Runs are kept apart by the instance's pools and run queue: on DuckDB every writing step takes the
warehouse's pool, ``dalgo_core.pools``.)"""

from __future__ import annotations

import dagster as dg

from dalgo_core.pools import single_writer
from dalgo_core.spec import OrgSpec

WRITER_TAG = "dalgo/warehouse_writer"


def writer_tags(spec: OrgSpec) -> dict[str, str]:
    """The op tags of a step that writes the organization's warehouse."""
    return {WRITER_TAG: spec.slug} if single_writer(spec) else {}


def run_executor(spec: OrgSpec) -> dg.ExecutorDefinition | None:
    """The organization's executor: the default multiprocess one, with one warehouse writer at a time
    for DuckDB (None: Dagster's default)."""
    if not single_writer(spec):
        return None
    return dg.multiprocess_executor.configured({"tag_concurrency_limits": [{"key": WRITER_TAG, "limit": 1}]})
