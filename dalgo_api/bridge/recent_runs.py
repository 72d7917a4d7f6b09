"""Each organization's newest runs, kept in this process: the first page of a run list without filters
(what every client polling an organization's runs asks) is answered from memory, whatever the number of
organizations and the length of their history.

In Dagster's storage an organization's run list is a join of its location tag over all of its runs, then
a sort (7-18 ms in PostgreSQL at 1,000 runs, growing with history); a hundred organizations' lists read
once a second by each API process cost more than two cores have. Instead:

- an organization's newest ``KEEP`` runs are read once, when its list is first asked in this process, and
  again every ``REREAD_SECONDS`` in the background (a run deleted in Dagster leaves the list then);
- at most once a second, one catch-up for the whole fleet: the ids of the instance's newest runs (the runs
  table's primary key: cheap at any history), then in one query the records of the new ones (placed in
  their organization's list) and of the kept runs that had not ended (their status, start and end). A
  burst of more than ``MAX_NEW_RUNS`` new runs between two catch-ups empties the index: every list is read
  again when asked;
- a list is caught up before answering when the last catch-up is older than ``STALE_SECONDS``; between
  ``REFRESH_SECONDS`` and that, it is answered at once while one background thread catches up.

A run launched or cancelled through this process shows in its next list (``changed``); one launched
elsewhere (another API worker, Dagit, a sensor, a schedule) within ``STALE_SECONDS``. An API server
process reads every organization's list as it starts (``warm``, from ``dalgo_api.wsgi``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dalgo_api.bridge.run_records import RunInfo, records_page, run_info
from dalgo_api.bridge.transport import dagster_home, instance, storage_call
from dalgo_core.names import LOCATION_TAG, location_name

KEEP = 51  # a first page of up to 50 runs and whether there are more
FEED_PAGE = 100
MAX_NEW_RUNS = 2000
REFRESH_SECONDS = 1.0
STALE_SECONDS = 2.0
REREAD_SECONDS = 300.0

clock: Callable[[], float] = time.monotonic  # every age below is measured by it

logger = logging.getLogger(__name__)


@dataclass
class _OrgRuns:
    runs: list[tuple[int, RunInfo]]  # (storage id, run), newest first, at most KEEP
    complete: bool  # no older run of the organization exists
    read_at: float
    rereading: bool = False


@dataclass
class _Index:
    home: str | None = None  # the Dagster home whose runs these are
    orgs: dict[str, _OrgRuns] = field(default_factory=dict)
    seen: dict[str, None] = field(default_factory=dict)  # run ids met in the feed or a read, oldest first
    primed: bool = False  # the feed's newest ids are known: what is not among them is new
    caught_up_at: float = float("-inf")
    catching_up: bool = False
    changes: int = 0  # launches and cancellations through this process (``changed``)
    # organizations whose list is being read: what a catch-up meanwhile finds of them, put in once read
    pending: dict[str, list[tuple[int, RunInfo]]] = field(default_factory=dict)


_index = _Index()
_state = threading.Lock()  # guards _index
_catch_up_lock = threading.Lock()  # one catch-up at a time
_org_locks: dict[str, threading.Lock] = {}


def first_page(slug: str, limit: int) -> tuple[list[RunInfo], bool] | None:
    """The organization's newest ``limit`` runs and whether it has older ones; None when ``limit`` is
    more than this keeps (the caller reads the storage)."""
    if limit >= KEEP:
        return None
    _for_home(dagster_home())
    _catch_up_when_due()
    entry = _org(slug)
    with _state:
        runs = [run for _, run in entry.runs]
        complete = entry.complete
    if len(runs) <= limit and not complete:
        return None
    return runs[:limit], len(runs) > limit


def warm(slugs: Iterable[str]) -> None:
    """Read the organizations' newest runs now: an API process starting, so that its first lists are
    answered from memory too."""
    _for_home(dagster_home())
    _catch_up_when_due()
    for slug in slugs:
        _org(slug)


def changed() -> None:
    """A run was launched or cancelled through this process: the next list catches up first."""
    with _state:
        _index.caught_up_at = float("-inf")
        _index.changes += 1


def forget() -> None:
    """Empty the index (after a burst of new runs)."""
    global _index
    with _state:
        _index = _Index(home=_index.home)


def _for_home(home: str) -> None:
    """Keep the runs of the instance the process reads (a new one when ``DAGSTER_HOME`` changed)."""
    global _index
    with _state:
        if _index.home != home:
            _index = _Index(home=home)


# --- an organization's list ------------------------------------------------------------------------


def _org(slug: str) -> _OrgRuns:
    """The organization's kept list, read first if this process has none (one reader per organization;
    the others asking wait for it), and read again in the background once it is ``REREAD_SECONDS`` old."""
    with _state:
        entry = _index.orgs.get(slug)
        if entry is not None:
            if clock() - entry.read_at > REREAD_SECONDS and not entry.rereading:
                entry.rereading = True
                threading.Thread(target=_reread, args=(slug,), name=f"recent-runs:{slug}", daemon=True).start()
            return entry
        lock = _org_locks.setdefault(slug, threading.Lock())
    with lock:
        with _state:
            entry = _index.orgs.get(slug)
        return entry if entry is not None else _read_org(slug)


def _read_org(slug: str) -> _OrgRuns:
    from dagster import RunsFilter

    with _state:
        index = _index
        index.pending[slug] = []
    read_at = clock()
    try:
        records = records_page(instance(), RunsFilter(tags={LOCATION_TAG: location_name(slug)}), KEEP, None)
    except Exception:
        with _state:
            index.pending.pop(slug, None)
        raise
    entry = _OrgRuns([(r.storage_id, run_info(r)) for r in records], complete=len(records) < KEEP, read_at=read_at)
    with _state:
        for storage_id, run in index.pending.pop(slug, []):  # created or changed while it was read
            _put(entry, storage_id, run)
        index.orgs[slug] = entry
        _remember(index, [run.run_id for _, run in entry.runs])
    return entry


def _reread(slug: str) -> None:
    try:
        _read_org(slug)
    except Exception:  # kept as it was; read again at the next age check
        logger.warning("organization %s: reading its newest runs again failed", slug, exc_info=True)
        with _state:
            entry = _index.orgs.get(slug)
            if entry is not None:
                entry.rereading = False


# --- the fleet's catch-up --------------------------------------------------------------------------


def _catch_up_when_due() -> None:
    with _state:
        age = clock() - _index.caught_up_at
        if age <= REFRESH_SECONDS:
            return
        background = age <= STALE_SECONDS
        if background:
            if _index.catching_up:
                return
            _index.catching_up = True
    if background:
        threading.Thread(target=_catch_up_in_background, name="recent-runs", daemon=True).start()
        return
    with _catch_up_lock:
        with _state:
            due = clock() - _index.caught_up_at > REFRESH_SECONDS
        if due:
            _catch_up()


def _catch_up_in_background() -> None:
    try:
        with _catch_up_lock:
            _catch_up()
    except Exception:  # the next request past STALE_SECONDS catches up itself and reports the error
        logger.warning("catching up with the newest runs failed", exc_info=True)
    finally:
        with _state:
            _index.catching_up = False


def _catch_up() -> None:
    """Read what changed since the last catch-up (see the module docstring)."""
    from dagster import RunsFilter

    inst = instance()
    with _state:
        index = _index
        changes = index.changes
    started = clock()
    new_ids = _new_run_ids(inst, index)
    if new_ids is None:
        forget()
        _catch_up()  # primes the emptied index before any list is read into it
        return
    with _state:
        unfinished = [run.run_id for entry in index.orgs.values() for _, run in entry.runs if not run.finished]
    wanted = list(dict.fromkeys(new_ids + unfinished))
    records = storage_call(inst.get_run_records, RunsFilter(run_ids=wanted)) if wanted else []
    with _state:
        for record in records:
            run = run_info(record)
            entry = index.orgs.get(run.org or "")
            if entry is not None:
                _put(entry, record.storage_id, run)
            if run.org in index.pending:
                index.pending[run.org].append((record.storage_id, run))
        _remember(index, new_ids)
        if index.changes == changes:  # else a launch here may be newer than what was read
            index.caught_up_at = max(index.caught_up_at, started)


def _new_run_ids(inst: object, index: _Index) -> list[str] | None:
    """The ids of the runs created since the last catch-up, newest first (none at the first: what is
    read from then on is new); None when there are more than ``MAX_NEW_RUNS``."""
    from dagster import RunsFilter

    new: list[str] = []
    cursor = None
    while True:
        ids = storage_call(inst.get_run_ids, RunsFilter(), limit=FEED_PAGE, cursor=cursor)
        if not index.primed:
            with _state:
                _remember(index, ids)
                index.primed = True
            return []
        with _state:
            fresh = [run_id for run_id in ids if run_id not in index.seen]
        new += fresh
        if len(fresh) < len(ids) or len(ids) < FEED_PAGE:
            return new
        if len(new) > MAX_NEW_RUNS:
            return None
        cursor = ids[-1]


def _put(entry: _OrgRuns, storage_id: int, run: RunInfo) -> None:
    """Place a new or changed run in the organization's kept list (newest first, at most ``KEEP``)."""
    runs = [(sid, kept) for sid, kept in entry.runs if kept.run_id != run.run_id]
    if len(runs) < KEEP or entry.complete or storage_id > runs[-1][0]:
        runs.append((storage_id, run))
        runs.sort(key=lambda item: item[0], reverse=True)
    if len(runs) > KEEP:
        del runs[KEEP:]
        entry.complete = False
    entry.runs = runs


def _remember(index: _Index, run_ids: list[str]) -> None:
    """Mark runs as met (the ``4 * MAX_NEW_RUNS`` most recent are kept: a bounded set)."""
    for run_id in run_ids:
        index.seen[run_id] = None
    excess = len(index.seen) - 4 * MAX_NEW_RUNS
    for run_id in list(index.seen)[: max(excess, 0)]:
        del index.seen[run_id]
