"""dbt's own source freshness (``freshness: {warn_after, error_after}`` on a source) as the platform's
freshness targets, where it fits: a source that the organization builds (an ingestion stream landing in
its table, or another dbt project's model) gets a target on that asset, with ``error_after`` as its
maximum lag and ``warn_after`` as its warning. A source nothing in the organization builds cannot be
kept fresh by the platform: it is never silent, the models reading it carry a warning (Dagit shows it
with their metadata) and the location's load log says it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
from pydantic import ValidationError

from dalgo_assets.automation.targets import (
    DBT_MANIFEST_METADATA_KEY,
    FreshnessTarget,
    TargetProblems,
    _target_from_spec,
)
from dalgo_assets.transform.dbt_integration import get_manifest_and_translator_from_dbt_assets
from dalgo_core.names import FRESHNESS_WARNING_METADATA
from dalgo_core.spec import FreshnessSpec, OrgSpec

logger = logging.getLogger(__name__)
WARNING_METADATA = FRESHNESS_WARNING_METADATA
MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}


def _minutes(threshold: Any) -> float | None:
    if not isinstance(threshold, Mapping) or threshold.get("count") is None:
        return None
    per = MINUTES.get(str(threshold.get("period")))
    return float(threshold["count"]) * per if per else None


def source_freshness(source: Mapping[str, Any]) -> FreshnessSpec | dict[str, Any] | None:
    """The target a dbt source's freshness asks for; the raw values when they do not make a target."""
    config = source.get("freshness") or {}
    warn, error = _minutes(config.get("warn_after")), _minutes(config.get("error_after"))
    if warn is None and error is None:
        return None
    raw = {"max_lag_minutes": error or warn, "warn_lag_minutes": warn if error and warn and warn < error else None}
    try:
        return FreshnessSpec.model_validate(raw)
    except ValidationError:
        return raw


def _dbt_assets(assets: Iterable[dg.AssetsDefinition]) -> Iterable[dg.AssetsDefinition]:
    for assets_def in assets:
        if any(spec.metadata.get(DBT_MANIFEST_METADATA_KEY) is not None for spec in assets_def.specs):
            yield assets_def


def dbt_source_targets(
    spec: OrgSpec, assets: list[dg.AssetsDefinition], problems: TargetProblems
) -> tuple[list[FreshnessTarget], dict[dg.AssetKey, str]]:
    """Targets from dbt source freshness on what the organization builds, and a warning for each model
    reading a source with a freshness nobody can keep (by the model's key)."""
    buildable = {key for a in assets if a.is_materializable for key in a.keys}
    targets: list[FreshnessTarget] = []
    warnings: dict[dg.AssetKey, str] = {}
    for assets_def in _dbt_assets(assets):
        manifest, translator, _ = get_manifest_and_translator_from_dbt_assets([assets_def])
        for unique_id, source in (manifest.get("sources") or {}).items():
            freshness = source_freshness(source)
            if freshness is None:
                continue
            key = translator.get_asset_key(source)
            label = f"dbt source '{source.get('source_name')}.{source.get('name')}'"
            if key in buildable and isinstance(freshness, FreshnessSpec):
                where = f"{label} ({source.get('original_file_path', '?')}), freshness"
                target = _target_from_spec(key, f"dbt freshness of {label}", freshness, spec.timezone, where, problems)
                if target is not None:
                    targets.append(target)
                continue
            why = (
                "nothing in the organization builds it"
                if key not in buildable
                else f"its thresholds do not make a target ({freshness})"
            )
            message = f"{label} has a dbt freshness the platform does not keep: {why}"
            logger.warning("organization %s: %s", spec.slug, message)
            for child in (manifest.get("child_map") or {}).get(unique_id, []):
                node = manifest["nodes"].get(child)
                if node is not None:
                    warnings[translator.get_asset_key(node)] = message
    return targets, warnings


def with_warnings(assets: list[dg.AssetsDefinition], warnings: Mapping[dg.AssetKey, str]) -> list[dg.AssetsDefinition]:
    """The assets with each warning in the metadata of its asset."""
    if not warnings:
        return assets

    def warn(spec: dg.AssetSpec) -> dg.AssetSpec:
        message = warnings.get(spec.key)
        return spec.merge_attributes(metadata={WARNING_METADATA: message}) if message else spec

    return [
        a.map_asset_specs(warn) if a.is_materializable and any(k in warnings for k in a.keys) else a for a in assets
    ]
