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
from dalgo_core.pools import all_org_pools


def main(argv: list[str]) -> int:
    if "--migrate" in argv:
        with DagsterInstance.get() as instance:
            instance.upgrade(print)
    ensure_pools(all_org_pools())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
