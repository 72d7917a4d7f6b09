"""Embedded ingestion: Airbyte's Python source connectors run on this host (to be built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_assets.spec import OrgSpec


def build_embedded_ingestion(spec: OrgSpec) -> IngestionDefinitions:
    raise NotImplementedError("embedded ingestion")
