"""The first page of an organization's run list comes from the newest runs each API process keeps
(``bridge.recent_runs``): it must show what Dagster's storage holds, runs created anywhere (the daemon,
Dagit, another API process) and status changes within ``STALE_SECONDS``, a launch through this process at
once, and never a run of another organization. Time passes on the module's clock, moved by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dalgo_api import bridge
from dalgo_api.bridge import recent_runs, transport
from dalgo_core.names import ORG_TAG
from tests.support.dagster_runs import add_run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def pass_stale(self) -> None:
        self.now += recent_runs.STALE_SECONDS + 0.1


@pytest.fixture
def instance(dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance (SQLite) the bridge reads, and a fresh index on a clock that stands still."""
    monkeypatch.setattr(transport, "_instances", {})
    monkeypatch.setattr(recent_runs, "clock", Clock())
    recent_runs.forget()
    inst = transport.instance()
    try:
        yield inst
    finally:
        inst.dispose()


def first_page(slug: str, limit: int = 20) -> tuple[list[tuple[str, str]], str | None]:
    runs, cursor = bridge.list_runs(slug, bridge.RunQuery(limit=limit))
    return [(r.run_id, r.status) for r in runs], cursor


def test_the_first_page_shows_new_runs_and_status_changes_made_anywhere(instance: dg.DagsterInstance):
    older = [add_run(instance, "acme") for _ in range(3)]
    assert first_page("acme") == ([(run_id, "NOT_STARTED") for run_id in reversed(older)], None)

    newer = add_run(instance, "acme")  # the daemon or another API process, not this one
    instance.report_run_failed(instance.get_run_by_id(older[0]))
    recent_runs.clock.pass_stale()
    runs, cursor = first_page("acme")
    assert runs[0] == (newer, "NOT_STARTED")
    assert dict(runs)[older[0]] == "FAILURE"
    assert len(runs) == 4 and cursor is None


def test_a_launch_through_this_process_shows_at_once(instance: dg.DagsterInstance):
    add_run(instance, "acme")
    first_page("acme")
    launched = add_run(instance, "acme")
    recent_runs.changed()  # what bridge.launch_run and cancel_run call once Dagster accepted
    assert first_page("acme")[0][0] == (launched, "NOT_STARTED")


def test_another_organizations_runs_never_enter_the_list(instance: dg.DagsterInstance):
    mine = add_run(instance, "acme")
    first_page("acme")
    # Dagster's location tag decides; a run claiming the organization in Dalgo's own tag is not its own
    add_run(instance, "other", **{ORG_TAG: "acme"})
    add_run(instance, "other")
    recent_runs.clock.pass_stale()
    assert first_page("acme") == ([(mine, "NOT_STARTED")], None)
    assert mine not in dict(first_page("other")[0])


def test_pages_after_the_first_continue_where_it_stopped(instance: dg.DagsterInstance):
    ids = [add_run(instance, "acme") for _ in range(recent_runs.KEEP + 9)][::-1]  # newest first
    runs, cursor = first_page("acme", 20)
    assert [r for r, _ in runs] == ids[:20] and cursor == ids[19]
    rest, _ = bridge.list_runs("acme", bridge.RunQuery(limit=100, cursor=cursor))
    assert [r.run_id for r in rest] == ids[20:]
    # more than the process keeps: read from the storage, every run there
    assert [r for r, _ in first_page("acme", 100)[0]] == ids
    # a new run pushes the oldest kept one out of the first page, which still says there are more
    newest = add_run(instance, "acme")
    recent_runs.clock.pass_stale()
    runs, cursor = first_page("acme", recent_runs.KEEP - 1)
    assert [r for r, _ in runs] == [newest, *ids[: recent_runs.KEEP - 2]] and cursor is not None


def test_a_burst_of_new_runs_reads_every_list_again(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(recent_runs, "FEED_PAGE", 2)
    monkeypatch.setattr(recent_runs, "MAX_NEW_RUNS", 3)
    add_run(instance, "acme")
    first_page("acme")
    burst = [add_run(instance, "acme") for _ in range(6)][::-1]
    recent_runs.clock.pass_stale()
    assert [r for r, _ in first_page("acme")[0]][:6] == burst
    more = add_run(instance, "acme")  # and the feed goes on from there
    recent_runs.clock.pass_stale()
    assert first_page("acme")[0][0] == (more, "NOT_STARTED")
