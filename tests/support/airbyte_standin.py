"""A STAND-IN for an Airbyte server, for tests and demos on machines that cannot run Airbyte.

This is **not Airbyte** and moves no data. Airbyte needs Docker, which this project's machines do not have,
so this small stdlib HTTP server answers the endpoints Dalgo calls with the request and response shapes of
Airbyte 1.7+, so that dagster-airbyte's ``AirbyteWorkspace`` and ``dalgo airbyte plan|apply`` run
unchanged against it:

- public API ``/api/public/v1``: ``POST applications/token``, ``GET workspaces/{id}``,
  ``GET|POST sources``, ``GET|PATCH sources/{id}``, the same for ``destinations`` and ``connections``
  (lists paginated with ``limit``/``offset`` and a ``next`` URL), ``GET|POST jobs``, ``GET|DELETE jobs/{id}``;
- configuration API ``/api/v1``: ``POST connections/get`` (the connection with its ``syncCatalog``),
  ``POST connections/reset/stream`` (a reset job of some streams) and ``POST jobs/get`` (attempts with
  stream stats and the failure summary).

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
        self._tokens: set[str] = set()
        self._job_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
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
                ("POST", CONFIG + "/connections/reset/stream", self._reset_streams),
                ("POST", CONFIG + "/jobs/get", self._config_job),
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
        with self._lock:
            self.calls.append({"method": method, "path": parts.path, "query": query, "body": body})
            try:
                if not parts.path.startswith("/_control") and not parts.path.endswith("/applications/token"):
                    self._authenticate(headers.get("Authorization") or "")
                for route_method, pattern, func in self._routes:
                    match = pattern.match(parts.path)
                    if match and route_method == method:
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
        return {**item, "configuration": _masked(item["configuration"])} if kind != "connections" else item

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
        if id not in self._table(kind):
            raise ApiError(404, f"{kind[:-1]} {id} not found")
        return self._view(kind, self._table(kind)[id])

    def _create(self, kind: str, body: dict, **_: Any) -> dict:
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
        self._get(kind, id)
        item = self._table(kind)[id]
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
        _require(body, "connectionId", "jobType")
        connection = self._get("connections", body["connectionId"])
        streams = [s["name"] for s in connection["configurations"]["streams"]]
        return self._job_view(self._new_job(connection, body["jobType"], streams))

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
        if job["status"] in NEXT_STATUS:
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
        conn = self._get("connections", body["connectionId"])
        streams = []
        for s in conn["configurations"]["streams"]:
            sync_mode, destination_sync_mode = SYNC_MODES[s.get("syncMode", "full_refresh_overwrite")]
            streams.append(
                {
                    "stream": {
                        "name": s["name"],
                        "jsonSchema": {"type": "object", "properties": {}},
                        "supportedSyncModes": ["full_refresh", "incremental"],
                        "namespace": None,
                    },
                    "config": {
                        "syncMode": sync_mode,
                        "destinationSyncMode": destination_sync_mode,
                        "cursorField": s.get("cursorField") or [],
                        "primaryKey": s.get("primaryKey") or [],
                        "aliasName": s["name"],
                        "selected": True,
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
            "syncCatalog": {"streams": streams},
        }

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
        stats = {"recordsEmitted": self.records_per_stream if ok else 0}
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
