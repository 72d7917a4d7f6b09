"""Server ingestion: an Airbyte server driven through dagster-airbyte's AirbyteWorkspace (to be built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_assets.spec import OrgSpec


def build_server_ingestion(spec: OrgSpec) -> IngestionDefinitions:
    raise NotImplementedError("server ingestion")
