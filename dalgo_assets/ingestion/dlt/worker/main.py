"""The worker's entry: read the job (a JSON file, mode 0600, in a private folder of the organization's root
wiped afterwards; it holds the source's and the warehouse's credentials), do its mode, answer.

- ``sync``: first the source's catalog for the connection's chosen streams, as a question (``catalog``); the
  answer says to stop (the policy pauses), which streams to skip and which columns to load. Then each
  stream: a fast path for a full refresh where there is one (``fast``), dlt for the others (``pipeline``).
- ``reset``: the streams' tables and state dropped (dlt).
- ``check``: whether the source can be read, and what was found. ``discover``: its streams.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

from . import catalog, fast
from .io import ask, emit, message_of


def configure(workdir: str) -> None:
    """dlt's settings, all by environment (dlt reads no file of ours)."""
    os.environ.update(
        {
            "DLT_DATA_DIR": os.path.join(workdir, "dlt-data"),
            "RUNTIME__LOG_LEVEL": "ERROR",
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DATA_WRITER__DISABLE_COMPRESSION": "true",
            "DESTINATION__REPLACE_STRATEGY": "insert-from-staging",  # readers see the old rows or the new
            "SCHEMA__NAMING": "sql_ci_v1",  # lower-case identifiers: the table is the stream's name
            "LOAD__RAISE_ON_FAILED_JOBS": "true",
            "LOAD__TRUNCATE_STAGING_DATASET": "true",  # staged rows do not stay: a warehouse holds them once
            "LOAD__WORKERS": "2",
        }
    )


def sync(job: dict[str, Any]) -> dict[str, Any]:
    answer = ask(catalog=catalog.sync_catalog(job["source"], job["chosen"]))
    if answer.get("stop"):
        return {"stopped": True}
    skip, only = set(answer.get("skip") or []), answer.get("columns") or {}
    streams = [s for s in job["streams"] if s["name"] not in skip]
    quick = [s for s in streams if fast.eligible(job, s)]
    result: dict[str, Any] = {"rows": {}, "rebuilt": [], "dropped": []}
    for stream in quick:
        _add(result, fast.load(job, stream, only.get(stream["name"])))
    rest = [s for s in streams if s not in quick]
    if rest:
        from . import pipeline

        _add(result, pipeline.sync(job, rest, only))
    return result


def _add(result: dict[str, Any], done: dict[str, Any]) -> None:
    result["rows"].update(done["rows"])
    result["rebuilt"] += done["rebuilt"]
    result["dropped"] += done["dropped"]


def reset(job: dict[str, Any]) -> dict[str, Any]:
    from . import pipeline

    return pipeline.reset(job)


MODES = {"sync": sync, "reset": reset, "check": catalog.check, "discover": catalog.discover}


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    configure(os.path.dirname(sys.argv[1]))
    try:
        result = MODES[job["mode"]](job)
    except Exception as exc:
        emit(error=message_of(exc), detail=traceback.format_exc())
        sys.exit(1)
    emit(result=result)
