"""What the supervisor asks Dagster's webserver about its code locations, through its GraphQL (the
supervisor imports no Dagster and opens no storage of its own)."""

from __future__ import annotations

import requests

LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { className } } } } } }"""
UNREACHABLE = "DagsterUserCodeUnreachableError"


def locations_settled(graphql_url: str, names: set[str]) -> bool:
    """Whether the webserver shows every one of ``names`` loaded: its definitions, or the error its code
    server serves (a broken organization is settled too). A location whose server did not answer yet is
    not: the webserver's gRPC watch reloads it within a second of the server answering."""
    try:
        answer = requests.post(graphql_url, json={"query": LOCATIONS}, timeout=5).json()
        entries = answer["data"]["workspaceOrError"]["locationEntries"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False
    settled = {
        e["name"]
        for e in entries
        if e["loadStatus"] == "LOADED" and (e["locationOrLoadError"] or {}).get("className") != UNREACHABLE
    }
    return names <= settled
