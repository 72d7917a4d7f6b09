"""How the bridge reaches Dagster: the webserver's GraphQL API for writes and the asset graph, the
instance's storage for run reads (several times cheaper than GraphQL for the same rows).

When Dagster cannot be reached, ``DagsterUnavailable`` is raised and the API answers 503; when Dagster
answers but refuses, ``DagsterRejected`` (409).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from dalgo_api.errors import ApiError

DEFAULT_URL = "http://127.0.0.1:3000"
TIMEOUT_SECONDS = float(os.environ.get("DALGO_DAGSTER_TIMEOUT_SECONDS", "30"))
T = TypeVar("T")
# the instance's PostgreSQL pool, as dagster-webserver's defaults (--db-statement-timeout, --db-pool-*)
STATEMENT_TIMEOUT_MS = 15_000
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 20
# connections each storage keeps open at most: a worker's request threads (``dalgo up``: 4) and its
# background readers (the run lists' refresh); a sync worker (``dalgo serve``) uses two or three
POOL_KEPT_CONNECTIONS = 6


RETRY_AFTER_SECONDS = 5  # Retry-After of a 503 that passes: Dagster restarting, a code location loading


class DagsterUnavailable(ApiError):
    """Dagster (its webserver or its instance storage) cannot be reached: the API answers 503."""

    def __init__(self, detail: str):
        super().__init__(503, f"Dagster is unavailable: {detail}; try again shortly", retry_after=RETRY_AFTER_SECONDS)


class DagsterRejected(ApiError):
    """Dagster answered but refused the request (a launch, cancel or code location error): 409."""

    def __init__(self, detail: str):
        super().__init__(409, detail)


def webserver_url() -> str:
    return os.environ.get("DALGO_DAGSTER_URL", DEFAULT_URL).rstrip("/")


def dagit_url() -> str:
    """Where operators open Dagit (``DALGO_DAGIT_URL``, else the webserver the API talks to)."""
    return os.environ.get("DALGO_DAGIT_URL", webserver_url()).rstrip("/")


# --- GraphQL -----------------------------------------------------------------------------------------

_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def graphql(query: str, variables: dict[str, Any] | None = None, *, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Run one GraphQL operation; connection problems and server errors become ``DagsterUnavailable``."""
    url = webserver_url()
    try:
        response = _session().post(
            f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
    except requests.RequestException as exc:
        raise DagsterUnavailable(f"the Dagster webserver at {url} cannot be reached ({type(exc).__name__})") from exc
    if response.status_code >= 500:
        raise DagsterUnavailable(f"the Dagster webserver at {url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise DagsterUnavailable(f"the Dagster webserver at {url} did not answer JSON") from None
    if body.get("errors"):
        raise DagsterRejected("; ".join(e.get("message", "?") for e in body["errors"]))
    return body["data"]


def python_error(result: dict[str, Any]) -> str:
    """The message of a GraphQL error union member (``PythonError``, ``InvalidSubsetError``, ...)."""
    message = result.get("message") or result.get("__typename", "error")
    errors = result.get("errors") or []
    return "; ".join([message, *(e.get("message", "") for e in errors)]).strip("; ")


def client(timeout: float = TIMEOUT_SECONDS) -> Any:
    """``dagster_graphql.DagsterGraphQLClient`` for the webserver (one per thread and timeout)."""
    from dagster_graphql import DagsterGraphQLClient

    url = webserver_url()
    key = (url, timeout)
    clients = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = {}
    if key not in clients:
        parts = urlsplit(url)
        clients[key] = DagsterGraphQLClient(
            parts.hostname or "127.0.0.1",
            port_number=parts.port,
            use_https=parts.scheme == "https",
            path_prefix=parts.path.rstrip("/"),
            timeout=int(timeout),
        )
    return clients[key]


def client_call(call: Callable[[Any], T], *, timeout: float = TIMEOUT_SECONDS) -> T:
    """Call the GraphQL client; a connection or server failure is ``DagsterUnavailable``, any other
    error of the client (Dagster's refusal) ``DagsterRejected`` with Dagster's message."""
    from dagster_graphql import DagsterGraphQLClientError
    from gql.transport.exceptions import TransportConnectionFailed, TransportServerError

    try:
        return call(client(timeout))
    except DagsterGraphQLClientError as exc:
        cause = exc.__cause__
        unreachable = (requests.RequestException, TransportConnectionFailed, TransportServerError)
        if isinstance(cause, unreachable) or "Server error with code" in str(exc):
            raise DagsterUnavailable(f"the Dagster webserver at {webserver_url()} cannot be reached") from exc
        detail = exc.body if isinstance(getattr(exc, "body", None), str) else str(exc)
        raise DagsterRejected(detail.strip()) from None


# --- the instance ----------------------------------------------------------------------------------

_instance_lock = threading.Lock()
_instances: dict[str, Any] = {}


def dagster_home() -> str:
    """``DAGSTER_HOME``, else the platform's default (``dalgo_core.layout``), as ``dalgo up`` uses."""
    from dalgo_core import layout

    return os.environ.get("DAGSTER_HOME") or str(layout.dagster_home())


def instance() -> Any:
    """The Dagster instance of ``DAGSTER_HOME`` (one per home, kept for the process)."""
    from dagster import DagsterInstance

    home = dagster_home()
    with _instance_lock:
        if home not in _instances:
            try:
                inst = DagsterInstance.from_config(home)
                # a long-lived reader like the webserver: Dagster's own switch from a new PostgreSQL
                # connection per storage call (its NullPool) to a kept one, with the webserver's defaults
                # (a no-op on SQLite)
                inst.optimize_for_webserver(
                    statement_timeout=STATEMENT_TIMEOUT_MS,
                    pool_recycle=POOL_RECYCLE_SECONDS,
                    max_overflow=POOL_MAX_OVERFLOW,
                )
                _keep_connections(inst, POOL_KEPT_CONNECTIONS)
                _no_ping(inst)
                _remember_schema_checks(inst.run_storage)
                _instances[home] = inst
            except Exception as exc:
                raise DagsterUnavailable(f"Dagster's instance at {home} cannot be opened: {exc}") from exc
        return _instances[home]


def _pools(inst: Any) -> list[Any]:
    """The connection pools of the instance's storages (SQLAlchemy engines; on SQLite too)."""
    engines = (getattr(s, "_engine", None) for s in (inst.run_storage, inst.event_log_storage, inst.schedule_storage))
    return [pool for pool in (getattr(e, "pool", None) for e in engines) if pool is not None]


def _keep_connections(inst: Any, size: int) -> None:
    """Keep up to ``size`` connections of each PostgreSQL storage open. Dagster's webserver pool keeps one
    (``optimize_for_webserver``: ``pool_size=1``) and opens a new connection for every storage call that
    overlaps another, closing it after: with a worker's threads reading at once, a third of the API's
    storage calls paid a PostgreSQL connection (a new server process and its authentication). The pool's
    queue is given room for ``size``; nothing else of Dagster's engine changes (on SQLite there is none)."""
    from sqlalchemy.pool import QueuePool

    for pool in _pools(inst):
        if isinstance(pool, QueuePool) and pool.size() < size:
            pool._pool.maxsize = size


def _no_ping(inst: Any) -> None:
    """Use a pooled PostgreSQL connection without testing it first. The instance yaml's plugin
    (``dalgo_pool_pre_ping``) has each pool send ``SELECT 1`` before every use, so that the webserver
    never fails a read after a PostgreSQL restart; that is a round trip more for each of the API's storage
    reads (two for a run's log page). The API reads again instead when a connection turns out closed
    (``storage_call``), so no request fails either."""
    for pool in _pools(inst):
        pool._pre_ping = False


# Dagster's SQL run storage asks the database for the runs table's columns on every run read
# (``has_run_stats_index_cols``: a catalog query, a third of a run detail's time on PostgreSQL). The schema
# does not change under a running API process: every deployment (``dalgo up``/``serve``, compose, the Helm
# chart) creates or migrates Dagster's storage before the API starts.
SCHEMA_CHECKS = ("has_run_stats_index_cols", "has_backfill_id_column", "has_bulk_actions_selector_cols")


def _remember_schema_checks(storage: Any) -> None:
    """Ask each of the storage's schema questions once for the process's life."""
    for name in SCHEMA_CHECKS:
        check = getattr(storage, name, None)
        if callable(check):
            setattr(storage, name, functools.cache(check))


def open_in_background(then: Callable[[], None] | None = None) -> None:
    """Open Dagster's instance in a thread as an API server process starts, so that the first request
    needing it does not pay Dagster's import and the storage's opening (2-3 s): ``dalgo_api.wsgi`` calls
    it (with the GraphQL client's imports), and ``then()`` after, in the same thread. A request arriving
    meanwhile waits on the same lock; an instance that cannot be opened yet is opened again by the
    request that needs it."""

    def open_quietly() -> None:
        import dagster_graphql  # noqa: F401 - the GraphQL client's imports, paid here too
        import gql.transport.exceptions  # noqa: F401

        with contextlib.suppress(DagsterUnavailable):
            instance()
        if then is not None:
            then()

    threading.Thread(target=open_quietly, name="dagster-instance", daemon=True).start()


def storage_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the instance; a storage failure (database down) is ``DagsterUnavailable``. A call on a pooled
    connection the server had closed (PostgreSQL restarted) is made once more: SQLAlchemy has then dropped
    every connection the pool held before the failure, so the second call connects anew. The API's
    storage calls are reads, and two idempotent writes (a pool's default limit; an asset observation,
    which the failed call could only have stored if the server closed the connection after committing it)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    try:
        try:
            return fn(*args, **kwargs)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return fn(*args, **kwargs)
    except SQLAlchemyError as exc:
        raise DagsterUnavailable(f"Dagster's run storage cannot be read ({type(exc).__name__})") from exc
