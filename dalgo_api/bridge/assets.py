"""The organization's asset graph, from the webserver's GraphQL API, with keys relative to the organization."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dalgo_api.bridge.locations import not_serving
from dalgo_api.bridge.transport import graphql
from dalgo_core.names import FRESHNESS_WARNING_METADATA, REPOSITORY, location_name

WARNING_LABELS = {FRESHNESS_WARNING_METADATA}  # asset metadata the API shows as the asset's warnings

ASSET_NODES = """
query($loc: String!, $repo: String!) {
  repositoryOrError(repositorySelector: {repositoryLocationName: $loc, repositoryName: $repo}) {
    __typename
    ... on Repository { assetNodes {
      assetKey { path } groupName kinds description isMaterializable isExecutable jobNames
      dependencyKeys { path } dependedByKeys { path } tags { key value }
      metadataEntries { label ... on TextMetadataEntry { text } }
      assetMaterializations(limit: 1) { timestamp runId }
      freshnessStatusInfo { freshnessStatus }
      assetChecksOrError { __typename ... on AssetChecks { checks { name
        executionForLatestMaterialization { status runId timestamp } } } }
    } }
    ... on RepositoryNotFoundError { message } ... on PythonError { message }
  }
}
"""
ASSET_KEYS = """
query($loc: String!, $repo: String!) {
  repositoryOrError(repositorySelector: {repositoryLocationName: $loc, repositoryName: $repo}) {
    __typename ... on Repository { assetNodes { assetKey { path } isMaterializable } }
  }
}
"""


@dataclass
class AssetNode:
    """One asset of the organization as Dagster sees it, with keys relative to the organization."""

    key: str
    group: str | None
    kinds: list[str]
    description: str | None
    materializable: bool
    upstream: list[str]
    downstream: list[str]
    tags: dict[str, str]
    last_materialization: dict[str, Any] | None
    freshness: str | None
    checks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def relative_key(slug: str, path: Sequence[str]) -> str | None:
    """``['acme', 'sales', 'orders']`` -> ``'sales/orders'`` for org ``acme``; None outside it."""
    if len(path) < 2 or path[0] != slug:
        return None
    return "/".join(path[1:])


def absolute_path(slug: str, key: str) -> list[str]:
    return [slug, *key.split("/")]


def _node(slug: str, raw: dict[str, Any]) -> AssetNode | None:
    key = relative_key(slug, raw["assetKey"]["path"])
    if key is None:
        return None
    mats = raw.get("assetMaterializations") or []
    checks_raw = raw.get("assetChecksOrError") or {}
    checks = []
    for check in checks_raw.get("checks", []) if checks_raw.get("__typename") == "AssetChecks" else []:
        latest = check.get("executionForLatestMaterialization") or {}
        checks.append({"name": check["name"], "status": latest.get("status"), "run_id": latest.get("runId")})

    def keys(items: Iterable[dict[str, Any]]) -> list[str]:
        found = (relative_key(slug, k["path"]) for k in items)
        return sorted(k for k in found if k is not None)

    return AssetNode(
        key=key,
        group=raw.get("groupName"),
        kinds=list(raw.get("kinds") or []),
        description=raw.get("description"),
        materializable=bool(raw.get("isMaterializable")),
        upstream=keys(raw.get("dependencyKeys") or []),
        downstream=keys(raw.get("dependedByKeys") or []),
        tags={t["key"]: t["value"] for t in raw.get("tags") or []},
        last_materialization=(
            {"timestamp": float(mats[0]["timestamp"]) / 1000, "run_id": mats[0]["runId"]} if mats else None
        ),
        freshness=(raw.get("freshnessStatusInfo") or {}).get("freshnessStatus"),
        checks=checks,
        warnings=[
            e["text"] for e in raw.get("metadataEntries") or [] if e.get("label") in WARNING_LABELS and e.get("text")
        ],
    )


def _raw_asset_nodes(slug: str, query: str) -> list[dict[str, Any]]:
    """The ``assetNodes`` a query reads from the organization's repository. While its code location serves
    none (loading, or failed to load), 503 saying so: not an empty graph, which would read as an
    organization without assets (an empty list, an unknown asset, a selection of nothing)."""
    data = graphql(query, {"loc": location_name(slug), "repo": REPOSITORY})["repositoryOrError"]
    if data["__typename"] != "Repository":
        raise not_serving(slug)
    return data["assetNodes"]


def asset_nodes(slug: str) -> list[AssetNode]:
    """Every asset of the organization's code location."""
    nodes = (_node(slug, raw) for raw in _raw_asset_nodes(slug, ASSET_NODES))
    return sorted((n for n in nodes if n is not None), key=lambda n: n.key)


def asset_keys(slug: str) -> dict[str, bool]:
    """Every asset key of the organization and whether it can be run (materialized): the graph alone,
    without the event log reads ``asset_nodes`` makes for each asset (last materialization, freshness,
    checks)."""
    raw_nodes = _raw_asset_nodes(slug, ASSET_KEYS)
    keys = {relative_key(slug, raw["assetKey"]["path"]): bool(raw["isMaterializable"]) for raw in raw_nodes}
    return {key: keys[key] for key in sorted(k for k in keys if k is not None)}
