"""``python -m dalgo_ops.storage [--migrate]``: Dagster's storage made ready in one process before the
webserver and the daemon start (``dalgo serve``/``dalgo up``).

- With ``--migrate``: the storage is created, or migrated when an older Dagster left it
  (``DagsterInstance.upgrade``, what ``dagster instance migrate`` runs). Processes that all create a new
  SQLite storage at once corrupt it, so only this one does.
- Always: every organization's concurrency pools get their row before the daemon's run queue starts,
  so that the first runs of an organization that was never changed through the API (adopted from the
  organizations folder) wait for each other as they do later (``dalgo_core.pools``). The rows are made
  by the bridge's ``ensure_pools``, as for the API's changes.
"""

from __future__ import annotations

import sys

from dagster import DagsterInstance

from dalgo_api.bridge import ensure_pools
from dalgo_core.pools import org_pools
from dalgo_core.spec import SpecError, list_org_slugs, load_org_spec


def wanted_pools() -> set[str]:
    """The pools of every organization whose spec loads (a broken one gets its pools when it is fixed)."""
    pools: set[str] = set()
    for slug in list_org_slugs():
        try:
            pools.update(org_pools(load_org_spec(slug)))
        except (SpecError, FileNotFoundError):
            continue
    return pools


def main(argv: list[str]) -> int:
    if "--migrate" in argv:
        with DagsterInstance.get() as instance:
            instance.upgrade(print)
    ensure_pools(wanted_pools())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
