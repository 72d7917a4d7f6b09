"""Freshness targets: what must be how fresh, read from the org spec's pipelines and from dbt ``meta``.

A target says of one asset "at most N minutes old" (a lag), "by this cron deadline, at most M minutes old"
(a deadline), or both. The timing rules here are the single source of truth for when a target is due:
the automation conditions ask them on every tick, and the simulator uses them to judge whether a target
stayed fresh. They follow Dagster's own freshness evaluators (age = time since the last materialization),
so a target this module keeps is also PASS in Dagit.

dbt models declare targets in their config ``meta`` (model config or ``+meta`` in dbt_project.yml)::

    {{ config(meta={'dalgo': {'freshness': {'max_lag_minutes': 60, 'expected_run_minutes': 10}}}) }}

The keys under ``dalgo.freshness`` are those of a pipeline's ``freshness`` (``FreshnessSpec``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import dagster as dg
from pydantic import ValidationError

from dalgo_core.cron import next_tick, previous_tick, smallest_interval, timezone_problem
from dalgo_core.spec import FreshnessSpec, OrgSpec, PipelineSpec, SpecError, selection_matches

META_NAMESPACE = "dalgo"
META_KEY = "freshness"
DBT_MANIFEST_METADATA_KEY = "dagster_dbt/manifest"
DBT_UNIQUE_ID_METADATA_KEY = "dagster_dbt/unique_id"

# Without an expected run time, a lag target asks for a refresh this long before it would go stale
# (capped at a quarter of its lag), and a deadline target this long before its deadline.
DEFAULT_EXPECTED_RUN = timedelta(minutes=10)
# A target that is past this share of its request threshold joins a run launched for another target
# of the organization: one run (and one upstream sync) then serves both.
JOIN_FRACTION = 0.6


@dataclass(frozen=True)
class FreshnessTarget:
    """One freshness requirement on one asset, with the rules deciding when a refresh is due."""

    key: dg.AssetKey
    origin: str
    max_lag: timedelta | None = None
    warn_lag: timedelta | None = None
    deadline_cron: str | None = None
    deadline_max_age: timedelta | None = None
    timezone: str = "UTC"
    expected_run: timedelta = DEFAULT_EXPECTED_RUN
    # the last deadline pair computed: it holds until the next deadline
    _ticks: list[float] = field(default_factory=list, init=False, compare=False, repr=False)

    # --- thresholds ---------------------------------------------------------------------------

    @property
    def request_after(self) -> timedelta | None:
        """Age at which a lag target is requested: early enough for its run to finish in time."""
        return self.max_lag - self.expected_run if self.max_lag else None

    @cached_property
    def _seconds(self) -> tuple[float | None, float | None, float]:
        request = self.request_after.total_seconds() if self.request_after else None
        lag = self.max_lag.total_seconds() if self.max_lag else None
        return lag, request, self.expected_run.total_seconds()

    def _deadline_ticks(self, now: float) -> tuple[float, float]:
        """The latest deadline at or before ``now`` and the next one after it (epoch seconds)."""
        if self._ticks and self._ticks[0] <= now < self._ticks[1]:
            return self._ticks[0], self._ticks[1]
        assert self.deadline_cron is not None
        current = datetime.fromtimestamp(now, tz=UTC)
        previous = previous_tick(self.deadline_cron, current, self.timezone).timestamp()
        following = next_tick(self.deadline_cron, current, self.timezone).timestamp()
        self._ticks[:] = [previous, following]
        return previous, following

    # --- the three questions ------------------------------------------------------------------

    def stale(self, last: float | None, now: float) -> bool:
        """What Dagster's freshness evaluators call FAIL (a never-materialized asset is stale too)."""
        if last is None:
            return True
        lag, _, _ = self._seconds
        if lag is not None and now - last >= lag:
            return True
        if self.deadline_cron is not None:
            previous, _ = self._deadline_ticks(now)
            if last < previous - self._max_age_seconds:
                return True
        return False

    def due(self, last: float | None, now: float, horizon: float = 0.0) -> bool:
        """A refresh must start now for the target to stay fresh (or to recover).

        ``horizon`` is how long until the next evaluation (the sensor's interval): a refresh that would
        be due before then is due now.
        """
        if last is None:
            return True
        _, request, lead = self._seconds
        if request is not None and now + horizon - last >= request:
            return True
        if self.deadline_cron is not None:
            previous, following = self._deadline_ticks(now)
            max_age = self._max_age_seconds
            if last < previous - max_age:  # missed the last deadline: recover now
                return True
            window_start = following - max_age
            if last < window_start and now >= max(window_start, following - lead - horizon):
                return True
        return False

    def ripe(self, last: float | None, now: float) -> bool:
        """Not due yet, but a refresh now would not be wasted: worth joining a run that happens anyway."""
        if last is None:
            return True
        _, request, _ = self._seconds
        if request is not None and now - last >= JOIN_FRACTION * request:
            return True
        if self.deadline_cron is not None:
            _, following = self._deadline_ticks(now)
            window_start = following - self._max_age_seconds
            if last < window_start <= now:
                return True
        return False

    @property
    def _max_age_seconds(self) -> float:
        return self.deadline_age.total_seconds()

    @property
    def deadline_age(self) -> timedelta:
        """Age allowed at the deadline; by default the whole interval between two deadlines."""
        if self.deadline_max_age is not None:
            return self.deadline_max_age
        assert self.deadline_cron is not None
        return smallest_interval(self.deadline_cron)

    def describe(self) -> str:
        return self._description

    @cached_property
    def _description(self) -> str:
        parts = []
        if self.max_lag:
            parts.append(f"at most {_minutes(self.max_lag)} old")
        if self.deadline_cron:
            parts.append(f"by '{self.deadline_cron}' ({self.timezone}) at most {_minutes(self.deadline_age)} old")
        return " and ".join(parts)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g} min"


