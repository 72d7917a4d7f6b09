"""Deadlines in an organization's timezone: ticks fall where Dagster's schedules put them, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dalgo_core.cron import next_tick, previous_tick, smallest_interval, ticks_from

NY = "America/New_York"  # 2026: 02:00 -> 03:00 on March 8, 02:00 -> 01:00 on November 1


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_tick_is_at_its_wall_clock_time_in_the_timezone() -> None:
    at = utc(2026, 3, 2, 4, 0)
    assert previous_tick("0 9 * * *", at, "Asia/Kolkata") == utc(2026, 3, 2, 3, 30)  # 09:00 IST
    assert next_tick("0 9 * * *", at, "Asia/Kolkata") == utc(2026, 3, 3, 3, 30)
    # a tick at the very moment is the latest one, not the next
    assert previous_tick("0 9 * * *", utc(2026, 3, 2, 9), "UTC") == utc(2026, 3, 2, 9)
    assert next_tick("0 9 * * *", utc(2026, 3, 2, 9), "UTC") == utc(2026, 3, 3, 9)


def test_a_tick_in_the_skipped_hour_falls_at_its_end_and_a_repeated_one_counts_once_the_later() -> None:
    assert next_tick("30 2 * * *", utc(2026, 3, 8, 5), NY) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert next_tick("30 2 * * *", utc(2026, 3, 8, 7), NY) == utc(2026, 3, 9, 6, 30)  # 02:30 EDT
    assert next_tick("30 1 * * *", utc(2026, 11, 1, 5), NY) == utc(2026, 11, 1, 6, 30)  # 01:30 EST
    # at 01:45 EDT the day's 01:30 has not happened yet: it is the one at 01:30 EST
    assert previous_tick("30 1 * * *", utc(2026, 11, 1, 5, 45), NY) == utc(2026, 10, 31, 5, 30)


def test_an_hourly_cron_skips_the_missing_hour_and_fires_in_both_repeated_ones() -> None:
    assert next_tick("30 * * * *", utc(2026, 3, 8, 6, 45), NY) == utc(2026, 3, 8, 7, 30)  # 01:45 EST -> 03:30 EDT
    repeated = ticks_from("30 * * * *", utc(2026, 11, 1, 5), NY)
    # 01:30 EDT, 01:30 EST, 02:30 EST
    assert [next(repeated) for _ in range(3)] == [utc(2026, 11, 1, h, 30) for h in (5, 6, 7)]


def test_the_smallest_interval_is_the_shortest_gap_between_ticks() -> None:
    assert smallest_interval("0 9 * * *") == timedelta(days=1)
    assert smallest_interval("0 9,17 * * *") == timedelta(hours=8)
    assert smallest_interval("0 9 1 * *") == timedelta(days=28)  # February
