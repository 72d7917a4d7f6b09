"""``python -m dalgo_ops.pools``: give every organization's concurrency pools their row in Dagster's
storage before the daemon's run queue starts, so that the first runs of an organization that was never
changed through the API (adopted from the organizations folder) wait for each other as they do later
(``dalgo_core.pools``). The rows are made by the bridge's ``ensure_pools``, as for the API's changes."""

from __future__ import annotations

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


def main() -> int:
    ensure_pools(wanted_pools())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