# --- reading targets ---------------------------------------------------------------------------------


class TargetProblems:
    """Collects every problem of an organization's targets, so one error lists them all."""

    def __init__(self, spec: OrgSpec):
        self.spec = spec
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.problems:
            path = self.spec.spec_path or self.spec.folder / "org.yaml"
            raise SpecError(self.spec.slug, path, self.problems)


def materializable_keys(assets: Iterable[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    return sorted({key for a in assets if a.is_materializable for key in a.keys}, key=lambda k: k.path)


def resolve_selection(slug: str, patterns: Sequence[str], keys: Sequence[dg.AssetKey]) -> dict[str, list[dg.AssetKey]]:
    """Each pattern's matches among the org's keys: paths relative to the org, ``*`` globs within a segment."""
    return {
        pattern: [key for key in keys if key.path[0] == slug and selection_matches(pattern, key.path[1:])]
        for pattern in patterns
    }


def _target_from_spec(
    key: dg.AssetKey, origin: str, freshness: FreshnessSpec, tz: str, where: str, problems: TargetProblems
) -> FreshnessTarget | None:
    """The target of a validated ``FreshnessSpec`` (the spec checks its lags, cron and deadline age)."""
    if freshness.deadline_cron is not None and (problem := timezone_problem(tz)):
        problems.add(where, problem)  # a timezone from dbt meta: the organization's is checked by the spec
        return None
    lag = freshness.max_lag
    default_run = min(DEFAULT_EXPECTED_RUN, lag / 4) if lag is not None else DEFAULT_EXPECTED_RUN
    expected = timedelta(minutes=freshness.expected_run_minutes) if freshness.expected_run_minutes else default_run
    return FreshnessTarget(
        key=key,
        origin=origin,
        max_lag=lag,
        warn_lag=timedelta(minutes=freshness.warn_lag_minutes) if freshness.warn_lag_minutes else None,
        deadline_cron=freshness.deadline_cron,
        deadline_max_age=(
            timedelta(minutes=freshness.deadline_max_age_minutes) if freshness.deadline_max_age_minutes else None
        ),
        timezone=tz,
        expected_run=expected,
    )


def pipeline_keys(
    spec: OrgSpec, pipeline: PipelineSpec, keys: Sequence[dg.AssetKey], problems: TargetProblems
) -> list[dg.AssetKey]:
    """The assets a pipeline selects; a pattern that selects nothing is a problem."""
    selected: list[dg.AssetKey] = []
    for pattern, matched in resolve_selection(spec.slug, pipeline.assets, keys).items():
        if not matched:
            problems.add(f"pipelines.{pipeline.name}.assets", f"'{pattern}' matches no asset of the organization")
        selected.extend(k for k in matched if k not in selected)
    return selected


def spec_targets(
    spec: OrgSpec, selections: Mapping[str, Sequence[dg.AssetKey]], problems: TargetProblems
) -> list[FreshnessTarget]:
    """Targets of the spec's enabled pipelines that have ``freshness``: one per selected asset."""
    targets = []
    for pipeline in spec.pipelines:
        selected = selections[pipeline.name]
        if pipeline.freshness is None or not pipeline.enabled:
            continue
        where = f"pipelines.{pipeline.name}.freshness"
        for key in selected:
            target = _target_from_spec(
                key, f"pipeline '{pipeline.name}'", pipeline.freshness, spec.timezone, where, problems
            )
            if target is None:
                break  # the same problem for every asset of the pipeline: say it once
            targets.append(target)
    return targets


def _dbt_nodes(assets: Iterable[dg.AssetsDefinition]) -> Iterable[tuple[dg.AssetKey, Mapping[str, Any]]]:
    for assets_def in assets:
        for spec in assets_def.specs:
            wrapper = spec.metadata.get(DBT_MANIFEST_METADATA_KEY)
            unique_id = spec.metadata.get(DBT_UNIQUE_ID_METADATA_KEY)
            if wrapper is None or unique_id is None:
                continue
            node = wrapper.manifest.get("nodes", {}).get(unique_id)
            if node is not None:
                yield spec.key, node


# Dagster's older style, still in many dbt projects: ``meta: {dagster_freshness_policy: {...}}`` (or
# ``meta: {dagster: {freshness_policy: {...}}}``) with ``maximum_lag_minutes`` and an optional
# ``cron_schedule`` (and ``cron_schedule_timezone``): data at most that old, and so by each cron tick.
LEGACY_KEYS = ("dagster_freshness_policy",)
LEGACY_FIELDS = {"maximum_lag_minutes", "cron_schedule", "cron_schedule_timezone"}


def _legacy_policy(meta: Mapping[str, Any]) -> Any:
    for key in LEGACY_KEYS:
        if key in meta:
            return meta[key]
    dagster = meta.get("dagster")
    return dagster.get("freshness_policy") if isinstance(dagster, Mapping) else None


def legacy_freshness(policy: Any) -> tuple[dict[str, Any], str | None]:
    """A Dalgo freshness target from Dagster's older freshness policy, and its timezone (None: the
    organization's). Unknown fields are left for validation to name."""
    if not isinstance(policy, Mapping):
        return {"max_lag_minutes": policy}, None
    unknown = {k: v for k, v in policy.items() if k not in LEGACY_FIELDS}
    lag = policy.get("maximum_lag_minutes")
    target: dict[str, Any] = {"max_lag_minutes": lag, **unknown}
    if policy.get("cron_schedule"):
        target.update(deadline_cron=policy["cron_schedule"], deadline_max_age_minutes=lag)
    return target, policy.get("cron_schedule_timezone")


def _node_freshness(node: Mapping[str, Any]) -> tuple[Any, str, str | None] | None:
    """The node's target as declared (raw), where it was declared, and its own timezone if any."""
    for meta in ((node.get("config") or {}).get("meta"), node.get("meta")):
        if not isinstance(meta, Mapping):
            continue
        dalgo = meta.get(META_NAMESPACE)
        if isinstance(dalgo, Mapping) and META_KEY in dalgo:
            return dalgo[META_KEY], f"meta.{META_NAMESPACE}.{META_KEY}", None
        legacy = _legacy_policy(meta)
        if legacy is not None:
            raw, tz = legacy_freshness(legacy)
            return raw, "meta.dagster_freshness_policy", tz
    return None


def dbt_targets(
    spec: OrgSpec, assets: Iterable[dg.AssetsDefinition], problems: TargetProblems
) -> list[FreshnessTarget]:
    """Targets declared in dbt: ``meta: {dalgo: {freshness: {...}}}`` on a model (or via ``+meta``),
    or Dagster's older ``dagster_freshness_policy`` there."""
    targets = []
    for key, node in _dbt_nodes(assets):
        declared = _node_freshness(node)
        if declared is None:
            continue
        raw, field, tz = declared
        project = key.path[1] if len(key.path) > 2 else "?"
        where = (
            f"dbt project '{project}', {node.get('resource_type', 'model')} '{node.get('name')}' "
            f"({node.get('original_file_path', '?')}), {field}"
        )
        try:
            freshness = FreshnessSpec.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.add(f"{where}{'.' + loc if loc else ''}", err["msg"])
            continue
        target = _target_from_spec(
            key, f"dbt meta of '{'/'.join(key.path[1:])}'", freshness, tz or spec.timezone, where, problems
        )
        if target is not None:
            targets.append(target)
    return targets
