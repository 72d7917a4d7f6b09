"""A STAND-IN for an Airbyte server, for tests and demos on machines that cannot run Airbyte.

This is **not Airbyte** and moves no data. Airbyte needs Docker, which this project's machines do not have,
so this small stdlib HTTP server answers the endpoints Dalgo calls with the request and response shapes of
Airbyte 1.7+, so that dagster-airbyte's ``AirbyteWorkspace`` and ``dalgo airbyte plan|apply`` run
unchanged against it:

- public API ``/api/public/v1``: ``POST applications/token``, ``GET workspaces/{id}``,
  ``GET|POST sources``, ``GET|PATCH sources/{id}``, the same for ``destinations`` and ``connections``
  (lists paginated with ``limit``/``offset`` and a ``next`` URL), ``GET|POST jobs``, ``GET|DELETE jobs/{id}``;
- configuration API ``/api/v1``: ``POST connections/get`` (the connection with its ``syncCatalog``),
  ``POST connections/update`` (its catalog and status), ``POST connections/reset/stream`` (a reset job of
  some streams), ``POST jobs/get`` (attempts with stream stats and the failure summary), and, with a
  ``ConnectorRunner``, the connectors' own calls: ``source_definitions/list_for_workspace``,
  ``source_definition_specifications/get``, ``scheduler/sources/check_connection``,
  ``sources/check_connection`` and ``sources/discover_schema``.

With a runner, the stand-in runs the real Python connectors (from PyPI, as ``dalgo_core.connectors``
installs them) for ``spec``, ``check`` and ``discover``, as Airbyte runs its connector images: a connection
gets the source's discovered catalog when it is created, and at the start of each sync the source is
discovered again and its schema changes handled as the connection's ``nonBreakingSchemaUpdatesBehavior``
says (``ignore``; ``propagate_columns``: the selected streams' columns; ``propagate_fully``: streams too;
``disable_connection``: the connection becomes ``inactive`` and the sync fails until
``connections/update`` makes it active again). Without a runner those endpoints answer 400 and
connections keep empty schemas. Sync jobs still move no data.

A sync job moves ``pending -> running -> succeeded`` one step per ``GET jobs/{id}`` (deterministic, no
clock), reporting ``records_per_stream`` rows per selected stream; for a connection marked with
``fail_connection`` (or ``POST /_control/fail {connectionId, message}``) it ends ``failed`` with that
message. Secret-looking configuration fields come back masked, as Airbyte masks ``airbyte_secret`` fields.
Every request is recorded (``.calls``, or ``GET /_calls``) so tests can check what a client called.

Run it: ``python -m tests.support.airbyte_standin --port 8000 [--username u --password p]``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

PUBLIC = "/api/public/v1"
CONFIG = "/api/v1"
MASK = "**********"
SECRET_WORDS = ("password", "secret", "token", "api_key", "credentials_json")
DEFAULT_WORKSPACE = "5ae6b09b-fdec-41af-aaf7-7d94cfc33ef6"
# public API sync modes -> configuration API (syncMode, destinationSyncMode)
SYNC_MODES = {
    "full_refresh_overwrite": ("full_refresh", "overwrite"),
    "full_refresh_append": ("full_refresh", "append"),
    "incremental_append": ("incremental", "append"),
    "incremental_deduped_history": ("incremental", "append_dedup"),
}
NEXT_STATUS = {"pending": "running", "running": "succeeded"}
DEFINITIONS_NAMESPACE = uuid.UUID("8f2a1f04-2c6e-4f4e-9a57-0d6b7c1e5a10")
# the connectors the stand-in's workspace offers (Docker repository airbyte/<connector>): PyPI versions
DEFAULT_CONNECTORS = {"source-faker": "7.2.1", "source-file": "0.5.39"}
BEHAVIORS = ("ignore", "disable_connection", "propagate_columns", "propagate_fully")
HELD = "Schema changes were detected and the connection's policy is to disable it: review them, then enable it"


class ConnectorRunner:
    """Runs a source connector's ``spec``, ``check`` or ``discover`` as Airbyte runs its image: here the
    Python package from PyPI in its own venv (``connectors_dir``), in a sandbox whose only writable
    folder is ``root`` (where the files a ``source-file`` reads are)."""

    def __init__(self, root: str, connectors_dir: str | None = None):
        self.root = root
        self.connectors_dir = connectors_dir

    def _process(self, connector: str, version: str, config: dict) -> Any:
        from dalgo_core.connectors.install import ensure_connector
        from dalgo_core.connectors.protocol import ConnectorProcess
        from dalgo_core.sandbox import Policy

        executable = ensure_connector(connector, version, self.connectors_dir)
        return ConnectorProcess(executable, config, Policy(org="airbyte", root=self.root))

    def spec(self, connector: str, version: str) -> dict:
        with self._process(connector, version, {}) as proc:
            return proc.spec()

    def check(self, connector: str, version: str, config: dict) -> tuple[bool, str]:
        from dalgo_core.connectors.protocol import ConnectorError

        with self._process(connector, version, config) as proc:
            try:
                proc.check()
            except ConnectorError as exc:
                return False, str(exc)
        return True, "succeeded"

    def discover(self, connector: str, version: str, config: dict) -> dict[str, dict]:
        """The streams, as the configuration API shows them (camelCase)."""
        with self._process(connector, version, config) as proc:
            found = proc.discover()
        return {
            name: {
                "name": name,
                "jsonSchema": s.get("json_schema") or {},
                "supportedSyncModes": s.get("supported_sync_modes") or ["full_refresh"],
                "sourceDefinedCursor": bool(s.get("source_defined_cursor")),
                "defaultCursorField": s.get("default_cursor_field") or [],
                "sourceDefinedPrimaryKey": s.get("source_defined_primary_key") or [],
                "namespace": None,
            }
            for name, s in found.items()
        }


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return MASK if any(word in key.lower() for word in SECRET_WORDS) else value


def _require(body: dict, *fields: str) -> None:
    missing = [f for f in fields if body.get(f) in (None, "")]
    if missing:
        raise ApiError(400, f"missing required field(s): {', '.join(missing)}")


class StandinAirbyte:
    """The stand-in's state and routes; ``start()`` serves it on 127.0.0.1 from a background thread."""

    def __init__(
        self,
        *,
        port: int = 0,
        workspace_id: str = DEFAULT_WORKSPACE,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        records_per_stream: int = 100,
        page_size: int = 100,
        runner: ConnectorRunner | None = None,
        connectors: dict[str, str] | None = None,
    ):
        self.port = port
        self.workspace_id = workspace_id
        self.basic = (username, password) if username else None
        self.client = (client_id, client_secret) if client_id else None
        self.records_per_stream = records_per_stream
        self.page_size = page_size
        self.calls: list[dict[str, Any]] = []
        self.sources: dict[str, dict] = {}
        self.destinations: dict[str, dict] = {}
        self.connections: dict[str, dict] = {}
        self.jobs: dict[int, dict] = {}
        self.failing: dict[str, str] = {}
        self.runner = runner
        self.definitions = {
            str(uuid.uuid5(DEFINITIONS_NAMESPACE, name)): {
                "sourceDefinitionId": str(uuid.uuid5(DEFINITIONS_NAMESPACE, name)),
                "name": name.removeprefix("source-").replace("-", " ").title(),
                "dockerRepository": f"airbyte/{name}",
                "dockerImageTag": version,
                "documentationUrl": f"https://docs.airbyte.com/integrations/sources/{name.removeprefix('source-')}",
                "sourceType": name.removeprefix("source-"),
            }
            for name, version in (connectors or DEFAULT_CONNECTORS).items()
        }
        self._tokens: set[str] = set()
        self._job_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        # routes that run a connector take the lock themselves, around what they change (not while it runs)
        self._slow = {self._create, self._patch, self._check_new, self._check_source, self._discover}
        self._routes: list[tuple[str, re.Pattern, Callable[..., Any]]] = [
            (m, re.compile(p + "$"), f)
            for m, p, f in [
                ("POST", PUBLIC + "/applications/token", self._token),
                ("GET", PUBLIC + "/workspaces/(?P<id>[^/]+)", self._workspace),
                ("GET", PUBLIC + "/(?P<kind>sources|destinations|connections)", self._list),
                ("POST", PUBLIC + "/(?P<kind>sources|destinations|connections)", self._create),
                ("GET", PUBLIC + "/(?P<kind>sources|destinations|connections)/(?P<id>[^/]+)", self._get),
                ("PATCH", PUBLIC + "/(?P<kind>sources|destinations|connections)/(?P<id>[^/]+)", self._patch),
                ("GET", PUBLIC + "/jobs", self._list_jobs),
                ("POST", PUBLIC + "/jobs", self._start_job),
                ("GET", PUBLIC + "/jobs/(?P<id>\\d+)", self._poll_job),
                ("DELETE", PUBLIC + "/jobs/(?P<id>\\d+)", self._cancel_job),
                ("POST", CONFIG + "/connections/get", self._config_connection),
                ("POST", CONFIG + "/connections/update", self._config_update),
                ("POST", CONFIG + "/connections/reset/stream", self._reset_streams),
                ("POST", CONFIG + "/jobs/get", self._config_job),
                ("POST", CONFIG + "/source_definitions/list_for_workspace", self._definitions),
                ("POST", CONFIG + "/source_definition_specifications/get", self._definition_spec),
                ("POST", CONFIG + "/scheduler/sources/check_connection", self._check_new),
                ("POST", CONFIG + "/sources/check_connection", self._check_source),
                ("POST", CONFIG + "/sources/discover_schema", self._discover),
                ("POST", "/_control/fail", self._control_fail),
            ]
        ]

    # -- serving ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandinAirbyte:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="standin-airbyte", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def add_connection(self, name: str, streams: list[str], schema: str = "raw") -> str:
        """Seed the workspace with a connection made "in the Airbyte UI" (a source-faker source and a
        duckdb destination); returns its connection id."""
        ws = self.workspace_id
        source = self._create(
            "sources", body={"name": name, "workspaceId": ws, "configuration": {"sourceType": "faker"}}
        )
        dest = self._create(
            "destinations",
            body={"name": f"{name}_dest", "workspaceId": ws, "configuration": {"destinationType": "duckdb"}},
        )
        body = {
            "name": name,
            "sourceId": source["sourceId"],
            "destinationId": dest["destinationId"],
            "configurations": {"streams": [{"name": s, "syncMode": "full_refresh_overwrite"} for s in streams]},
            "namespaceDefinition": "custom_format",
            "namespaceFormat": schema,
        }
        return self._create("connections", body=body)["connectionId"]

    def fail_connection(self, connection_id: str, message: str) -> None:
        """Make every later sync job of this connection fail with ``message``."""
        self.failing[connection_id] = message

    def handle(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return 400, {"status": 400, "title": "error", "detail": "the body is not JSON"}
        if method == "GET" and parts.path == "/_calls":
            return 200, list(self.calls)
        try:
            with self._lock:
                self.calls.append({"method": method, "path": parts.path, "query": query, "body": body})
                if not parts.path.startswith("/_control") and not parts.path.endswith("/applications/token"):
                    self._authenticate(headers.get("Authorization") or "")
            for route_method, pattern, func in self._routes:
                match = pattern.match(parts.path)
                if match and route_method == method:
                    if func in self._slow:
                        return 200, func(body=body, query=query, **match.groupdict())
                    with self._lock:
                        return 200, func(body=body, query=query, **match.groupdict())
            raise ApiError(404, f"no route {method} {parts.path}")
        except ApiError as exc:
            return exc.status, {"status": exc.status, "title": "error", "detail": exc.detail}

    def _authenticate(self, header: str) -> None:
        if self.basic is None and self.client is None:
            return
        scheme, _, value = header.partition(" ")
        if scheme == "Basic" and self.basic:
            if base64.b64decode(value).decode() == ":".join(self.basic):
                return
        elif scheme == "Bearer" and value in self._tokens:
            return
        raise ApiError(401, "Unauthorized: missing or wrong credentials")

    # -- public API: auth and workspace -------------------------------------------------------------

    def _token(self, body: dict, **_: Any) -> dict:
        if self.client is None or (body.get("client_id"), body.get("client_secret")) != self.client:
            raise ApiError(401, "invalid client credentials")
        token = uuid.uuid4().hex
        self._tokens.add(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": 180}

    def _workspace(self, id: str, **_: Any) -> dict:
        if id != self.workspace_id:
            raise ApiError(404, f"workspace {id} not found")
        return {"workspaceId": id, "name": "stand-in workspace", "dataResidency": "auto"}

    # -- public API: sources, destinations, connections ----------------------------------------------

    def _table(self, kind: str) -> dict[str, dict]:
        return {"sources": self.sources, "destinations": self.destinations, "connections": self.connections}[kind]

    def _view(self, kind: str, item: dict) -> dict:
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        return {**shown, "configuration": _masked(item["configuration"])} if kind != "connections" else shown

    def _page(self, kind: str, items: list[dict], query: dict) -> dict:
        limit = min(int(query.get("limit", 20)), self.page_size)
        offset = int(query.get("offset", 0))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        nxt = f"{self.url}{PUBLIC}/{kind}?" + urlencode({**query, "limit": limit, "offset": offset + limit})
        return {"data": page, "next": nxt if more else "", "previous": ""}

    def _list(self, kind: str, query: dict, **_: Any) -> dict:
        wanted = set(query.get("workspaceIds", self.workspace_id).split(","))
        items = [self._view(kind, i) for i in self._table(kind).values() if i["workspaceId"] in wanted]
        return self._page(kind, items, query)

    def _get(self, kind: str, id: str, **_: Any) -> dict:
        return self._view(kind, self._item(kind, id))

    def _item(self, kind: str, id: str) -> dict:
        """The stored item itself (secrets and private keys included), or 404."""
        if id not in self._table(kind):
            raise ApiError(404, f"{kind[:-1]} {id} not found")
        return self._table(kind)[id]

    def _create(self, kind: str, body: dict, **_: Any) -> dict:
        catalog = self._catalog_or_failure(body.get("sourceId"))[0] if kind == "connections" else None
        with self._lock:
            created = self._insert(kind, body)
            if catalog is not None:
                self.connections[created["connectionId"]]["_streams"] = catalog
            return created

    def _insert(self, kind: str, body: dict) -> dict:
        new_id = str(uuid.uuid4())
        if kind == "connections":
            _require(body, "sourceId", "destinationId")
            self._get("sources", body["sourceId"])
            self._get("destinations", body["destinationId"])
            source_name = self.sources[body["sourceId"]]["name"]
            item = {
                "connectionId": new_id,
                "name": body.get("name") or source_name,
                "sourceId": body["sourceId"],
                "destinationId": body["destinationId"],
                "workspaceId": self.workspace_id,
                "status": "active",
                "schedule": {"scheduleType": "manual"},
                "namespaceDefinition": "destination",
                "namespaceFormat": None,
                "prefix": "",
                "nonBreakingSchemaUpdatesBehavior": "ignore",
                "configurations": {"streams": []},
                "_streams": {},  # the connection's catalog: every stream of its source as last applied
            }
            self._update_connection(item, body)
        else:
            _require(body, "name", "workspaceId", "configuration")
            if body["workspaceId"] != self.workspace_id:
                raise ApiError(404, f"workspace {body['workspaceId']} not found")
            typed = "sourceType" if kind == "sources" else "destinationType"
            _require(body["configuration"], typed)
            item = {
                f"{kind[:-1]}Id": new_id,
                "name": body["name"],
                typed: body["configuration"][typed],
                "workspaceId": self.workspace_id,
                "configuration": body["configuration"],
            }
        self._table(kind)[new_id] = item
        return self._view(kind, item)

    def _patch(self, kind: str, id: str, body: dict, **_: Any) -> dict:
        with self._lock:
            item = self._item(kind, id)
            if kind == "connections":
                self._update_connection(item, body)
            else:
                item.update({k: body[k] for k in ("name", "configuration") if k in body})
            return self._view(kind, item)

    @staticmethod
    def _update_connection(item: dict, body: dict) -> None:
        for stream in body.get("configurations", {}).get("streams", []):
            _require(stream, "name")
            if stream.get("syncMode", "full_refresh_overwrite") not in SYNC_MODES:
                raise ApiError(400, f"stream {stream['name']}: unknown syncMode {stream['syncMode']}")
        for key in ("name", "configurations", "namespaceDefinition", "namespaceFormat", "prefix", "schedule"):
            if key in body:
                item[key] = body[key]
        for key, allowed in (("nonBreakingSchemaUpdatesBehavior", BEHAVIORS), ("status", ("active", "inactive"))):
            if key in body:
                if body[key] not in allowed:
                    raise ApiError(400, f"{key}: '{body[key]}' is not one of {', '.join(allowed)}")
                item[key] = body[key]

    # -- public API: jobs ---------------------------------------------------------------------------

    def _job_view(self, job: dict) -> dict:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _list_jobs(self, query: dict, **_: Any) -> dict:
        jobs = [
            self._job_view(j)
            for j in self.jobs.values()
            if query.get("connectionId") in (None, j["connectionId"])
            and j["startTime"] >= query.get("createdAtStart", "")
        ]
        return self._page("jobs", jobs, query)

    def _start_job(self, body: dict, **_: Any) -> dict:
        """A job, answered at once; a sync first refreshes the source's schema in the background (as
        Airbyte's sync workflow does before it reads), and stays pending until that is done."""
        _require(body, "connectionId", "jobType")
        connection = self._item("connections", body["connectionId"])
        streams = [s["name"] for s in connection["configurations"]["streams"]]
        job = self._new_job(connection, body["jobType"], streams)
        if body["jobType"] == "sync":
            job["_detecting"] = True
            threading.Thread(target=self._detect, args=(connection, job), daemon=True).start()
        return self._job_view(job)

    def _detect(self, connection: dict, job: dict) -> None:
        discovered, failure = self._catalog_or_failure(connection["sourceId"])
        with self._lock:
            if discovered is not None:
                failure = self._schema_changes(connection, discovered)
            if connection["status"] == "inactive":
                failure = failure or f"connection {connection['connectionId']} is inactive: enable it to sync"
            job["_failure"] = job["_failure"] or failure
            job["_detecting"] = False

    def _schema_changes(self, connection: dict, discovered: dict[str, dict]) -> str | None:
        """Airbyte's schema change detection at the start of a sync, as the connection's behavior says;
        the failure of the sync when the connection is disabled for it."""
        applied, selected = connection["_streams"], [s["name"] for s in connection["configurations"]["streams"]]
        if not applied:
            connection["_streams"] = discovered
            return None
        columns = [
            s
            for s in selected
            if s in discovered and s in applied and discovered[s]["jsonSchema"] != applied[s]["jsonSchema"]
        ]
        streams_changed = set(discovered) != set(applied)
        if not columns and not streams_changed:
            return None
        behavior = connection["nonBreakingSchemaUpdatesBehavior"]
        if behavior == "disable_connection":
            connection["status"] = "inactive"
            return HELD
        if behavior in ("propagate_columns", "propagate_fully"):
            for name in columns:
                applied[name] = discovered[name]
        if behavior == "propagate_fully":
            connection["_streams"] = discovered
            kept = [s for s in connection["configurations"]["streams"] if s["name"] in discovered]
            added = [{"name": n, "syncMode": "full_refresh_overwrite"} for n in discovered if n not in applied]
            connection["configurations"]["streams"] = kept + added
        return None

    def _new_job(self, connection: dict, job_type: str, streams: list[str]) -> dict:
        job_id = next(self._job_ids)
        self.jobs[job_id] = {
            "jobId": job_id,
            "status": "pending",
            "jobType": job_type,
            "connectionId": connection["connectionId"],
            "startTime": _now(),
            "lastUpdatedAt": _now(),
            "duration": "PT0S",
            "bytesSynced": 0,
            "rowsSynced": 0,
            "_streams": streams,
            "_started": time.monotonic(),
            "_failure": self.failing.get(connection["connectionId"]),
        }
        return self.jobs[job_id]

    def _job(self, id: str | int) -> dict:
        if int(id) not in self.jobs:
            raise ApiError(404, f"job {id} not found")
        return self.jobs[int(id)]

    def _poll_job(self, id: str, **_: Any) -> dict:
        job = self._job(id)
        if job["status"] in NEXT_STATUS and not job.get("_detecting"):
            job["status"] = NEXT_STATUS[job["status"]]
            job["lastUpdatedAt"] = _now()
            job["duration"] = f"PT{time.monotonic() - job['_started']:.1f}S"
            if job["status"] == "succeeded" and job["_failure"]:
                job["status"] = "failed"
            elif job["status"] == "succeeded":
                job["rowsSynced"] = self.records_per_stream * len(job["_streams"])
                job["bytesSynced"] = 100 * job["rowsSynced"]
        return self._job_view(job)

    def _cancel_job(self, id: str, **_: Any) -> dict:
        job = self._job(id)
        if job["status"] in NEXT_STATUS:
            job["status"] = "cancelled"
        return self._job_view(job)

    # -- configuration API --------------------------------------------------------------------------

    def _config_connection(self, body: dict, **_: Any) -> dict:
        _require(body, "connectionId")
        conn = self._item("connections", body["connectionId"])
        chosen = {s["name"]: s for s in conn["configurations"]["streams"]}
        known = conn.get("_streams") or {}
        streams = []
        for name in [*chosen, *(n for n in known if n not in chosen)]:
            s = chosen.get(name) or {"name": name}
            sync_mode, destination_sync_mode = SYNC_MODES[s.get("syncMode", "full_refresh_overwrite")]
            stream = known.get(name) or {
                "name": name,
                "jsonSchema": {"type": "object", "properties": {}},
                "supportedSyncModes": ["full_refresh", "incremental"],
                "namespace": None,
            }
            streams.append(
                {
                    "stream": stream,
                    "config": {
                        "syncMode": sync_mode,
                        "destinationSyncMode": destination_sync_mode,
                        "cursorField": s.get("cursorField") or [],
                        "primaryKey": s.get("primaryKey") or [],
                        "aliasName": name,
                        "selected": name in chosen,
                    },
                }
            )
        return {
            "connectionId": conn["connectionId"],
            "name": conn["name"],
            "sourceId": conn["sourceId"],
            "destinationId": conn["destinationId"],
            "namespaceDefinition": conn["namespaceDefinition"].replace("custom_format", "customformat"),
            "namespaceFormat": conn["namespaceFormat"],
            "prefix": conn["prefix"],
            "status": conn["status"],
            "scheduleType": "manual",
            "nonBreakingChangesPreference": conn["nonBreakingSchemaUpdatesBehavior"].replace("_connection", ""),
            "syncCatalog": {"streams": streams},
        }

    def _config_update(self, body: dict, **_: Any) -> dict:
        """The connection's catalog (every stream, ``config.selected`` choosing them) and status."""
        _require(body, "connectionId")
        conn = self._item("connections", body["connectionId"])
        if "syncCatalog" in body:
            entries = (body["syncCatalog"] or {}).get("streams") or []
            modes = {v: k for k, v in SYNC_MODES.items()}
            conn["_streams"] = {e["stream"]["name"]: e["stream"] for e in entries}
            conn["configurations"]["streams"] = [
                {
                    "name": e["stream"]["name"],
                    "syncMode": modes.get(
                        (e["config"].get("syncMode"), e["config"].get("destinationSyncMode")), "full_refresh_overwrite"
                    ),
                    **({"cursorField": e["config"]["cursorField"]} if e["config"].get("cursorField") else {}),
                    **({"primaryKey": e["config"]["primaryKey"]} if e["config"].get("primaryKey") else {}),
                }
                for e in entries
                if (e.get("config") or {}).get("selected")
            ]
        self._update_connection(conn, {k: body[k] for k in ("status",) if k in body})
        return self._config_connection(body={"connectionId": conn["connectionId"]})

    # -- configuration API: connectors (run by the runner) -------------------------------------------

    def _definitions(self, body: dict, **_: Any) -> dict:
        return {
            "sourceDefinitions": [{k: v for k, v in d.items() if k != "sourceType"} for d in self.definitions.values()]
        }

    def _definition(self, definition_id: str | None = None, source_type: str | None = None) -> dict:
        for definition in self.definitions.values():
            if definition["sourceDefinitionId"] == definition_id or definition["sourceType"] == source_type:
                return definition
        raise ApiError(404, f"source definition {definition_id or source_type} not found")

    def _runs(self) -> ConnectorRunner:
        if self.runner is None:
            raise ApiError(400, "this stand-in runs no connectors (start it with a ConnectorRunner)")
        return self.runner

    def _definition_spec(self, body: dict, **_: Any) -> dict:
        _require(body, "sourceDefinitionId")
        definition = self._definition(body["sourceDefinitionId"])
        found = self._runs().spec("source-" + definition["sourceType"], definition["dockerImageTag"])
        return {
            "sourceDefinitionId": definition["sourceDefinitionId"],
            "documentationUrl": found.get("documentationUrl"),
            "connectionSpecification": found.get("connectionSpecification") or {},
            "jobInfo": {"succeeded": True},
        }

    def _check(self, definition: dict, config: dict) -> dict:
        config = {k: v for k, v in config.items() if k != "sourceType"}
        ok, message = self._runs().check("source-" + definition["sourceType"], definition["dockerImageTag"], config)
        return {"status": "succeeded" if ok else "failed", "message": message, "jobInfo": {"succeeded": True}}

    def _check_new(self, body: dict, **_: Any) -> dict:
        _require(body, "sourceDefinitionId", "connectionConfiguration")
        return self._check(self._definition(body["sourceDefinitionId"]), body["connectionConfiguration"])

    def _check_source(self, body: dict, **_: Any) -> dict:
        _require(body, "sourceId")
        with self._lock:
            source = dict(self._item("sources", body["sourceId"]))
        return self._check(self._definition(source_type=source["sourceType"]), source["configuration"])

    def _source_catalog(self, source_id: str | None) -> dict[str, dict] | None:
        """The source's streams by name, discovered by its connector (None without a runner)."""
        if self.runner is None or source_id is None:
            return None
        with self._lock:
            source = dict(self._item("sources", source_id))
        definition = self._definition(source_type=source["sourceType"])
        config = {k: v for k, v in source["configuration"].items() if k != "sourceType"}
        return self.runner.discover("source-" + definition["sourceType"], definition["dockerImageTag"], config)

    def _catalog_or_failure(self, source_id: str | None) -> tuple[dict[str, dict] | None, str | None]:
        """(the source's catalog, None), or (None, the connector's message) when its discover fails."""
        from dalgo_core.connectors.protocol import ConnectorError

        try:
            return self._source_catalog(source_id), None
        except ConnectorError as exc:
            return None, str(exc)

    def _discover(self, body: dict, **_: Any) -> dict:
        _require(body, "sourceId")
        self._runs()
        found, error = self._catalog_or_failure(body["sourceId"])
        if error is not None:
            failure = {"failureOrigin": "source", "externalMessage": error}
            return {"catalog": None, "jobInfo": {"succeeded": False, "failureReason": failure}}
        found = found or {}
        streams = [
            {
                "stream": stream,
                "config": {"syncMode": "full_refresh", "destinationSyncMode": "overwrite", "selected": False},
            }
            for stream in found.values()
        ]
        return {"catalog": {"streams": streams}, "jobInfo": {"succeeded": True}, "catalogId": str(uuid.uuid4())}

    def _reset_streams(self, body: dict, **_: Any) -> dict:
        """A reset job of the streams named (``[{streamName, streamNamespace}]``), as JobInfoRead."""
        _require(body, "connectionId", "streams")
        connection = self._get("connections", body["connectionId"])
        known = {s["name"] for s in connection["configurations"]["streams"]}
        names = [s.get("streamName") for s in body["streams"]]
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise ApiError(422, f"streams not in connection {connection['connectionId']}: {unknown or 'none given'}")
        job = self._new_job(connection, "reset", names)
        info = {"id": job["jobId"], "configType": "reset_connection", "configId": job["connectionId"]}
        return {"job": {**info, "status": job["status"], "createdAt": 0, "updatedAt": 0}, "attempts": []}

    def _config_job(self, body: dict, **_: Any) -> dict:
        job = self._job(body.get("id", 0))
        ok = job["status"] == "succeeded"
        count = self.records_per_stream if ok else 0
        stats = {"recordsEmitted": count, "recordsCommitted": count}
        attempt = {
            "id": 0,
            "status": job["status"],
            "recordsSynced": job["rowsSynced"],
            "bytesSynced": job["bytesSynced"],
            "totalStats": {"recordsEmitted": job["rowsSynced"], "bytesEmitted": job["bytesSynced"]},
            "streamStats": [{"streamName": s, "streamNamespace": None, "stats": stats} for s in job["_streams"]],
        }
        if job["status"] == "failed":
            failure = {
                "failureOrigin": "source",
                "failureType": "system_error",
                "externalMessage": job["_failure"],
            }
            attempt["failureSummary"] = {"failures": [failure], "partialSuccess": False}
        info = {
            "id": job["jobId"],
            "configType": "sync",
            "configId": job["connectionId"],
            "status": job["status"],
        }
        lines = [f"stand-in: sync of connection {job['connectionId']}: {job['status']}"]
        if job["_failure"]:
            lines.append(f"ERROR {job['_failure']}")
        return {"job": info, "attempts": [{"attempt": attempt, "logs": {"logLines": lines}}]}

    def _control_fail(self, body: dict, **_: Any) -> dict:
        _require(body, "connectionId", "message")
        self.fail_connection(body["connectionId"], body["message"])
        return {"ok": True}


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = self.server.app.handle(self.command, self.path, self.headers, raw)  # type: ignore[attr-defined]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the calls are recorded instead
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A stand-in Airbyte server (not Airbyte; moves no data).")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--workspace-id", default=DEFAULT_WORKSPACE)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    args = parser.parse_args(argv)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # before announcing: a stop may follow at once
    server = StandinAirbyte(
        port=args.port,
        workspace_id=args.workspace_id,
        username=args.username,
        password=args.password,
        client_id=args.client_id,
        client_secret=args.client_secret,
    ).start()
    print(f"stand-in Airbyte listening on {server.url} (workspace {server.workspace_id})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
