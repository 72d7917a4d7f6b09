"""What the run endpoints keep in Django's ``runs`` cache (``settings.CACHES``: in each API process).

- A finished run (``dalgo_api.bridge.run_for_org``): it no longer changes.
- A page of a run's event log once it cannot change: a full page with more events after it (events
  are append-only, so the page and its cursor stay the same), or any page of a run that ended more than
  ``SETTLED_SECONDS`` ago (its worker has exited and logged its last event). The latest page of a
  running run is always read from Dagster, so a client following it sees every new event.
- The answer of a filtered run list or of a page after the first, per organization and query (the first
  page without filters comes from the newest runs the bridge keeps, ``bridge.recent_runs``): every client
  polling such a list shares one storage query per ``LIST_TTL_SECONDS``. Past that age, and up to
  ``LIST_STALE_SECONDS``, the list is still answered at once while one background thread reads it again (stale while
  revalidating), so no request waits for the storage query while clients keep polling; an older list
  is read before answering. A run launched or cancelled through this process shows in its next list at
  once; one launched elsewhere (another API worker, Dagit, a sensor or a schedule) within
  ``LIST_STALE_SECONDS``.

Ages are read from ``clock`` (``time.time`` here; a test replaces it to pass time without waiting).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.db import close_old_connections

RUNS_CACHE = "runs"
LIST_TTL_SECONDS = 1.0
LIST_STALE_SECONDS = 2.0
SETTLED_SECONDS = 60.0
LOG_PAGE_TTL_SECONDS = 3600

clock: Callable[[], float] = time.time  # every age below is measured by it


def runs_cache() -> Any:
    return caches[RUNS_CACHE]


def _key(kind: str, *parts: object) -> str:
    """A short key whatever the parts (cursors and query strings are long; memcached wants <= 250)."""
    digest = hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()
    return f"{kind}:{digest}"


def _generation_key(slug: str) -> str:
    return f"list-generation:{slug}"


_list_locks: dict[str, threading.Lock] = {}
_refreshing: set[str] = set()
_list_locks_guard = threading.Lock()


def _read_into(cache: Any, key: str, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    page = read()
    cache.set(key, (clock(), page), LIST_STALE_SECONDS)
    return page


def _refresh_in_background(cache: Any, key: str, read: Callable[[], dict[str, Any]]) -> None:
    """Read the list again in one background thread per key (none if one is already reading it)."""
    with _list_locks_guard:
        if key in _refreshing:
            return
        _refreshing.add(key)

    def refresh() -> None:
        try:
            _read_into(cache, key, read)
        except Exception:  # the next request reads it itself and reports the error
            cache.delete(key)
        finally:
            with _list_locks_guard:
                _refreshing.discard(key)
            close_old_connections()

    threading.Thread(target=refresh, name=f"run-list-refresh:{key}", daemon=True).start()


def run_list(slug: str, query: str, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The organization's run list for ``query`` (the validated filters), read at most once per
    ``LIST_TTL_SECONDS`` per process (see the module docstring). When there is no list young enough to
    answer, one request thread reads it and the others asking for the same list wait for that answer
    instead of all querying Dagster at once."""
    cache = runs_cache()
    key = _key("list", slug, cache.get(_generation_key(slug), 0), query)
    entry = _young_enough(cache.get(key))
    if entry is not None:
        read_at, page = entry
        if clock() - read_at > LIST_TTL_SECONDS:
            _refresh_in_background(cache, key, read)
        return page
    with _list_locks_guard:
        lock = _list_locks.setdefault(slug, threading.Lock())
    with lock:
        entry = _young_enough(cache.get(key))
        return entry[1] if entry is not None else _read_into(cache, key, read)


def _young_enough(entry: tuple[float, dict[str, Any]] | None) -> tuple[float, dict[str, Any]] | None:
    """A cached list no older than ``LIST_STALE_SECONDS`` (the cache's own expiry says the same in real time)."""
    return entry if entry is not None and clock() - entry[0] <= LIST_STALE_SECONDS else None


def runs_changed(slug: str) -> None:
    """A run of the organization was launched or cancelled: its next run list is read fresh."""
    cache = runs_cache()
    key = _generation_key(slug)
    cache.add(key, 0, None)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, None)


def log_page(run: Any, cursor: str | None, limit: int, read: Callable[[], dict]) -> dict:
    """A page of a run's event log as ``read()`` answers it (``events``, ``cursor``, ``has_more``),
    from the cache when that page can no longer change."""
    cache = runs_cache()
    key = _key("logs", run.run_id, cursor, limit)
    page = cache.get(key)
    if page is None:
        page = read()
        full = len(page["events"]) == limit and page["has_more"]
        settled = run.finished and run.ended_at is not None and clock() - run.ended_at > SETTLED_SECONDS
        if full or settled:
            cache.set(key, page, LOG_PAGE_TTL_SECONDS)
    return page
