"""What the alerts watch, read from Dagster's own records for every organization at once, each read
starting where the previous one stopped (cursors the caller keeps):

- runs that ended: the instance's run status changes (failure and success, one ordered stream), and for
  each ended run its asset check evaluations and the schema-change observations of its assets;
- the instance's run-less log: the FreshnessDaemon's freshness state changes, and check evaluations and
  observations reported outside runs;
- code locations: whether each organization's location loads, from the webserver's workspace.

A ``Signal`` says that a condition holds (``failing``) or no longer holds on a subject of an organization;
what to do about it is the caller's (``dalgo_api.alerts``). An organization is only ever the one Dagster
itself recorded: a run's code location (``dagster/code_location``, which a launch cannot set), or the
first part of an asset key (every key of an organization starts with its slug).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dalgo_api.bridge.assets import relative_key
from dalgo_api.bridge.runs import ASSET_JOB, run_error
from dalgo_api.bridge.transport import graphql, instance, storage_call
from dalgo_core.names import (
    CONNECTION_TAG,
    LOCATION_TAG,
    PIPELINE_TAG,
    SCHEMA_CHANGE_METADATA,
    SCHEMA_CHANGE_PENDING,
    SCHEMA_CHANGE_RESOLVED,
    SCHEMA_CHANGE_STREAMS_ADDED_METADATA,
    SCHEMA_CHANGE_SUMMARY_METADATA,
    location_org,
)
from dalgo_core.redact import redact

RUNS_CURSOR = "dagster_run_status"
RUNLESS_CURSOR = "dagster_runless_log"
BATCH = 500
DETAIL_LINES = 20
SUBJECT_ASSETS = 5  # a run's subject names at most this many of its assets


@dataclass(frozen=True)
class Signal:
    """A condition of an alert kind that holds (``failing``) or cleared on one subject of an organization."""

    kind: str  # an alert kind of ``dalgo_core.spec.ALERT_KINDS``
    org: str
    subject: str  # an asset key, "<asset key>:<check>", the runs of a pipeline or job, a code location
    failing: bool
    at: float  # when Dagster recorded it (epoch seconds)
    detail: str = ""  # Dagster's own words: the run's error, the check's result, the loader's message
    asset: str | None = None  # the asset concerned, relative to the organization
    run_id: str | None = None
    # a schema change's: the streams its connection's source gained, for the platform to add (propagate_fully)
    streams_added: tuple[str, ...] = ()


@dataclass
class Signals:
    found: list[Signal] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    more: bool = False  # a read stopped at its batch size: read again at once


def read_signals(cursors: Mapping[str, str], *, since: float) -> Signals:
    """Everything recorded after ``cursors`` (on the first read, after the time ``since``), oldest first,
    and the cursors to pass next time."""
    out = Signals(cursors=dict(cursors))
    _ended_runs(out, since)
    _runless_log(out, since)
    return out


# --- runs --------------------------------------------------------------------------------------------


def _status_changes(event_type: Any, after: int | None, since: float) -> list[Any]:
    from dagster import RunStatusChangeRecordsFilter

    if after is None:
        records_filter = RunStatusChangeRecordsFilter(event_type, after_timestamp=since)
    else:
        records_filter = RunStatusChangeRecordsFilter(event_type, after_storage_id=after)
    inst = instance()
    return list(storage_call(inst.fetch_run_status_changes, records_filter, limit=BATCH, ascending=True).records)


def _ended_runs(out: Signals, since: float) -> None:
    """Failures and successes in the order Dagster stored them (a failure, then the success that clears it)."""
    from dagster import DagsterEventType, RunsFilter

    after = int(out.cursors[RUNS_CURSOR]) if RUNS_CURSOR in out.cursors else None
    failed = _status_changes(DagsterEventType.RUN_FAILURE, after, since)
    succeeded = _status_changes(DagsterEventType.RUN_SUCCESS, after, since)
    records = sorted(failed + succeeded, key=lambda r: r.storage_id)
    full = [batch[-1].storage_id for batch in (failed, succeeded) if len(batch) == BATCH]
    if full:  # one stream stopped early: keep both in order up to where it stopped
        records = [r for r in records if r.storage_id <= min(full)]
        out.more = True
    if not records:
        return
    ids = list(dict.fromkeys(r.event_log_entry.run_id for r in records))
    runs = {
        r.dagster_run.run_id: r.dagster_run for r in storage_call(instance().get_run_records, RunsFilter(run_ids=ids))
    }
    for record in records:
        run = runs.get(record.event_log_entry.run_id)
        org = location_org(run.tags.get(LOCATION_TAG, "")) if run is not None else None
        if run is None or org is None:
            continue
        failing = record.event_log_entry.dagster_event_type == DagsterEventType.RUN_FAILURE
        out.found.extend(_recorded_in_run(org, run.run_id))
        out.found.append(
            Signal(
                kind="run_failed",
                org=org,
                subject=run_subject(org, run),
                failing=failing,
                at=record.event_log_entry.timestamp,
                detail=(run_error(run.run_id) or "") if failing else "",
                run_id=run.run_id,
            )
        )
    out.cursors[RUNS_CURSOR] = str(records[-1].storage_id)


def run_subject(org: str, run: Any) -> str:
    """What a run was for, as its alerts name it: its pipeline, its connection, its job, or the assets it
    selected (so a retry, or the next run of the same selection, is the same subject)."""
    tags = run.tags
    if tags.get(PIPELINE_TAG):
        return f"pipeline {tags[PIPELINE_TAG]}"
    if tags.get(CONNECTION_TAG):
        return f"connection {tags[CONNECTION_TAG]}"
    if run.job_name != ASSET_JOB:
        return f"job {run.job_name.removeprefix(f'{org}__')}"
    keys = sorted(k for k in (relative_key(org, a.path) for a in run.asset_selection or ()) if k)
    shown = ", ".join(keys[:SUBJECT_ASSETS]) + (
        f" and {len(keys) - SUBJECT_ASSETS} more" if len(keys) > SUBJECT_ASSETS else ""
    )
    return shown or "assets"


def _recorded_in_run(org: str, run_id: str) -> list[Signal]:
    from dagster import DagsterEventType

    kinds = {DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.ASSET_OBSERVATION}
    conn = storage_call(instance().get_records_for_run, run_id, of_type=kinds)
    return [s for record in conn.records if (s := _asset_signal(record.event_log_entry, org)) is not None]


# --- the run-less log: freshness, and checks and observations reported outside runs ---------------------


def _runless_log(out: Signals, since: float) -> None:
    from dagster import DagsterEventType
    from dagster._core.instance.utils import RUNLESS_RUN_ID  # noqa: TID251 - no public name for the run-less log

    kinds = {
        DagsterEventType.FRESHNESS_STATE_CHANGE,
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.ASSET_OBSERVATION,
    }
    cursor = out.cursors.get(RUNLESS_CURSOR)
    conn = storage_call(instance().get_records_for_run, RUNLESS_RUN_ID, cursor=cursor, of_type=kinds, limit=BATCH)
    for record in conn.records:
        entry = record.event_log_entry
        if cursor is None and entry.timestamp < since:
            continue
        signal = _asset_signal(entry, None)
        if signal is not None:
            out.found.append(signal)
    if conn.records:
        out.cursors[RUNLESS_CURSOR] = conn.cursor
        out.more = out.more or conn.has_more


# --- asset events ---------------------------------------------------------------------------------------


def _asset_signal(entry: Any, org: str | None) -> Signal | None:
    """The signal of a freshness state change, a check evaluation or a schema-change observation, for the
    organization whose namespace the asset is in (and, within a run, only the run's organization)."""
    event = entry.dagster_event
    if event is None:
        return None
    data = event.event_specific_data
    key = data.asset_key if event.event_type_value == "ASSET_CHECK_EVALUATION" else event.asset_key
    if key is None or not key.path:
        return None
    owner = org or key.path[0]
    asset = relative_key(owner, key.path)
    if asset is None:
        return None
    kind = event.event_type_value
    if kind == "FRESHNESS_STATE_CHANGE":
        return _freshness(owner, asset, data)
    if kind == "ASSET_CHECK_EVALUATION":
        return _check(owner, asset, data, entry)
    if kind == "ASSET_OBSERVATION":
        return _schema_change(owner, asset, data, entry)
    return None


def _freshness(org: str, asset: str, change: Any) -> Signal | None:
    state = str(getattr(change.new_state, "value", change.new_state))
    if state not in {"PASS", "WARN", "FAIL"}:  # UNKNOWN, NOT_APPLICABLE: nothing to say
        return None
    failing = state == "FAIL"
    detail = f"freshness {getattr(change.previous_state, 'value', change.previous_state)!s} -> {state}"
    return Signal("freshness_failed", org, asset, failing, change.state_change_timestamp, detail, asset)


def _check(org: str, asset: str, evaluation: Any, entry: Any) -> Signal:
    severity = str(getattr(evaluation.severity, "value", evaluation.severity))
    facts = [evaluation.description or ""] + [
        f"{label}: {value.value}"
        for label, value in list(evaluation.metadata.items())[:6]
        if isinstance(getattr(value, "value", None), (str, int, float))
    ]
    detail = "; ".join(f for f in facts if f)
    if not evaluation.passed:
        detail = f"severity {severity}" + (f"; {detail}" if detail else "")
    subject = f"{asset}:{evaluation.check_name}"
    return Signal(
        "check_failed", org, subject, not evaluation.passed, entry.timestamp, detail, asset, entry.run_id or None
    )


def _schema_change(org: str, asset: str, observation: Any, entry: Any) -> Signal | None:
    metadata = observation.asset_observation.metadata
    status = getattr(metadata.get(SCHEMA_CHANGE_METADATA), "value", None)
    if status not in (SCHEMA_CHANGE_PENDING, SCHEMA_CHANGE_RESOLVED):
        return None
    summary = str(getattr(metadata.get(SCHEMA_CHANGE_SUMMARY_METADATA), "value", "") or "")
    added = getattr(metadata.get(SCHEMA_CHANGE_STREAMS_ADDED_METADATA), "value", None)
    streams = tuple(str(s) for s in added) if isinstance(added, list) else ()
    failing = status == SCHEMA_CHANGE_PENDING
    return Signal(
        "schema_change_pending", org, asset, failing, entry.timestamp, summary, asset, entry.run_id or None, streams
    )


# --- code locations ---------------------------------------------------------------------------------------

LOCATIONS = """{ workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } }
  ... on PythonError { message } } }"""


def location_signals(orgs: Iterable[str], now: float) -> list[Signal]:
    """Whether each organization's code location loads, as the webserver sees it (a location still
    loading says nothing). ``DagsterUnavailable`` when the webserver cannot be reached."""
    wanted = set(orgs)
    workspace = graphql(LOCATIONS)["workspaceOrError"]
    signals = []
    for entry in workspace.get("locationEntries") or []:
        org = location_org(entry["name"])
        loaded = entry.get("locationOrLoadError") or {}
        if org not in wanted or entry.get("loadStatus") != "LOADED" or not loaded:
            continue
        failing = loaded.get("__typename") == "PythonError"
        detail = _first_lines(loaded.get("message") or "") if failing else ""
        signals.append(Signal("location_failed", org, entry["name"], failing, now, detail))
    return signals


def _first_lines(message: str) -> str:
    """The loader's message without its traceback and with no platform secret in it."""
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    cut = next((i for i, ln in enumerate(lines) if ln.startswith(("Stack Trace:", "Traceback"))), len(lines))
    return redact("\n".join(lines[: min(cut, DETAIL_LINES)]))
