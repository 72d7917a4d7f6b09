"""Replaying automation over virtual time: Dagster evaluates the real conditions, runs are simulated.

A ``VirtualOrg`` holds an organization's definitions and a Dagster instance. On each ``tick(now)``:
runs whose simulated duration has elapsed finish (their materializations are recorded in the
instance with the finishing time, or the run fails), then ``dg.evaluate_automation_conditions`` is
called under a frozen clock, exactly as the automation sensor would at that time, and the assets it
requests become one new run (the sensor also launches one run per tick), with ASSET_MATERIALIZATION_PLANNED
events so that ``in_progress()`` sees it. Tests use it for a few ticks, ``bench/freshness_sim.py`` for
a day of 50 organizations.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg
from dagster import _time as dagster_time
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

SIM_JOB = "__ASSET_JOB"


@contextmanager
def frozen_clock(now: datetime) -> Iterator[None]:
    """Dagster's clock stopped at ``now``: what ``dagster._core.test_utils.freeze_time`` patches, with
    plain functions instead of mocks (whose bookkeeping costs more than the evaluation in a long replay)."""
    saved = (dagster_time._mockable_get_current_datetime, dagster_time._mockable_get_current_timestamp)
    stamp = now.timestamp()
    dagster_time._mockable_get_current_datetime = lambda: now  # type: ignore[assignment]
    dagster_time._mockable_get_current_timestamp = lambda: stamp  # type: ignore[assignment]
    try:
        yield
    finally:
        dagster_time._mockable_get_current_datetime, dagster_time._mockable_get_current_timestamp = saved


@dataclass
class SimRun:
    run_id: str
    keys: frozenset[dg.AssetKey]
    started: float
    ends: float
    fails: bool = False
    finished: bool = False


@dataclass
class VirtualOrg:
    """One organization's definitions evaluated tick by tick against its own instance."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    duration: Callable[[frozenset[dg.AssetKey], float], float] = lambda keys, now: 60.0
    fails: Callable[[frozenset[dg.AssetKey], float], bool] = lambda keys, now: False
    runs: list[SimRun] = field(default_factory=list)
    cursor: object | None = None
    evaluation_seconds: float = 0.0
    evaluations: int = 0

    @property
    def running(self) -> list[SimRun]:
        return [r for r in self.runs if not r.finished]

    def tick(self, now: datetime) -> SimRun | None:
        """Finish due runs, evaluate the conditions at ``now`` and launch what they request."""
        ts = now.timestamp()
        for run in sorted(self.running, key=lambda r: r.ends):
            if run.ends <= ts:
                finish_run(self.instance, run)
        requested = self.evaluate(now)
        if not requested:
            return None
        run = launch_run(self.instance, requested, ts, self.duration(requested, ts), self.fails(requested, ts))
        self.runs.append(run)
        return run

    def evaluate(self, now: datetime) -> frozenset[dg.AssetKey]:
        with frozen_clock(now):
            started = time.perf_counter()
            result = dg.evaluate_automation_conditions(
                defs=self.defs,
                instance=self.instance,
                cursor=self.cursor,
                evaluation_time=now,  # type: ignore[arg-type]
            )
            self.evaluation_seconds += time.perf_counter() - started
            self.evaluations += 1
        self.cursor = result.cursor
        return frozenset(r.key for r in result.results if isinstance(r.key, dg.AssetKey) and r.true_subset.size)


def plain_asset(slug: str, path: str, deps: Sequence[str] = ()) -> dg.AssetsDefinition:
    """A stand-in asset ``<slug>/<path>`` for simulations: the conditions only see keys and deps."""

    @dg.asset(key=[slug, *path.split("/")], deps=[dg.AssetKey([slug, *d.split("/")]) for d in deps])
    def _materialize() -> None:
        return None

    return _materialize


def _report(instance: dg.DagsterInstance, run_id: str, event: DagsterEvent, at: float) -> None:
    instance.report_dagster_event(event, run_id=run_id, timestamp=at)


def launch_run(
    instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey], now: float, duration: float, fails: bool = False
) -> SimRun:
    """A started run of ``keys``, as the instance sees one: run record plus planned materializations."""
    keys = frozenset(keys)
    run_id = str(uuid.uuid4())
    instance.add_run(
        DagsterRun(job_name=SIM_JOB, run_id=run_id, status=DagsterRunStatus.NOT_STARTED, asset_selection=keys)
    )
    _report(instance, run_id, DagsterEvent(DagsterEventType.RUN_START.value, job_name=SIM_JOB), now)
    for key in sorted(keys, key=lambda k: k.path):
        planned = DagsterEvent.build_asset_materialization_planned_event(
            SIM_JOB, "sim", AssetMaterializationPlannedData(asset_key=key)
        )
        _report(instance, run_id, planned, now)
    return SimRun(run_id, keys, now, now + duration, fails)


def finish_run(instance: dg.DagsterInstance, run: SimRun, at: float | None = None) -> None:
    """Record the run's end: its materializations and success, or its failure."""
    at = run.ends if at is None else at
    if not run.fails:
        for key in sorted(run.keys, key=lambda k: k.path):
            event = DagsterEvent(
                DagsterEventType.ASSET_MATERIALIZATION.value,
                job_name=SIM_JOB,
                event_specific_data=StepMaterializationData(dg.AssetMaterialization(asset_key=key)),
            )
            _report(instance, run.run_id, event, at)
    status = DagsterEventType.RUN_FAILURE if run.fails else DagsterEventType.RUN_SUCCESS
    _report(instance, run.run_id, DagsterEvent(status.value, job_name=SIM_JOB), at)
    run.finished = True


def materialization_times(runs: Sequence[SimRun], key: dg.AssetKey) -> list[float]:
    return sorted(r.ends for r in runs if r.finished and not r.fails and key in r.keys)
