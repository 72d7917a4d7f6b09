"""Freshness automation vs. cron: a day of virtual time for 50 organizations.

Each organization is synthetic but built through the real code path: ingestion streams, staging and
mart models and an analytics project as plain Dagster assets, pipelines with freshness targets in an
``OrgSpec``, then ``build_automation`` (targets, policies, conditions). A ``VirtualOrg`` evaluates the
conditions with ``dg.evaluate_automation_conditions`` under a frozen clock every TICK, launches one run
per tick for whatever was requested, and records its materializations in the org's instance when the
run's simulated duration has elapsed.

Targets mix lags (30 min to 12 h) and daily or weekday deadlines, some both; runs take 2 to 15 min per
organization, +-15% per run. A target is kept if Dagster's freshness rules never find it stale from its
first materialization to the end of the day (checked just before every materialization, at every
deadline and at the end).

Cron baseline: every pipeline on its own cron, as often as its strictest target requires: the largest
period P that cron can express (a divisor of an hour or of a day) with P + (longest - shortest run) <=
the lag, or one run per deadline for deadline-only pipelines, plus the same first run per organization.

Run with no arguments; the last line holds the figures.
"""

from __future__ import annotations

import multiprocessing
import random
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402

from dalgo_assets.automation import build_automation  # noqa: E402
from dalgo_assets.automation.targets import FreshnessTarget  # noqa: E402
from dalgo_core.cron import ticks_from  # noqa: E402
from dalgo_core.spec import OrgSpec  # noqa: E402
from tests.support.simulate import VirtualOrg, materialization_times, plain_asset  # noqa: E402

ORGS = 50
WORKERS = 2  # the machine's cores
SEED = 20261126
TICK = timedelta(minutes=10)  # virtual interval between automation ticks (the sensor's default is 30 s)
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
JITTER = 0.15
CRON_PERIODS_MIN = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440]
LAGS_MIN = [60, 90, 120, 180, 240, 360, 720]
DEADLINES = [("0 9 * * *", 720), ("30 7 * * *", 360), ("0 6 * * 1-5", 600), ("0 18 * * *", 240)]


@dataclass
class SimOrg:
    spec: OrgSpec
    org: VirtualOrg
    targets: list[FreshnessTarget]
    base_minutes: float
    n_assets: int


def _freshness(rng: random.Random, base: float) -> dict:
    kind = rng.choices(["lag", "deadline", "both"], weights=[5, 3, 2])[0]
    out: dict = {"expected_run_minutes": round(base * (1 + JITTER) + 1, 1)}
    if kind in ("lag", "both"):
        out["max_lag_minutes"] = rng.choice([lag for lag in LAGS_MIN if lag >= 4 * out["expected_run_minutes"]])
    if kind in ("deadline", "both"):
        cron, age = rng.choice(DEADLINES)
        out["deadline_cron"] = cron
        out["deadline_max_age_minutes"] = age
    return out


def build_org(i: int, rng: random.Random) -> SimOrg:
    slug = f"org{i:02d}"
    assets, streams, marts = [], [], []
    for c in range(rng.randint(1, 2)):
        for s in range(rng.randint(2, 4)):
            streams.append(f"conn{c}/stream{s}")
    assets += [plain_asset(slug, s, []) for s in streams]
    staging = [f"sales/stg_{s.replace('/', '_')}" for s in streams]
    assets += [plain_asset(slug, stg, [s]) for stg, s in zip(staging, streams, strict=False)]
    for m in range(rng.randint(2, 5)):
        marts.append(f"sales/mart{m}")
        assets.append(plain_asset(slug, marts[-1], rng.sample(staging, rng.randint(1, len(staging)))))
    analytics = []
    for a in range(rng.randint(0, 2)):
        analytics.append(f"analytics/report{a}")
        assets.append(plain_asset(slug, analytics[-1], rng.sample(marts, rng.randint(1, 2))))
    assets.append(plain_asset(slug, "sales/unused_model", [staging[0]]))  # no target needs it

    base = rng.uniform(2, 15)
    outputs = marts + analytics
    rng.shuffle(outputs)
    pipelines, n = [], rng.randint(2, 4)
    for p in range(min(n, len(outputs))):
        chosen = outputs[p::n] or [outputs[p]]
        pipelines.append({"name": f"pipeline{p}", "assets": chosen, "freshness": _freshness(rng, base)})
    spec = OrgSpec.model_validate({"slug": slug, "name": f"Org {i}", "pipelines": pipelines})
    automation = build_automation(spec, assets)
    defs = dg.Definitions(assets=automation.assets)
    run_rng = random.Random(SEED + i)

    def duration(keys: frozenset[dg.AssetKey], now: float) -> float:
        share = len(keys) / len(assets)
        return base * 60 * (0.6 + 0.4 * share) * run_rng.uniform(1 - JITTER, 1 + JITTER)

    org = VirtualOrg(defs, dg.DagsterInstance.ephemeral(), duration=duration)
    return SimOrg(spec, org, automation.targets, base, len(assets))


