"""Observations the platform records outside runs: the task worker's schema refreshes and approvals say,
per stream of a connection, whether a change waits for approval (``dalgo_core.connectors.changes``), as
syncs do inside their runs. Each is an ``AssetObservation`` in the instance's run-less log, through
Dagster's public ``DagsterInstance.report_runless_asset_event``, where the alert dispatcher reads it
(``signals``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dalgo_api.bridge.assets import absolute_path
from dalgo_api.bridge.transport import instance, storage_call


def report_observations(slug: str, observed: Mapping[str, Mapping[str, Any]]) -> None:
    """Record an observation of each of the organization's assets (keys relative to it, ``connection/
    stream``) with its metadata; ``DagsterUnavailable`` when the instance cannot be written."""
    from dagster import AssetKey, AssetObservation

    inst = instance()
    for key, metadata in observed.items():
        event = AssetObservation(asset_key=AssetKey(absolute_path(slug, key)), metadata=dict(metadata))
        storage_call(inst.report_runless_asset_event, event)
