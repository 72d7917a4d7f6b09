"""Cron expressions in an organization's timezone: one engine (croniter, as Dagster uses) for the spec's
validation and the freshness targets' deadlines.

Ticks follow Dagster's schedules across daylight saving time: a wall-clock tick that does not exist (the
hour skipped in spring) falls at the end of the gap (``30 2 * * *`` runs at 03:00 that day), a tick that
happens twice (the hour repeated in autumn) counts once, the later time; a cron that repeats every hour
skips the missing hour and fires at both repeated ones. Intervals are measured in UTC, as Dagster's
``FreshnessPolicy.cron`` measures them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

# Search this far around a moment in wall-clock time: more than any DST shift, so no tick is missed.
_MARGIN = timedelta(hours=2)


def cron_problem(cron: str) -> str | None:
    """Why a cron expression cannot be used (the 5-field crons Dagster accepts), or None."""
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        return f"'{cron}' is not a valid 5-field cron expression"
    (_minutes, _hours, days, months, _weekdays), *_ = croniter.expand(cron)
    if months == [2] and len(days) == 1 and days[0] in (30, 31):
        return f"'{cron}' never happens (February has no day {days[0]})"
    return None


def timezone_problem(tz: str) -> str | None:
    """Why a timezone name is not a known IANA timezone, or None."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"'{tz}' is not a known IANA timezone"
    return None


@cache
def _every_hour(cron: str) -> bool:
    (_minutes, hours, *_rest), *_ = croniter.expand(cron)
    return hours == ["*"]


def _instants(wall: datetime, zone: ZoneInfo, every_hour: bool) -> list[datetime]:
    """Where a tick at this wall-clock time falls (in UTC), as Dagster's schedules place it."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    shift = second.utcoffset() - first.utcoffset()  # type: ignore[operator]
    if not shift:
        found = [first]
    elif shift > timedelta(0):  # in the gap of a spring-forward transition: its end, or no tick
        found = [] if every_hour else [(wall.replace(minute=0, second=0, microsecond=0) + shift).replace(tzinfo=zone)]
    else:  # in the hour an autumn transition repeats
        found = [first, second] if every_hour else [second]
    return [instant.astimezone(UTC) for instant in found]


def _walk(cron: str, at: datetime, tz: str, forward: bool) -> Iterator[tuple[datetime, datetime]]:
    """Wall-clock ticks from a little before (after) ``at``, each with the instants it falls on."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone).replace(tzinfo=None)
    ticks = croniter(cron, local - _MARGIN if forward else local + _MARGIN)
    every_hour = _every_hour(cron)
    while True:
        wall = ticks.get_next(datetime) if forward else ticks.get_prev(datetime)
        for instant in _instants(wall, zone, every_hour):
            yield wall, instant


def next_tick(cron: str, at: datetime, tz: str = "UTC") -> datetime:
    """The first tick strictly after ``at`` (an aware datetime), in UTC."""
    best: tuple[datetime, datetime] | None = None  # (instant, its wall-clock time)
    for wall, instant in _walk(cron, at, tz, forward=True):
        if best is not None and wall > best[1] + _MARGIN:  # no later wall time can fall earlier
            return best[0]
        if instant > at and (best is None or instant < best[0]):
            best = instant, wall
    raise AssertionError("unreachable")  # pragma: no cover


def previous_tick(cron: str, at: datetime, tz: str = "UTC") -> datetime:
    """The last tick at or before ``at`` (an aware datetime), in UTC."""
    best: tuple[datetime, datetime] | None = None
    for wall, instant in _walk(cron, at, tz, forward=False):
        if best is not None and wall < best[1] - _MARGIN:
            return best[0]
        if instant <= at and (best is None or instant > best[0]):
            best = instant, wall
    raise AssertionError("unreachable")  # pragma: no cover


@lru_cache(maxsize=256)
def smallest_interval(cron: str) -> timedelta:
    """The shortest time between two ticks, in UTC: sampled over up to 1000 ticks from a year ago (at
    most 20 years), as Dagster's ``FreshnessPolicy.cron`` checks its ``lower_bound_delta``."""
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=365)
    horizon = start.replace(year=start.year + 20, day=min(start.day, 28))
    ticks = croniter(cron, start - timedelta(seconds=1))
    sampled = [ticks.get_next(datetime)]
    while len(sampled) < 1000 and sampled[-1] <= horizon:
        sampled.append(ticks.get_next(datetime))
    if sampled[-1] > horizon:
        sampled.pop()
    if len(sampled) < 2:
        raise ValueError(f"'{cron}' has no two ticks within 20 years")
    return min(b - a for a, b in pairwise(sampled))


def ticks_from(cron: str, start: datetime, tz: str = "UTC") -> Iterator[datetime]:
    """Every tick at or after ``start``, in order."""
    tick = previous_tick(cron, start, tz)
    if tick < start:
        tick = next_tick(cron, start, tz)
    while True:
        yield tick
        tick = next_tick(cron, tick, tz)
