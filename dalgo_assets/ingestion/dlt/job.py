"""What one run of the dlt worker gets: its job (source, warehouse, streams, secrets resolved) and its
sandbox policy (the organization's root, its warehouse, and the source it declared: nothing else).

The job is written only into the run's private folder; the policy reaches the source's own host and
port (a database), binds a local file source's folder read-only, and lets remote files through the
egress proxy (public addresses only). The worker reads no value of the platform's environment.
``SourceJob`` is the source's part alone (a check or a discover of a source, saved or not: its secrets
are references or values); ``Job`` a connection's sync or reset.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from dalgo_assets.warehouse import WarehouseResource
from dalgo_core import file_sources
from dalgo_core.layout import OutsideRoot, org_root
from dalgo_core.sandbox import Endpoint, Policy
from dalgo_core.sandbox.tenant import org_policy
from dalgo_core.spec import ConnectionSpec, DatabaseFields, FileFields, OrgSpec, SecretRef

DRIVERS = {"postgres": ("postgresql+psycopg2", "postgresql"), "mysql": ("mysql+pymysql", "mysql")}


def pipeline_name(org: str, connection: str) -> str:
    return f"{org}__{connection}"


def pipelines_dir(org: str) -> str:
    """dlt's working folders, in the organization's root (the state itself is kept in the warehouse)."""
    return str(org_root(org) / "dlt")


def _url(driver: str, source: DatabaseFields, password: str) -> str:
    auth = quote(source.user, safe="") + (f":{quote(password, safe='')}" if password else "")
    query = f"?sslmode={source.sslmode}" if source.sslmode and source.dialect == "postgres" else ""
    return f"{driver}://{auth}@{source.host}:{source.server_port}/{quote(source.database, safe='')}{query}"


def reveal(org: str, value: SecretRef | SecretStr | None) -> str:
    """A secret's value: read from where the spec refers to it, or as a configuration gave it."""
    if value is None:
        return ""
    return value.get_secret_value() if isinstance(value, SecretStr) else value.resolve(org)


class SourceJob:
    """What the worker gets of a source, the secrets it carries, and what its sandbox may reach."""

    def __init__(self, spec: OrgSpec, source: DatabaseFields | FileFields):
        self.spec, self.source_spec = spec, source
        self.secrets: list[str] = []

    def _keep(self, value: str) -> str:
        """Remember a secret, to redact it (and its URL-quoted form) from what the worker says; one of
        fewer than 4 characters would redact ordinary words, and hides nothing."""
        if len(value) >= 4:
            self.secrets += [value, quote(value, safe="")]
        return value

    def source(self) -> dict[str, Any]:
        org, source = self.spec.slug, self.source_spec
        if isinstance(source, DatabaseFields):
            password = self._keep(reveal(org, source.password))  # type: ignore[attr-defined]
            sqlalchemy_driver, connectorx_driver = DRIVERS[source.dialect]
            return {
                "type": "database",
                "dialect": source.dialect,
                "sqlalchemy_url": _url(sqlalchemy_driver, source, password),
                "connectorx_url": _url(connectorx_driver, source, password),
                "schema": source.schema_ or ("public" if source.dialect == "postgres" else None),
            }
        assert isinstance(source, FileFields)
        job: dict[str, Any] = {"type": "files", "format": source.format, "url": source.url, "files": source.files}
        where = file_sources.kind(source.url)
        if where == "local":
            job["bucket_url"] = self.local_folder().as_uri()
        else:
            job["bucket_url"] = source.url.rstrip("/")
        if where == "http":
            job["client_kwargs"] = {"trust_env": True}  # aiohttp through the sandbox's egress proxy
        if where == "s3":
            credentials = {}
            if getattr(source, "aws_access_key_id", None) is not None:
                credentials = {
                    "aws_access_key_id": self._keep(reveal(org, source.aws_access_key_id)),
                    "aws_secret_access_key": self._keep(reveal(org, source.aws_secret_access_key)),
                }
            if source.endpoint_url:
                credentials["endpoint_url"] = source.endpoint_url
            job["credentials"] = credentials or None
        return job

    def local_folder(self) -> Path:
        """A local file source's folder, resolved; ValueError if it leaves where it may be or is missing."""
        url = self.source_spec.url  # type: ignore[union-attr]
        try:
            folder = file_sources.local_folder(self.spec.slug, url)
        except OutsideRoot:
            raise ValueError(f"the files folder {url!r} leads outside the folders file sources may read") from None
        if not folder.is_dir():
            raise ValueError(f"the files folder {url!r} does not exist")
        return folder

    def reach(self, policy: Policy) -> Policy:
        """A policy that also reaches the source: its database's host and port, its folder (read-only), or
        the internet through the egress proxy."""
        source = self.source_spec
        if isinstance(source, DatabaseFields):
            endpoint = Endpoint(source.host, source.server_port)  # once, if the warehouse is the same server
            return replace(policy, endpoints=tuple(dict.fromkeys((*policy.endpoints, endpoint))))
        if file_sources.kind(source.url) == "local":
            return replace(policy, read_only=(*policy.read_only, str(self.local_folder())))
        return replace(policy, egress=True)

    def build(self, mode: str) -> dict[str, Any]:
        """A check or a discover of the source."""
        return {"mode": mode, "source": self.source()}

    def policy(self, mode: str) -> Policy:
        """The organization's root and the source; not its warehouse."""
        return self.reach(org_policy(self.spec, warehouse=False))


class Job(SourceJob):
    """The worker's job for one connection of one organization, and the secrets it carries."""

    def __init__(self, spec: OrgSpec, connection: ConnectionSpec, warehouse: WarehouseResource):
        assert isinstance(connection.source, DatabaseFields | FileFields)
        super().__init__(spec, connection.source)
        self.connection, self.warehouse = connection, warehouse

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

    def streams(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """The streams named (None: every stream of the connection)."""
        source = self.connection.source
        out = []
        for s in self.connection.streams:
            if names is not None and s.name not in names:
                continue
            out.append(
                {
                    "name": s.name,
                    "table": s.name.lower(),
                    "sync_mode": s.sync_mode,
                    "cursor": s.cursor_field[0] if s.cursor_field else None,
                    "primary_key": [p[0] for p in s.primary_key or []],
                    "pattern": source.pattern(s.name) if isinstance(source, FileFields) else None,
                }
            )
        return out

    def build(self, mode: str, streams: list[str] | None = None) -> dict[str, Any]:  # type: ignore[override]
        """A sync or a reset of the streams (a sync with the source and every chosen stream, for its catalog)."""
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
            job["chosen"] = self.streams()
        return job

    def policy(self, mode: str) -> Policy:
        """The organization's own policy (its root and warehouse), plus (for a sync) the source it declared."""
        policy = org_policy(self.spec)
        return self.reach(policy) if mode == "sync" else policy
