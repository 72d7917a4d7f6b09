"""Automation conditions that keep targets fresh, evaluated by Dagster's automation sensor on every tick.

Every asset that a target needs carries one ``KeepFresh`` condition, naming the targets it serves: its
own (if it has any) and the downstream targets it feeds (ingestion streams, staging models, other
projects' models). A target *wants* a refresh when
- it is *due*: its age reached the lag minus the expected run time (minus the time to the next tick),
  or its deadline window is open and the deadline is an expected run away, or it missed its last
  deadline, or it was never materialized; or
- it is *ripe* (past 60% of its lag threshold, or inside its deadline window) and another target of the
  organization is due: the run that happens anyway then serves both, and their shared upstream is
  synced once instead of twice;
- and it is not *blocked*: neither in a run in progress, nor backing off after a failed run (a quarter
  of the expected run time, 30 s to 5 min, so a failure is retried inside the target's window without
  hammering), nor waiting for an asset of its chain that a run in progress is materializing.

A target's *chain* is what its refresh pulls into the run: the target, every upstream asset whose own
data would make the target ripe or due (measured by the target's rules from that asset's last
materialization), and the assets between those and the target. An upstream asset refreshed recently
enough is not synced again: the target is rebuilt from it. While an asset of the chain is in a run in
progress (Dagster's ``in_progress()`` status, the one ``AutomationCondition.in_progress()`` reads),
the target waits: that run is the sync its refresh would duplicate, and when it finishes, the target
is requested on the next tick if it is still due, without that asset.

An asset is requested when it is in the chain of a target that wants a refresh. All the assets
requested in a tick form one run, so a target and its upstream chain are refreshed together, once for
every target that needs them. An asset that no target needs has no condition and never runs by itself.

This is what ``(target condition) & ~in_progress()`` on targets plus ``any_downstream_conditions()``
on their upstream would do, in one node per asset: Dagster then evaluates a handful of nodes per tick
instead of every downstream condition for every upstream asset. The condition reads materialization
times itself rather than the FreshnessDaemon's stored state: it needs no daemon round trip, knows
"due soon" before Dagster's WARN, and turns false as soon as a materialization lands. Being a custom
condition, it is evaluated in the code location (``use_user_code_server=True`` on the sensor).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster import AutomationContext, DagsterRunStatus, RunRecord

from dalgo_assets.automation.targets import FreshnessTarget

MIN_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(minutes=5)
MAX_HORIZON = timedelta(minutes=15)


@dataclass(frozen=True, eq=False)
class OrgTargets:
    """The organization's targets, and for every asset with a condition the materializable assets upstream of it."""

    targets: tuple[FreshnessTarget, ...] = ()
    upstream: Mapping[dg.AssetKey, frozenset[dg.AssetKey]] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetState:
    due: bool
    ripe: bool
    blocked: bool  # in a run in progress, backing off after a failure, or waiting for its chain's run
    chain: frozenset[dg.AssetKey] = frozenset()  # what a refresh pulls into the run (when ripe)


@dataclass
class _Tick:
    """What one evaluation tick learned about the organization's assets and targets."""

    last: dict[dg.AssetKey, float | None] = field(default_factory=dict)
    running: dict[dg.AssetKey, bool] = field(default_factory=dict)
    states: dict[dg.AssetKey, TargetState] = field(default_factory=dict)
    due_keys: set[dg.AssetKey] | None = None


# one evaluation tick = one AssetGraphView
_TICKS: weakref.WeakKeyDictionary[Any, _Tick] = weakref.WeakKeyDictionary()


def retry_delay(target: FreshnessTarget) -> float:
    return min(max(target.expected_run / 4, MIN_RETRY_DELAY), MAX_RETRY_DELAY).total_seconds()


def _horizon(context: AutomationContext) -> float:
    """Time until the next tick, taken to be the time since the previous one (bounded)."""
    previous = context.previous_evaluation_time
    if previous is None:
        return 0.0
    return min(max((context.evaluation_time - previous).total_seconds(), 0.0), MAX_HORIZON.total_seconds())


def _tick(context: AutomationContext) -> _Tick:
    return _TICKS.setdefault(context.asset_graph_view, _Tick())


async def _last_materialized(context: AutomationContext, key: dg.AssetKey) -> float | None:
    tick = _tick(context)
    if key not in tick.last:
        # no public equivalent: AssetRecord.gen reads through the tick's loading context, batched and
        # cached. Imported at a tick, not with the definitions: the event log storage brings SQLAlchemy
        # and Alembic (about 20 MB), which loading definitions (a run worker, a reload) never needs
        from dagster._core.storage.event_log.base import AssetRecord  # noqa: TID251

        record = await AssetRecord.gen(context.asset_graph_view, key)
        materialization = record.asset_entry.last_materialization_record if record else None
        tick.last[key] = materialization.timestamp if materialization else None
    return tick.last[key]


