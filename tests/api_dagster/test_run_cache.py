"""What the run endpoints may answer from Django's cache: only log pages that can no longer change, and
run lists for a second (two while clients poll them), except that a run launched through this process
shows at once (no Dagster process needed: the rules of ``dalgo_api.runs.cache`` with Dagster's own run objects).
Time passes on the cache's clock, moved by the tests: they wait for no second to go by."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from dalgo_api.bridge.runs import RunInfo
from dalgo_api.runs import cache


@pytest.fixture(autouse=True)
def empty_cache():
    cache.runs_cache().clear()
    yield
    cache.runs_cache().clear()


class Clock:
    """The cache's clock: it stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cache, "clock", fake)
    return fake


class Reads:
    """A log or list reader answering what Dagster stores right now, counting how often it is asked."""

    def __init__(self, events: list[str], has_more: bool = False):
        self.calls = 0
        self.events = events
        self.has_more = has_more

    def __call__(self) -> dict:
        self.calls += 1
        return {"events": list(self.events), "cursor": str(len(self.events)), "has_more": self.has_more}


def run(status: str, ended_at: float | None = None) -> RunInfo:
    return RunInfo(
        run_id=f"run-{status.lower()}",
        org="acme",
        status=status,
        job="__ASSET_JOB",
        tags={},
        assets=None,
        created_at=datetime.now(UTC),
        updated_at=None,
        started_at=None,
        ended_at=ended_at,
    )


def test_the_latest_page_of_a_running_run_is_read_again_so_new_events_show():
    running = run("STARTED")
    reads = Reads(["step started"])
    assert cache.log_page(running, "c1", 100, reads)["events"] == ["step started"]
    reads.events.append("step succeeded")
    assert cache.log_page(running, "c1", 100, reads)["events"] == ["step started", "step succeeded"]
    assert reads.calls == 2


def test_a_full_page_cannot_change_and_is_read_once():
    running = run("STARTED")
    reads = Reads([f"line {n}" for n in range(3)], has_more=True)
    first = cache.log_page(running, None, 3, reads)
    reads.events.append("line 3")  # events are appended after the page, never inside it
    assert cache.log_page(running, None, 3, reads) == first
    assert reads.calls == 1


def test_the_last_page_of_a_run_that_just_ended_is_read_again_until_it_settled(clock: Clock):
    reads = Reads(["run succeeded"])
    ended = run("SUCCESS", clock.now)
    cache.log_page(ended, "c9", 100, reads)
    reads.events.append("Process for run exited")  # the run worker's last event comes after the end
    clock.advance(cache.SETTLED_SECONDS - 1)
    assert cache.log_page(ended, "c9", 100, reads)["events"][-1] == "Process for run exited"
    clock.advance(2)  # ended more than SETTLED_SECONDS ago: read once more, then kept
    cache.log_page(ended, "c9", 100, reads)
    cache.log_page(ended, "c9", 100, reads)
    assert reads.calls == 3


def test_a_run_list_is_shared_for_a_second_but_a_launch_here_shows_at_once(clock: Clock):
    reads = Reads(["old run"])
    assert cache.run_list("acme", "q", reads)["events"] == ["old run"]
    reads.events.append("new run")
    clock.advance(cache.LIST_TTL_SECONDS - 0.1)
    assert cache.run_list("acme", "q", reads)["events"] == ["old run"]  # within LIST_TTL_SECONDS
    assert reads.calls == 1
    assert cache.run_list("globex", "q", reads)["events"] == ["old run", "new run"]  # per organization
    cache.runs_changed("acme")
    assert cache.run_list("acme", "q", reads)["events"] == ["old run", "new run"]


def _background_reads_done() -> None:
    """Wait for the lists the cache reads again in the background (threads named run-list-refresh:...)."""
    for thread in threading.enumerate():
        if thread.name.startswith("run-list-refresh:"):
            thread.join(timeout=10)


def test_a_polled_run_list_is_answered_at_once_and_read_again_behind_the_scenes(clock: Clock):
    reads = Reads(["old run"])
    cache.run_list("acme", "q", reads)
    reads.events.append("new run")
    clock.advance(cache.LIST_TTL_SECONDS + 0.1)
    # older than LIST_TTL_SECONDS, younger than LIST_STALE_SECONDS: answered now, read again in the background
    assert cache.run_list("acme", "q", reads)["events"] == ["old run"]
    _background_reads_done()
    assert cache.run_list("acme", "q", reads)["events"] == ["old run", "new run"]
    assert reads.calls == 2
    # nobody polled for LIST_STALE_SECONDS: the list is read before answering, never served that old
    reads.events.append("newer run")
    clock.advance(cache.LIST_STALE_SECONDS + 0.1)
    assert cache.run_list("acme", "q", reads)["events"] == ["old run", "new run", "newer run"]
    assert reads.calls == 3