def kept(target: FreshnessTarget, materializations: list[float], end: float) -> bool:
    """Never stale from the first materialization to ``end``, by Dagster's rules."""
    if not materializations:
        return False
    checks = [m - 1e-3 for m in materializations[1:]] + [end]
    if target.deadline_cron:
        first = datetime.fromtimestamp(materializations[0], tz=UTC)
        for tick in ticks_from(target.deadline_cron, first, target.timezone):
            if tick.timestamp() > end:
                break
            checks.append(tick.timestamp())
    for t in checks:
        last = max((m for m in materializations if m <= t), default=None)
        if target.stale(last, t):
            return False
    return True


def cron_runs(sim: SimOrg) -> int:
    """Runs of the cron baseline over the day: each pipeline as often as its strictest target needs."""
    spread = 2 * JITTER * sim.base_minutes  # longest minus shortest run
    total = 1  # the first run of everything, as the automation's
    for pipeline in sim.spec.pipelines:
        fresh = pipeline.freshness
        assert fresh is not None
        period = None
        if fresh.max_lag_minutes:
            period = max(p for p in CRON_PERIODS_MIN if p + spread <= fresh.max_lag_minutes)
            total += int(DAY.total_seconds() // 60 // period)
        if fresh.deadline_cron and (period is None or period + spread > (fresh.deadline_max_age_minutes or 1440)):
            for tick in ticks_from(fresh.deadline_cron, START):
                if tick.timestamp() > (START + DAY).timestamp():
                    break
                total += 1
    return total


@dataclass
class OrgResult:
    slug: str
    runs: int
    cron_runs: int
    targets: list[tuple[str, bool]]
    evaluation_seconds: float
    evaluations: int
    summary: str


def simulate_org(i: int) -> OrgResult:
    """One organization's day (organizations are independent: they run in parallel processes)."""
    warnings.filterwarnings("ignore")
    sim = build_org(i, random.Random(SEED * 1000 + i))
    for step in range(int(DAY / TICK) + 1):
        sim.org.tick(START + step * TICK)
    end = (START + DAY).timestamp()
    targets = [
        (f"{t.key.to_user_string()}: {t.describe()}", kept(t, materialization_times(sim.org.runs, t.key), end))
        for t in sim.targets
    ]
    pipelines = "; ".join(f"{p.name}: {len(p.assets)} assets" for p in sim.spec.pipelines)
    summary = (
        f"{sim.spec.slug}: {len(sim.org.runs)} runs (cron {cron_runs(sim)}), {sim.n_assets} assets, "
        f"runs ~{sim.base_minutes:.0f} min, {pipelines}"
    )
    return OrgResult(
        sim.spec.slug,
        len(sim.org.runs),
        cron_runs(sim),
        targets,
        sim.org.evaluation_seconds,
        sim.org.evaluations,
        summary,
    )


def main() -> None:
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        results = pool.map(simulate_org, range(ORGS), chunksize=1)
    automation = sum(r.runs for r in results)
    cron = sum(r.cron_runs for r in results)
    targets = [t for r in results for t in r.targets]
    kept_share = sum(ok for _, ok in targets) / len(targets)
    tick_seconds = sum(r.evaluation_seconds for r in results) / sum(r.evaluations for r in results)
    for r in results:
        print(r.summary)
        for name, ok in r.targets:
            print(f"    {'kept' if ok else 'NOT KEPT'}  {name}")
    print(
        f"virtual day, {TICK.total_seconds() / 60:g}-minute automation tick, {len(targets)} targets, "
        f"{WORKERS} processes, wall time {time.perf_counter() - started:.0f} s"
    )
    print(
        f"freshness runs ratio {automation / cron:.2f}: automation {automation:,} runs, cron {cron:,} runs; "
        f"targets kept {100 * kept_share:.1f}% ({ORGS} orgs); tick {tick_seconds:.3f} s/org"
    )


if __name__ == "__main__":
    main()