async def _in_progress(context: AutomationContext, key: dg.AssetKey) -> bool:
    """Dagster's ``in_progress()`` status of ``key``: planned by a run that has not ended."""
    tick = _tick(context)
    if key not in tick.running:
        view = context.asset_graph_view
        running = await view.compute_run_in_progress_subset(key=key, from_subset=view.get_full_subset(key=key))
        tick.running[key] = not running.is_empty
    return tick.running[key]


async def _failed_at(view: Any, key: dg.AssetKey) -> float | None:
    """When the latest run planned to materialize ``key`` failed, if it did."""
    info = view.instance.event_log_storage.get_latest_planned_materialization_info(key)
    if info is None:
        return None
    run = await RunRecord.gen(view, info.run_id)
    if run is None or run.dagster_run.status != DagsterRunStatus.FAILURE:
        return None
    return run.end_time or run.update_timestamp.timestamp()


async def _chain(context: AutomationContext, target: FreshnessTarget, org: OrgTargets) -> frozenset[dg.AssetKey]:
    """The target and the upstream assets its refresh needs: the outdated ones and those downstream of them."""
    now, horizon = context.evaluation_time.timestamp(), _horizon(context)
    upstream = org.upstream.get(target.key, frozenset())
    outdated = set()
    for key in upstream:
        last = await _last_materialized(context, key)
        if target.due(last, now, horizon) or target.ripe(last, now):
            outdated.add(key)
    return frozenset({target.key} | {k for k in upstream if k in outdated or org.upstream.get(k, set()) & outdated})


async def _blocked(
    context: AutomationContext, target: FreshnessTarget, last: float | None, chain: frozenset[dg.AssetKey]
) -> bool:
    failed = await _failed_at(context.asset_graph_view, target.key)
    now = context.evaluation_time.timestamp()
    if failed is not None and failed > (last or 0) and now - failed < retry_delay(target):
        return True
    for key in sorted(chain, key=lambda k: k != target.key):  # the target's own run first
        if await _in_progress(context, key):
            return True
    return False


async def target_state(context: AutomationContext, target: FreshnessTarget, org: OrgTargets) -> TargetState:
    tick = _tick(context)
    if target.key in tick.states:
        return tick.states[target.key]
    last = await _last_materialized(context, target.key)
    now = context.evaluation_time.timestamp()
    due = target.due(last, now, horizon=_horizon(context))
    state = TargetState(due, due or target.ripe(last, now), False)
    if state.ripe:
        chain = await _chain(context, target, org)
        state = TargetState(due, True, await _blocked(context, target, last, chain), chain)
    tick.states[target.key] = state
    return state


async def _due_keys(context: AutomationContext, org: OrgTargets) -> set[dg.AssetKey]:
    """The organization's targets that will be requested this tick whatever else happens."""
    tick = _tick(context)
    if tick.due_keys is None:
        due = set()
        for target in org.targets:
            state = await target_state(context, target, org)
            if state.due and not state.blocked:
                due.add(target.key)
        tick.due_keys = due
    return tick.due_keys


async def wants_refresh(context: AutomationContext, target: FreshnessTarget, org: OrgTargets) -> bool:
    state = await target_state(context, target, org)
    if state.blocked or not state.ripe:
        return False
    return state.due or bool(await _due_keys(context, org) - {target.key})


@dataclass(frozen=True)
class KeepFresh(dg.AutomationCondition):
    """Request this asset when it is in the chain of a target that wants a refresh; see the module docstring."""

    own: tuple[FreshnessTarget, ...]
    downstream: tuple[FreshnessTarget, ...] = ()
    org: OrgTargets = field(default_factory=OrgTargets, compare=False, hash=False, repr=False)

    @property
    def name(self) -> str:
        return "keep_fresh"

    def get_label(self) -> str | None:
        parts = []
        if self.own:
            parts.append("keep fresh: " + "; ".join(t.describe() for t in self.own))
        if self.downstream:
            names = sorted({t.key.to_user_string() for t in self.downstream})
            parts.append("needed by " + ", ".join(names))
        return " | ".join(parts)

    @property
    def description(self) -> str:
        return "; ".join(f"{t.key.to_user_string()}: {t.describe()} ({t.origin})" for t in self.own + self.downstream)

    @property
    def requires_cursor(self) -> bool:
        return False

    def __hash__(self) -> int:
        return hash((type(self), self.own, self.downstream))

    async def _in_a_wanted_chain(self, context: AutomationContext) -> bool:
        for target in self.own + self.downstream:
            wanted = await wants_refresh(context, target, self.org)
            if wanted and context.key in (await target_state(context, target, self.org)).chain:
                return True
        return False

    async def evaluate(self, context: AutomationContext) -> dg.AutomationResult:  # type: ignore[override]
        wanted = not context.candidate_subset.is_empty and await self._in_a_wanted_chain(context)
        return dg.AutomationResult(
            context, true_subset=context.candidate_subset if wanted else context.get_empty_subset()
        )
