"""Incremental state: the connector's STATE messages, kept per organization + connection + stream.

Saved in the warehouse (``<destination_schema>._dalgo_airbyte_state``) in the same transaction as the
records they describe, so a failed sync changes neither, and the next sync resumes from the last
successful one. Per-stream states are keyed by stream name; a GLOBAL or LEGACY state (one for the
whole connection) under ``GLOBAL_KEY``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

GLOBAL_KEY = "__global__"


def state_key(message: Mapping[str, Any]) -> str:
    """The stream a STATE message belongs to, or GLOBAL_KEY for connection-wide state."""
    state = message.get("state") or {}
    if state.get("type") == "STREAM":
        return str(state["stream"]["stream_descriptor"]["name"])
    return GLOBAL_KEY


class StateTracker:
    """The latest STATE message per stream seen during a read."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}

    def observe(self, message: Mapping[str, Any]) -> None:
        state = dict(message.get("state") or {})
        state.pop("sourceStats", None)  # counts of this read only; not part of the resume point
        self.latest[state_key(message)] = state

    def serialized(self, streams: Iterable[str]) -> dict[str, str]:
        """What to save: the states of the given streams, and the connection-wide state if any."""
        wanted = {*streams, GLOBAL_KEY}
        return {k: orjson.dumps(v).decode() for k, v in self.latest.items() if k in wanted}


def state_input(saved: Mapping[str, str], streams: Iterable[str]) -> list[dict[str, Any]]:
    """The ``--state`` file for a read of the given incremental streams, from the saved states."""
    wanted = {*streams, GLOBAL_KEY}
    return [orjson.loads(v) for k, v in sorted(saved.items()) if k in wanted]
