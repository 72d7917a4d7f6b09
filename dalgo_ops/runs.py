"""What ``dalgo up`` and ``dalgo serve`` do about runs, through the webserver's GraphQL (the supervisor
imports no Dagster and opens no storage of its own):

- one console line per run that starts or ends: the console shows run summaries, not every event
  (those are in Dagit, the API and the processes' logs);
- at stop, the runs in progress are terminated (their run workers mark them canceled) before the
  processes stop, so none is left running unowned or marked as running after the platform stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from dalgo_core.names import LOCATION_TAG, PIPELINE_TAG

QUERY = """
query RunSummaries($after: Float!) {
  runsOrError(filter: {updatedAfter: $after}, limit: 200) {
    ... on Runs { results { runId status jobName startTime endTime tags { key value } } }
  }
}
"""
ENDED = {"SUCCESS", "FAILURE", "CANCELED"}
IN_FLIGHT = """{ runsOrError(filter: {statuses: [STARTING, STARTED, CANCELING]}) {
  ... on Runs { results { runId status } } } }"""
TERMINATE = """mutation($ids: [String!]!, $policy: TerminateRunPolicy) {
  terminateRuns(runIds: $ids, terminatePolicy: $policy) { __typename
    ... on TerminateRunsResult { terminateRunResults { __typename ... on TerminateRunFailure { message } } } } }"""


def summary(run: dict) -> str | None:
    """The line for a run that started or ended; None for one still queued or starting."""
    tags = {t["key"]: t["value"] for t in run.get("tags") or []}
    org = tags.get(LOCATION_TAG, "?").removeprefix("org_")
    what = f"pipeline {tags[PIPELINE_TAG]}" if PIPELINE_TAG in tags else run["jobName"]
    head = f"run {run['runId'][:8]} of {org} ({what})"
    if run["status"] in ENDED:
        took = ""
        if run.get("startTime") and run.get("endTime"):
            took = f" in {run['endTime'] - run['startTime']:.0f} s"
        return f"{head} {run['status'].lower()}{took}"
    if run["status"] == "STARTED":
        return f"{head} started"
    return None


class RunReporter:
    """Polls the webserver every ``interval`` seconds and logs each run's start and end once."""

    def __init__(self, graphql_url: str, log: Callable[[str], None], interval: float = 5.0) -> None:
        self.url, self.log, self.interval = graphql_url, log, interval
        self.since = time.time()
        self.next_poll = 0.0
        self.said: dict[str, str] = {}

    def poll(self) -> None:
        now = time.time()
        if now < self.next_poll:
            return
        self.next_poll = now + self.interval
        try:
            response = requests.post(self.url, json={"query": QUERY, "variables": {"after": self.since - 1}}, timeout=5)
            runs = response.json()["data"]["runsOrError"].get("results") or []
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return  # the webserver is restarting: the supervisor says so; try at the next poll
        self.since = now
        for run in sorted(runs, key=lambda r: r.get("startTime") or 0):
            line = summary(run)
            if line is not None and self.said.get(run["runId"]) != run["status"]:
                self.said[run["runId"]] = run["status"]
                self.log(line)
        if len(self.said) > 10_000:
            self.said = dict(list(self.said.items())[-1000:])


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    return requests.post(url, json={"query": query, "variables": variables or {}}, timeout=30).json()["data"]


def _in_flight(url: str) -> dict[str, str]:
    return {r["runId"]: r["status"] for r in _graphql(url, IN_FLIGHT)["runsOrError"].get("results") or []}


def _terminate(url: str, runs: list[str], policy: str) -> list[str]:
    """Dagster's answers for the runs it would not terminate."""
    answer = _graphql(url, TERMINATE, {"ids": runs, "policy": policy})["terminateRuns"]
    return [r["message"] for r in answer.get("terminateRunResults") or [] if r.get("message")]


def end_runs_in_flight(graphql_url: str, log: Callable[[str], None], timeout: float = 60.0) -> None:
    """Terminate every run in progress and wait (up to ``timeout``) for their workers to mark them
    canceled; a run still in progress then is marked canceled at once, before its processes stop.

    Dagster terminates a run safely only once its worker started it: a run still STARTING is asked as
    soon as it is STARTED (its worker then interrupts its steps and marks it canceled)."""
    try:
        runs = _in_flight(graphql_url)
        if not runs:
            return
        log(f"ending {len(runs)} run(s) in progress: {', '.join(r[:8] for r in runs)}")
        asked: set[str] = set()
        deadline = time.time() + timeout
        while runs and time.time() < deadline:
            if started := [r for r, status in runs.items() if status == "STARTED" and r not in asked]:
                asked.update(started)
                for refused in _terminate(graphql_url, started, "SAFE_TERMINATE"):
                    log(f"Dagster would not terminate a run: {refused}")
            time.sleep(0.5)
            runs = _in_flight(graphql_url)
        if runs:
            _terminate(graphql_url, list(runs), "MARK_AS_CANCELED_IMMEDIATELY")
            log(f"marked canceled without their workers' word: {', '.join(r[:8] for r in runs)}")
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        log(f"could not end the runs in progress ({type(exc).__name__}); run monitoring fails them at the next start")
