"""The HTTP client for an organization's Airbyte server: dagster-airbyte's ``AirbyteClient``, extended.

dagster-airbyte's client drives syncs (``sync_and_poll``) but its errors drop their cause ("Max retries
exceeded") and a failed job only says "Job failed: 12". This subclass keeps the cause of a failed request,
does not retry answers that retrying cannot change (4xx), and fetches a failed job's own message from the
configuration API (``jobs/get``, as Airbyte's UI does). It also adds the public API calls that
connections-as-code needs: list, create and update sources, destinations and connections, and the
resets: a whole connection (the public API's ``reset`` job) or some of its streams (the configuration
API's ``connections/reset/stream``), polled to their end.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import requests
from dagster_airbyte.resources import AirbyteClient
from dagster_airbyte.types import AirbyteOutput
from pydantic import PrivateAttr

TERMINAL_FAILURES = ("failed", "error", "cancelled")
KINDS = ("sources", "destinations", "connections")
LOG_TAIL_LINES = 100


def _answer(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body.get("title") or body)[:300]
    return str(body)[:300]


class DalgoAirbyteClient(AirbyteClient):
    """dagster-airbyte's client with errors that say why, job failure messages and the public API."""

    _last_job: dict[str, Any] | None = PrivateAttr(default=None)

    def _single_request(
        self,
        method: str,
        url: str,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        include_additional_request_headers: bool = True,
    ) -> Mapping[str, Any]:
        error = ""
        for attempt in range(self.request_max_retries + 1):
            try:
                session = self._get_session(include_additional_request_headers=include_additional_request_headers)
                response = session.request(
                    method=method, url=url, json=data, params=params, timeout=self.request_timeout
                )
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.ok:
                    return response.json()
                error = f"HTTP {response.status_code}: {_answer(response)}"
                if response.status_code < 500:
                    break
            if attempt < self.request_max_retries:
                time.sleep(self.request_retry_delay)
        raise dg.Failure(f"Airbyte API {method} {url} failed: {error}")

    # -- syncs --------------------------------------------------------------------------------------

    def get_job_details(self, job_id: int) -> Mapping[str, Any]:
        details = super().get_job_details(job_id)
        self._last_job = dict(details)
        return details

    def sync_and_poll(self, connection_id: str) -> AirbyteOutput:
        """Start a sync and wait for it; a failed job raises ``Failure`` with the job's own message,
        after the end of its log has gone to the run's logs."""
        self._last_job = None
        try:
            return super().sync_and_poll(connection_id)
        except dg.Failure as exc:
            job = self._last_job
            if job is None or job.get("status") not in TERMINAL_FAILURES:
                raise
            attempts = self._attempts(job["jobId"])
            self._log_tail(job["jobId"], attempts)
            message = failure_message(attempts) or "Airbyte gave no message"
            raise dg.Failure(
                f"Airbyte job {job['jobId']} {job['status']}: {message}",
                metadata=job_metadata(job),
            ) from exc

    def _attempts(self, job_id: int) -> list[Mapping[str, Any]]:
        """The job's attempts from the configuration API (``jobs/get``); empty if it cannot be read."""
        try:
            info = self._single_request("POST", f"{self.configuration_api_base_url}/jobs/get", data={"id": job_id})
        except dg.Failure as exc:
            self._log.warning(f"could not read Airbyte job {job_id}: {exc.description}")
            return []
        # each item is {attempt: {...}, logs: {logLines}}: flatten to the attempt with its logs
        return [{**(i.get("attempt") or i), "logs": i.get("logs") or {}} for i in info.get("attempts") or []]

    def _log_tail(self, job_id: int, attempts: list[Mapping[str, Any]]) -> None:
        lines = ((attempts[-1].get("logs") or {}).get("logLines") or []) if attempts else []
        if lines:
            tail = "\n".join(lines[-LOG_TAIL_LINES:])
            self._log.error(f"Airbyte job {job_id}, last {min(len(lines), LOG_TAIL_LINES)} log lines:\n{tail}")

    def stream_records(self, job_id: int) -> dict[str, dict[str, int]]:
        """Per stream, the records a job's last attempt read (``emitted``) and loaded (``committed``);
        empty if Airbyte does not say."""
        attempts = self._attempts(job_id)
        if not attempts:
            return {}
        found = {}
        for s in attempts[-1].get("streamStats") or []:
            stats = s.get("stats") or {}
            if stats:
                emitted = int(stats.get("recordsEmitted", 0))
                found[s["streamName"]] = {"emitted": emitted, "committed": int(stats.get("recordsCommitted", emitted))}
        return found

    # -- resets ------------------------------------------------------------------------------------

    def reset_and_poll(self, connection_id: str, streams: Sequence[str] | None = None) -> Mapping[str, Any]:
        """Clear the connection's data and state in Airbyte (every stream, or those named) and wait for the
        job; return the job's details (the public API's JobResponse). A failed job raises ``Failure``."""
        if not streams:
            job_id = self._single_request(
                "POST", f"{self.rest_api_base_url}/jobs", data={"connectionId": connection_id, "jobType": "reset"}
            )["jobId"]
        else:
            catalog = self.get_connection_details(connection_id).get("syncCatalog") or {}
            namespaces = {s["stream"]["name"]: s["stream"].get("namespace") for s in catalog.get("streams") or []}
            body = {
                "connectionId": connection_id,
                "streams": [{"streamName": s, "streamNamespace": namespaces.get(s)} for s in streams],
            }
            started = self._single_request(
                "POST", f"{self.configuration_api_base_url}/connections/reset/stream", data=body
            )
            job_id = started["job"]["id"]
        self._log.info(f"Airbyte reset job {job_id} started for connection {connection_id}")
        deadline = datetime.now() + timedelta(seconds=self.poll_timeout) if self.poll_timeout else None
        while True:
            job = self.get_job_details(job_id)
            status = str(job.get("status", "")).lower()
            if status == "succeeded":
                return job
            if status in TERMINAL_FAILURES:
                attempts = self._attempts(job_id)
                self._log_tail(job_id, attempts)
                message = failure_message(attempts) or "Airbyte gave no message"
                raise dg.Failure(f"Airbyte reset job {job_id} {status}: {message}", metadata=job_metadata(job))
            if deadline is not None and datetime.now() > deadline:
                raise dg.Failure(f"Airbyte reset job {job_id} still {status} after {self.poll_timeout} seconds")
            time.sleep(self.poll_interval)

    # -- public API for connections as code ---------------------------------------------------------

    def list_items(self, kind: str) -> Sequence[Mapping[str, Any]]:
        """Every source, destination or connection of the workspace."""
        assert kind in KINDS
        return self._paginated_request(
            "GET", f"{self.rest_api_base_url}/{kind}", params={"workspaceIds": self.workspace_id}
        )

    def config_call(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """One call of the configuration API (``POST /api/v1/<path>``): sources' specs, checks and
        discovers, a connection's catalog."""
        return self._single_request("POST", f"{self.configuration_api_base_url}/{path}", data=body)

    def create_item(self, kind: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        assert kind in KINDS
        return self._single_request("POST", f"{self.rest_api_base_url}/{kind}", data=body)

    def update_item(self, kind: str, item_id: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        assert kind in KINDS
        return self._single_request("PATCH", f"{self.rest_api_base_url}/{kind}/{item_id}", data=body)


def failure_message(attempts: list[Mapping[str, Any]]) -> str | None:
    """The failure Airbyte reported for the last attempt that has one."""
    for attempt in reversed(attempts):
        failures = (attempt.get("failureSummary") or {}).get("failures") or []
        messages = [f.get("externalMessage") or f.get("internalMessage") for f in failures]
        if any(messages):
            return "; ".join(m for m in messages if m)
    return None


def job_metadata(job: Mapping[str, Any]) -> dict[str, Any]:
    """What an Airbyte job reported, as Dagster metadata (the public API's JobResponse fields)."""
    values = {
        "airbyte/job_id": job.get("jobId"),
        "airbyte/job_status": job.get("status"),
        "airbyte/job_rows_synced": job.get("rowsSynced"),
        # the public API says bytesSynced; dagster-airbyte reads bytesScanned
        "airbyte/job_bytes_synced": job.get("bytesSynced", job.get("bytesScanned")),
        "airbyte/job_duration": job.get("duration"),
        "airbyte/job_started_at": job.get("startTime"),
    }
    return {k: v for k, v in values.items() if v is not None}
