"""Airbyte connections as assets: one asset per stream, ``<org>/<connection>/<stream>``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dalgo_assets.spec import OrgSpec
from dalgo_assets.transform.translator import Relation


@dataclass
class IngestionDefinitions:
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    # the warehouse tables the streams land in, for the dbt sources that read them
    relations: dict[Relation, tuple[str, dg.AssetKey]] = field(default_factory=dict)


def stream_key(org: str, connection: str, stream: str) -> dg.AssetKey:
    return dg.AssetKey([org, connection, stream])


def build_ingestion_definitions(spec: OrgSpec) -> IngestionDefinitions:
    return IngestionDefinitions()
