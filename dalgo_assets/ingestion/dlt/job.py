"""What one run of the dlt worker gets: its job (source, warehouse, streams, secrets resolved) and its
sandbox policy (the organization's root, its warehouse, and the source it declared: nothing else).

The job is written only into the run's private folder; the policy reaches the source's own host and
port (a database), binds a local file source's folder read-only, and lets remote files through the
egress proxy (public addresses only). The worker reads no value of the platform's environment.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dalgo_assets.warehouse import WarehouseResource
from dalgo_core import file_sources
from dalgo_core.layout import OutsideRoot, org_root
from dalgo_core.sandbox import Endpoint, Policy
from dalgo_core.sandbox.tenant import org_policy
from dalgo_core.spec import ConnectionSpec, DatabaseSource, FileSource, OrgSpec, SecretRef

DRIVERS = {"postgres": ("postgresql+psycopg2", "postgresql"), "mysql": ("mysql+pymysql", "mysql")}


def pipeline_name(org: str, connection: str) -> str:
    return f"{org}__{connection}"


def pipelines_dir(org: str) -> str:
    """dlt's working folders, in the organization's root (the state itself is kept in the warehouse)."""
    return str(org_root(org) / "dlt")


def _url(driver: str, source: DatabaseSource, password: str) -> str:
    auth = quote(source.user, safe="") + (f":{quote(password, safe='')}" if password else "")
    query = f"?sslmode={source.sslmode}" if source.sslmode and source.dialect == "postgres" else ""
    return f"{driver}://{auth}@{source.host}:{source.server_port}/{quote(source.database, safe='')}{query}"


def _secret(org: str, ref: SecretRef | None) -> str:
    return ref.resolve(org) if ref is not None else ""


class Job:
    """The worker's job for one connection of one organization, and the secrets it carries."""

    def __init__(self, spec: OrgSpec, connection: ConnectionSpec, warehouse: WarehouseResource):
        self.spec, self.connection, self.warehouse = spec, connection, warehouse
        self.secrets: list[str] = []

    def _keep(self, value: str) -> str:
        """Remember a secret, to redact it (and its URL-quoted form) from what the worker says; one of
        fewer than 4 characters would redact ordinary words, and hides nothing."""
        if len(value) >= 4:
            self.secrets += [value, quote(value, safe="")]
        return value

    def source(self) -> dict[str, Any]:
        org, source = self.spec.slug, self.connection.source
        if isinstance(source, DatabaseSource):
            password = self._keep(_secret(org, source.password))
            sqlalchemy_driver, connectorx_driver = DRIVERS[source.dialect]
            return {
                "type": "database",
                "sqlalchemy_url": _url(sqlalchemy_driver, source, password),
                "connectorx_url": _url(connectorx_driver, source, password),
                "schema": source.schema_ or ("public" if source.dialect == "postgres" else None),
            }
        assert isinstance(source, FileSource)
        job: dict[str, Any] = {"type": "files", "format": source.format, "url": source.url}
        where = file_sources.kind(source.url)
        if where == "local":
            job["bucket_url"] = self.local_folder().as_uri()
        else:
            job["bucket_url"] = source.url.rstrip("/")
        if where == "http":
            job["client_kwargs"] = {"trust_env": True}  # aiohttp through the sandbox's egress proxy
        if where == "s3":
            credentials = {}
            if source.aws_access_key_id is not None:
                credentials = {
                    "aws_access_key_id": self._keep(_secret(org, source.aws_access_key_id)),
                    "aws_secret_access_key": self._keep(_secret(org, source.aws_secret_access_key)),
                }
            if source.endpoint_url:
                credentials["endpoint_url"] = source.endpoint_url
            job["credentials"] = credentials or None
        return job

    def local_folder(self) -> Path:
        """A local file source's folder, resolved; ValueError if it leaves where it may be or is missing."""
        url = self.connection.source.url  # type: ignore[union-attr]
        try:
            folder = file_sources.local_folder(self.spec.slug, url)
        except OutsideRoot:
            raise ValueError(f"the files folder {url!r} leads outside the folders file sources may read") from None
        if not folder.is_dir():
            raise ValueError(f"the files folder {url!r} does not exist")
        return folder

    def destination(self) -> dict[str, Any]:
        wh = self.warehouse
        if wh.type == "duckdb":
            return {"type": "duckdb", "path": wh.duckdb_path}
        if wh.type == "postgres":
            dsn = wh.postgres_dsn()
            self._keep(dsn["password"])
            credentials = {
                "drivername": "postgresql",
                "username": dsn["user"],
                "password": dsn["password"],
                "host": dsn["host"],
                "port": dsn["port"],
                "database": dsn["dbname"],
            }
            if wh.sslmode:
                credentials["query"] = {"sslmode": wh.sslmode}
            return {"type": "postgres", "credentials": credentials}
        return {"type": "bigquery", "project": wh.project, "location": wh.location, "credentials": self._keyfile()}

    def _keyfile(self) -> dict[str, Any] | None:
        """The service-account key (the spec refers to it base64-encoded, as dagster-gcp takes it)."""
        if not self.warehouse.keyfile_ref:
            return None
        kind, _, name = self.warehouse.keyfile_ref.partition(":")
        text = self._keep(SecretRef(**{kind: name}).resolve(self.spec.slug))
        key = json.loads(base64.b64decode(text))
        self._keep(key.get("private_key", ""))
        return key

    def streams(self, names: list[str]) -> list[dict[str, Any]]:
        source = self.connection.source
        out = []
        for s in self.connection.streams:
            if s.name not in names:
                continue
            out.append(
                {
                    "name": s.name,
                    "table": s.name.lower(),
                    "sync_mode": s.sync_mode,
                    "cursor": s.cursor_field[0] if s.cursor_field else None,
                    "primary_key": [p[0] for p in s.primary_key or []],
                    "pattern": source.pattern(s.name) if isinstance(source, FileSource) else None,
                }
            )
        return out

    def build(self, mode: str, streams: list[str]) -> dict[str, Any]:
        job = {
            "mode": mode,
            "pipeline": pipeline_name(self.spec.slug, self.connection.name),
            "pipelines_dir": pipelines_dir(self.spec.slug),
            "dataset": self.connection.destination_schema,
            "destination": self.destination(),
            "streams": self.streams(streams),
        }
        if mode == "sync":
            job["source"] = self.source()
        return job

    def policy(self, mode: str) -> Policy:
        """The organization's own policy, plus (for a sync) the source it declared."""
        policy = org_policy(self.spec)
        source = self.connection.source
        if mode != "sync":
            return policy
        if isinstance(source, DatabaseSource):
            endpoint = Endpoint(source.host, source.server_port)  # once, if the warehouse is the same server
            return replace(policy, endpoints=tuple(dict.fromkeys((*policy.endpoints, endpoint))))
        assert isinstance(source, FileSource)
        if file_sources.kind(source.url) == "local":
            return replace(policy, read_only=(*policy.read_only, str(self.local_folder())))
        return replace(policy, egress=True)
