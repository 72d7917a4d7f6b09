"""A database or files source checked or discovered outside a sync (the API's tasks): the worker in the
organization's sandbox reaching only that source, its secrets given as references (a saved source) or
values (a configuration being checked), redacted from everything it says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dalgo_assets.ingestion.dlt.job import SourceJob
from dalgo_assets.ingestion.dlt.run import WorkerFailed, run_worker
from dalgo_core.spec import DatabaseFields, FileFields, OrgSpec

Progress = Callable[[str], None]


def _what(source: DatabaseFields | FileFields) -> str:
    if isinstance(source, DatabaseFields):
        return f"the {source.dialect} database {source.database} on {source.host}:{source.server_port}"
    return f"the {source.format} files at {source.url}"


def _run(spec: OrgSpec, source: DatabaseFields | FileFields, mode: str) -> tuple[Any, list[str]]:
    job = SourceJob(spec, source)
    content = job.build(mode)
    return run_worker(job, mode, content, lambda level, message: None), job.secrets


def check(spec: OrgSpec, source: DatabaseFields | FileFields, progress: Progress) -> tuple[bool, str, list[str]]:
    """Whether the source can be read, the message saying what was found or why not, and the secrets the
    check carried (for the caller's redaction)."""
    progress(f"checking {_what(source)}")
    try:
        found, secrets = _run(spec, source, "check")
    except (LookupError, ValueError, WorkerFailed) as exc:
        return False, str(exc), []
    return bool(found["succeeded"]), str(found["message"]), secrets


def discover(spec: OrgSpec, source: DatabaseFields | FileFields, progress: Progress) -> dict[str, dict[str, Any]]:
    """The source's streams by name (tables or files; ``WorkerFailed`` when it cannot be read)."""
    progress(f"discovering the streams of {_what(source)}")
    try:
        found, _ = _run(spec, source, "discover")
    except (LookupError, ValueError) as exc:
        raise WorkerFailed(str(exc)) from None
    return {s["name"]: s for s in found["streams"]}
