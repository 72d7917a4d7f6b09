"""Monitoring: each target becomes the asset's Dagster ``FreshnessPolicy`` (fresh / warn / stale in Dagit).

Dagster allows one policy per asset. An asset with several targets gets the strictest lag as a
time-window policy; an asset with deadlines only gets the first deadline as a cron policy. The
automation conditions still honour every target.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from dalgo_assets.automation.targets import FreshnessTarget
from dalgo_core.spec import MIN_WINDOW


def freshness_policy(targets: Sequence[FreshnessTarget]) -> dg.FreshnessPolicy:
    """The policy shown for an asset: WARN once a refresh is due (or at the declared warn lag)."""
    lagged = [t for t in targets if t.max_lag is not None]
    if lagged:
        strictest = min(lagged, key=lambda t: t.max_lag)  # type: ignore[arg-type, return-value]
        assert strictest.max_lag is not None and strictest.request_after is not None
        warn = strictest.warn_lag or strictest.request_after
        return dg.FreshnessPolicy.time_window(
            fail_window=strictest.max_lag,
            warn_window=warn if MIN_WINDOW <= warn < strictest.max_lag else None,
        )
    target = targets[0]
    assert target.deadline_cron is not None
    return dg.FreshnessPolicy.cron(
        deadline_cron=target.deadline_cron, lower_bound_delta=target.deadline_age, timezone=target.timezone
    )
