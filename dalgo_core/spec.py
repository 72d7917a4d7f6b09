"""The organization spec: one YAML file per organization, validated with pydantic.

An organization's folder (``$DALGO_ORGS_DIR/<slug>/org.yaml``) describes everything the platform builds
for it: its warehouse, its dbt projects, its ingestion connections and its pipelines (freshness targets
or cron schedules). Secrets are never written in the spec, only referred to (``{env: NAME}`` or
``{file: NAME}``), and are resolved when a run needs them.

This module imports neither Dagster nor Django: both halves of the platform read and write specs
through it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from dalgo_core import settings
from dalgo_core.cron import cron_problem, smallest_interval, timezone_problem
from dalgo_core.names import FILE_NAME_PATTERN, SLUG_PATTERN, location_name

SPEC_FILE = "org.yaml"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SECRET_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
FIELD_PATH_PATTERN = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+){0,3}((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?$"
STREAM_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$"
RELATIVE_PATH_PATTERN = r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"
GIT_REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$"
CONNECTOR_PATTERN = r"^source-[a-z0-9-]+$"
PACKAGE_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$"  # a PyPI project name
MIN_WINDOW = timedelta(minutes=1)  # Dagster's smallest freshness window


class SpecError(Exception):
    """A spec that cannot be used, with the organization, file and field it concerns."""

    def __init__(self, org: str, path: Path | str, problems: list[str]):
        self.org = org
        self.path = Path(path)
        self.problems = problems
        super().__init__(f"organization '{org}' ({self.path}): " + "; ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- secrets ---------------------------------------------------------------------------------------


class SecretRef(_Model):
    """Where a secret lives: an environment variable, or a file in the organization's secrets folder."""

    env: Annotated[str, Field(pattern=SECRET_ENV_PATTERN)] | None = None
    file: Annotated[str, Field(pattern=FILE_NAME_PATTERN, max_length=128)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference names exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        """A printable description that never contains the secret itself."""
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def resolve(self, org: str) -> str:
        """Read the secret. Only run-time code calls this, never definition loading."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise LookupError(f"organization '{org}': environment variable {self.env} is not set")
            return value
        from dalgo_core.layout import secrets_dir

        path = secrets_dir() / org / str(self.file)
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise LookupError(f"organization '{org}': secret file {path} does not exist") from None
        from dalgo_core.secret_store import reveal  # files written by the API are encrypted

        return reveal(text)


# --- warehouses ------------------------------------------------------------------------------------


class DuckDBWarehouse(_Model):
    """The zero-server warehouse: a DuckDB file the platform assigns, ``$DALGO_HOME/orgs/<slug>/warehouse.duckdb``."""

    type: Literal["duckdb"] = "duckdb"
    schema_: str = Field("main", alias="schema", pattern=NAME_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _no_path(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("path") is not None:
            raise ValueError("path: the platform assigns the DuckDB file inside the organization's root; remove 'path'")
        return {k: v for k, v in data.items() if k != "path"} if isinstance(data, Mapping) else data


class PostgresWarehouse(_Model):
    type: Literal["postgres"]
    host: str
    port: int = Field(5432, ge=1, le=65535)
    user: str
    password: SecretRef
    database: str
    schema_: str = Field("public", alias="schema", pattern=NAME_PATTERN)
    sslmode: str | None = None


class BigQueryWarehouse(_Model):
    type: Literal["bigquery"]
    project: str
    dataset: str = Field(pattern=NAME_PATTERN)
    location: str = "US"
    keyfile_json: SecretRef | None = Field(
        None, description="Service-account key JSON; without it, application default credentials"
    )


Warehouse = Annotated[DuckDBWarehouse | PostgresWarehouse | BigQueryWarehouse, Field(discriminator="type")]


# --- dbt projects ----------------------------------------------------------------------------------


class GitSource(_Model):
    url: str = Field(description="https:// or ssh:// (git@host:path); file:// only where the operator allows it")
    ref: str = Field("main", pattern=GIT_REF_PATTERN)
    subdir: str = Field("", description="the dbt project's folder inside the repository")

    @field_validator("url")
    @classmethod
    def _allowed_scheme(cls, url: str) -> str:
        from dalgo_core.git import check_url

        return check_url(url)

    @field_validator("subdir")
    @classmethod
    def _relative(cls, subdir: str) -> str:
        subdir = subdir.strip("/")
        if subdir and (not re.match(RELATIVE_PATH_PATTERN, subdir) or ".." in subdir.split("/")):
            raise ValueError(f"'{subdir}' is not a relative folder inside the repository")
        return subdir


class DbtProjectSpec(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    path: str | None = Field(None, description="Local folder, relative to the spec file")
    git: GitSource | None = None

    @model_validator(mode="after")
    def _one_location(self) -> DbtProjectSpec:
        if (self.path is None) == (self.git is None):
            raise ValueError("a dbt project has exactly one of 'path' or 'git'")
        return self


# --- ingestion -------------------------------------------------------------------------------------


class StreamSpec(_Model):
    name: str = Field(pattern=STREAM_PATTERN, description="the stream's name: letters, digits, '_' and '-'")
    sync_mode: Literal["full_refresh", "incremental"] = "full_refresh"
    cursor_field: list[str] | None = None
    primary_key: list[list[str]] | None = None


class SourceSpec(_Model):
    connector: str = Field(pattern=CONNECTOR_PATTERN, description="Airbyte connector, e.g. source-faker")
    version: str | None = Field(
        None, pattern=VERSION_PATTERN, description="PyPI version of airbyte-<connector>, e.g. 6.2.1; default latest"
    )
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[Annotated[str, Field(pattern=FIELD_PATH_PATTERN, max_length=200)], SecretRef] = Field(
        default_factory=dict, description="Config fields (dotted paths) filled from secrets at run time"
    )
    package: str | None = Field(
        None,
        pattern=PACKAGE_PATTERN,
        description="An operator's own connector: its PyPI package (default airbyte-<connector>)",
    )


SchemaChangePolicy = Literal["ignore", "propagate_columns", "propagate_fully", "pause"]


# --- database and file sources: read by dlt on this host (dalgo_assets/ingestion/dlt), not by Airbyte ----

HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$"  # a name or an address
DB_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_$.-]{0,127}$"
# a table identifier: its warehouse table is the stream's name in lower case, as for Airbyte streams
TABLE_STREAM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
FILE_GLOB_PATTERN = r"^[A-Za-z0-9_*?\[\]{},-]+([./][A-Za-z0-9_*?\[\]{},-]+)*$"
ENDPOINT_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$"
DEFAULT_DB_PORTS = {"postgres": 5432, "mysql": 3306}


class DatabaseFields(_Model):
    """What a database source says but its password (the spec refers to it; a configuration gives it)."""

    dialect: Literal["postgres", "mysql"] = Field("postgres", description="PostgreSQL or MySQL")
    host: str = Field(pattern=HOST_PATTERN, max_length=255, description="host name or address of the database server")
    port: int | None = Field(None, ge=1, le=65535, description="default the dialect's (5432, 3306)")
    database: str = Field(pattern=DB_NAME_PATTERN)
    user: str = Field(pattern=DB_NAME_PATTERN)
    schema_: str | None = Field(
        None,
        alias="schema",
        pattern=DB_NAME_PATTERN,
        description="the tables' schema (PostgreSQL default public; MySQL: the database)",
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None

    @property
    def server_port(self) -> int:
        return self.port or DEFAULT_DB_PORTS[self.dialect]


class FileFields(_Model):
    """What a file source says but its S3 keys."""

    url: str = Field(
        max_length=2000,
        description="a folder relative to the organization's files folder ($DALGO_HOME/orgs/<slug>/files), an "
        "absolute folder under one of $DALGO_FILE_SOURCE_DIRS, https://host/path or s3://bucket/prefix",
    )
    format: Literal["csv", "parquet", "jsonl"]
    files: dict[Annotated[str, Field(pattern=STREAM_PATTERN)], Annotated[str, Field(pattern=FILE_GLOB_PATTERN)]] = (
        Field(
            default_factory=dict,
            max_length=1000,
            description="each stream's files under url (globs); default '<stream>.<format>'",
        )
    )
    endpoint_url: str | None = Field(
        None, max_length=300, pattern=ENDPOINT_PATTERN, description="an S3-compatible endpoint, https://host[:port]"
    )

    @field_validator("url")
    @classmethod
    def _known_location(cls, url: str) -> str:
        from dalgo_core.file_sources import check_url

        return check_url(url)

    @model_validator(mode="after")
    def _keys_together(self) -> FileFields:
        key, secret = getattr(self, "aws_access_key_id", None), getattr(self, "aws_secret_access_key", None)
        if (key is None) != (secret is None):
            raise ValueError("give both aws_access_key_id and aws_secret_access_key, or neither")
        return self

    def pattern(self, stream: str) -> str:
        """The files of a stream, relative to ``url``."""
        return self.files.get(stream) or f"{stream}.{self.format}"


class _PlatformSource:
    """What a database or files source answers as an Airbyte source does: its connector (its type), its
    settings (``config``) and the references of its secret fields (``secrets``), no version or package."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]]
    version: ClassVar[None] = None
    package: ClassVar[None] = None

    @property
    def connector(self) -> str:
        return self.type  # type: ignore[attr-defined]

    @property
    def secrets(self) -> dict[str, SecretRef]:
        return {f: ref for f in self.SECRET_FIELDS if (ref := getattr(self, f)) is not None}

    @property
    def config(self) -> dict[str, Any]:
        exclude = {"type", "name", *self.SECRET_FIELDS}
        return self.model_dump(mode="json", by_alias=True, exclude=exclude, exclude_none=True)  # type: ignore[attr-defined]


class DatabaseSource(_PlatformSource, DatabaseFields):
    """Tables of a database the organization declares (its host and port are all the read may reach)."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)
    type: Literal["database"]
    password: SecretRef | None = None


class FileSource(_PlatformSource, FileFields):
    """Files the organization exports: a folder of its own (or one the operator allows), HTTP(S) or S3."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("aws_access_key_id", "aws_secret_access_key")
    type: Literal["files"]
    aws_access_key_id: SecretRef | None = None
    aws_secret_access_key: SecretRef | None = None


def source_kind(data: Any) -> str:
    """Which kind of source a mapping or model is: "database", "files", else "airbyte" (no type)."""
    kind = data.get("type") if isinstance(data, Mapping) else getattr(data, "type", None)
    return kind if kind in ("database", "files") else "airbyte"


# A connection's source: an Airbyte connector (no 'type'), or a database or files ('type' says which)
AnySource = Annotated[
    Annotated[SourceSpec, Tag("airbyte")]
    | Annotated[DatabaseSource, Tag("database")]
    | Annotated[FileSource, Tag("files")],
    Discriminator(source_kind),
]


# --- the organization's named sources: an Airbyte connector, a database or files, that connections read ---


def _unnamed(entry: BaseModel, model: type[BaseModel]) -> Any:
    return model.model_validate(entry.model_dump(by_alias=True, exclude={"name"}))


class NamedSourceSpec(SourceSpec):
    """An entry of the organization's ``sources``: a configured connector that connections read from."""

    name: str = Field(pattern=NAME_PATTERN)

    def source(self) -> SourceSpec:
        return _unnamed(self, SourceSpec)


class NamedDatabaseSource(DatabaseSource):
    name: str = Field(pattern=NAME_PATTERN)

    def source(self) -> DatabaseSource:
        return _unnamed(self, DatabaseSource)


class NamedFileSource(FileSource):
    name: str = Field(pattern=NAME_PATTERN)

    def source(self) -> FileSource:
        return _unnamed(self, FileSource)


AnyNamedSource = Annotated[
    Annotated[NamedSourceSpec, Tag("airbyte")]
    | Annotated[NamedDatabaseSource, Tag("database")]
    | Annotated[NamedFileSource, Tag("files")],
    Discriminator(source_kind),
]


class ConnectionSpec(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    source: AnySource = Field(
        description="An Airbyte connector, a database or files ('type'); with source_name, the named source, "
        "filled in on load"
    )
    source_name: str | None = Field(
        None, pattern=NAME_PATTERN, description="An entry of the organization's sources; the spec then omits 'source'"
    )
    streams: list[StreamSpec] = Field(min_length=1)
    destination_schema: str = Field("raw", pattern=NAME_PATTERN)
    airbyte_connection_id: str | None = Field(None, description="Server mode: the connection's id")
    schema_change_policy: SchemaChangePolicy = Field(
        "propagate_columns",
        description="What a sync does when the source's schema changed (Airbyte's): ignore, propagate_columns, "
        "propagate_fully or pause (dalgo_core.connectors.changes)",
    )

    @model_serializer(mode="wrap")
    def _named_source_by_name(self, handler: Any) -> Any:
        data = handler(self)
        if self.source_name is not None and isinstance(data, dict):
            data.pop("source", None)  # written once, under sources
        return data

    @field_validator("streams")
    @classmethod
    def _unique_streams(cls, streams: list[StreamSpec]) -> list[StreamSpec]:
        # the warehouse names a stream's table in lower case: two streams must not share one
        names = [s.name.lower() for s in streams]
        dupes = sorted({s.name for s in streams if names.count(s.name.lower()) > 1})
        if dupes:
            raise ValueError(f"streams name the same table (listed twice, or differ only in case): {', '.join(dupes)}")
        return streams

    @model_validator(mode="after")
    def _table_streams(self) -> ConnectionSpec:
        """A database or file source's streams are tables: identifiers, cursor and key top-level columns."""
        if not self.is_airbyte:
            for s in self.streams:
                if not re.match(TABLE_STREAM_PATTERN, s.name):
                    raise ValueError(f"stream '{s.name}': a table name (letters, digits and '_', not first a digit)")
                for path in [s.cursor_field or [], *(s.primary_key or [])]:
                    if len(path) > 1:
                        raise ValueError(f"stream '{s.name}': '{'.'.join(path)}' is not a column of the table")
                if s.cursor_field is not None and len(s.cursor_field) != 1:
                    raise ValueError(f"stream '{s.name}': cursor_field names one column")
                if s.sync_mode == "incremental" and not s.cursor_field:
                    raise ValueError(f"stream '{s.name}' is incremental: give its cursor_field")
        return self

    def secret_refs(self) -> list[SecretRef]:
        """Every secret the connection's source refers to."""
        return list(self.source.secrets.values())

    @property
    def is_airbyte(self) -> bool:
        """Run by an Airbyte connector (embedded or on a server), not by dlt."""
        return isinstance(self.source, SourceSpec)


class AirbyteServerSpec(_Model):
    url: str = Field(description="Airbyte base URL, e.g. http://airbyte:8000")
    workspace_id: str
    username: str | None = None
    password: SecretRef | None = None
    client_id: SecretRef | None = None
    client_secret: SecretRef | None = None
    poll_interval_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> AirbyteServerSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password")
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("give both client_id and client_secret")
        if self.username and self.client_id:
            raise ValueError("use username/password or client credentials, not both")
        return self


class IngestionSpec(_Model):
    mode: Literal["embedded", "server"] = "embedded"
    server: AirbyteServerSpec | None = None

    @model_validator(mode="after")
    def _server_needs_settings(self) -> IngestionSpec:
        if self.mode == "server" and self.server is None:
            raise ValueError("ingestion mode 'server' needs a 'server' section (url, workspace_id)")
        return self


# --- pipelines: freshness targets and cron schedules -----------------------------------------------


class FreshnessSpec(_Model):
    """How fresh a selection must be: a maximum lag, a daily deadline, or both."""

    max_lag_minutes: float | None = Field(None, gt=0)
    warn_lag_minutes: float | None = Field(None, gt=0)
    deadline_cron: str | None = Field(None, description="e.g. '0 9 * * *': data must be fresh by then")
    deadline_max_age_minutes: float | None = Field(None, gt=0, description="age allowed at the deadline")
    expected_run_minutes: float | None = Field(
        None, gt=0, description="how long a refresh of the selection and its upstream takes; runs start this early"
    )

    @model_validator(mode="after")
    def _something(self) -> FreshnessSpec:
        lag, minimum = self.max_lag_minutes, MIN_WINDOW.total_seconds() / 60
        if lag is None and self.deadline_cron is None:
            raise ValueError("a freshness target needs max_lag_minutes, deadline_cron or both")
        if lag is not None and lag < minimum:
            raise ValueError(f"max_lag_minutes must be at least {minimum:g} (Dagster's smallest freshness window)")
        if self.warn_lag_minutes is not None and (lag is None or self.warn_lag_minutes >= lag):
            raise ValueError("warn_lag_minutes must be smaller than max_lag_minutes")
        if lag is not None and self.expected_run_minutes is not None and self.expected_run_minutes >= lag:
            raise ValueError("expected_run_minutes must be smaller than max_lag_minutes")
        if self.deadline_cron is not None:
            _check_cron(self.deadline_cron)
            interval = smallest_interval(self.deadline_cron).total_seconds() / 60
            age = self.deadline_max_age_minutes
            if age is not None and not minimum <= age <= interval:
                raise ValueError(
                    f"deadline_max_age_minutes must be between {minimum:g} and {interval:g} "
                    f"(the interval of '{self.deadline_cron}')"
                )
        return self

    @property
    def max_lag(self) -> timedelta | None:
        return timedelta(minutes=self.max_lag_minutes) if self.max_lag_minutes else None


class ScheduleSpec(_Model):
    cron: str
    timezone: str | None = Field(None, description="IANA timezone; default the organization's")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        return _check_cron(cron)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, tz: str | None) -> str | None:
        return None if tz is None else _check_timezone(tz)


class PipelineSpec(_Model):
    """A named selection of the organization's assets, kept fresh or run on a cron schedule."""

    name: str = Field(pattern=NAME_PATTERN)
    assets: list[str] = Field(
        min_length=1, description="Asset keys relative to the organization, '/'-separated, '*' globs"
    )
    freshness: FreshnessSpec | None = None
    schedule: ScheduleSpec | None = None
    enabled: bool = True


# --- alert rules -----------------------------------------------------------------------------------

# What a rule watches. The first three concern assets (and may select some); a run failing concerns the
# organization's runs, a code location failing to load its definitions.
ASSET_ALERT_KINDS = ("freshness_failed", "check_failed", "schema_change_pending")
ALERT_KINDS = (*ASSET_ALERT_KINDS, "run_failed", "location_failed")
AlertKind = Literal["freshness_failed", "check_failed", "schema_change_pending", "run_failed", "location_failed"]


class WebhookSpec(_Model):
    """Where a rule also posts its messages: Slack's incoming-webhook format, or a generic JSON body. The
    URL is a secret (a Slack URL is its own credential): the spec holds a reference, never the URL."""

    format: Literal["slack", "json"] = "json"
    url: SecretRef


class AlertRuleFields(_Model):
    """What a rule says but where it posts (the API takes the same fields, with webhook URLs as values)."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: AlertKind
    assets: list[Annotated[str, Field(min_length=1, max_length=400)]] = Field(
        default_factory=list,
        max_length=100,
        description="Asset keys relative to the organization, '*' globs a segment; empty: every asset "
        "(only for freshness_failed, check_failed and schema_change_pending)",
    )
    window_minutes: float = Field(60, ge=1, le=10080, description="at most one alert per subject in this time")
    recovery: bool = Field(True, description="send a message when the condition clears")
    email: bool = Field(True, description="email the members who receive this rule (their inbox gets it anyway)")
    enabled: bool = True

    @model_validator(mode="after")
    def _assets_for_asset_kinds(self) -> AlertRuleFields:
        if self.assets and self.kind not in ASSET_ALERT_KINDS:
            raise ValueError(f"assets: a {self.kind} rule selects no assets; leave 'assets' out")
        return self


class AlertRuleSpec(AlertRuleFields):
    """Tell people when something goes wrong: an alert when the rule's condition starts to hold on a subject
    (an asset, a check, the runs of a pipeline, the code location), at most one per subject per window,
    and a recovery message when it clears. Sent to the organization's members (email and their inbox,
    as each of them chose) and to the rule's webhooks."""

    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=5)

    def selects(self, asset: str | None) -> bool:
        """Whether the rule concerns an asset key (relative to the organization); every subject when the
        rule selects no assets."""
        if not self.assets:
            return True
        return asset is not None and any(selection_matches(p, asset.split("/")) for p in self.assets)


# --- the organization ------------------------------------------------------------------------------


class OrgSpec(_Model):
    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1)
    timezone: str = Field("UTC", description="IANA timezone of the organization's deadlines and schedules")
    warehouse: Warehouse = Field(default_factory=DuckDBWarehouse)
    dbt_projects: list[DbtProjectSpec] = Field(default_factory=list)
    ingestion: IngestionSpec = Field(default_factory=IngestionSpec)
    sources: list[AnyNamedSource] = Field(default_factory=list)
    connections: list[ConnectionSpec] = Field(default_factory=list)
    pipelines: list[PipelineSpec] = Field(default_factory=list)
    alerts: list[AlertRuleSpec] = Field(default_factory=list)

    # Where the spec was read from; set by load_org_spec, never written.
    spec_path: Path | None = Field(None, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, tz: str) -> str:
        return _check_timezone(tz)

    @model_validator(mode="before")
    @classmethod
    def _named_sources(cls, data: Any) -> Any:
        """A connection naming a source (``source_name``) reads that entry of ``sources``."""
        if not isinstance(data, Mapping) or not isinstance(data.get("connections"), list):
            return data
        sources = {s.get("name"): s for s in data.get("sources") or [] if isinstance(s, Mapping)}
        connections = []
        for i, conn in enumerate(data["connections"]):
            name = conn.get("source_name") if isinstance(conn, Mapping) else None
            if isinstance(name, str) and "source" not in conn:
                if name not in sources:
                    raise ValueError(f"connections.{i}.source_name: no source '{name}' in sources")
                conn = {**conn, "source": {k: v for k, v in sources[name].items() if k != "name"}}
            connections.append(conn)
        return {**data, "connections": connections}

    @model_validator(mode="after")
    def _unique_names(self) -> OrgSpec:
        for what, names in (
            ("source", [s.name for s in self.sources]),
            ("dbt project", [p.name for p in self.dbt_projects]),
            ("connection", [c.name for c in self.connections]),
            ("pipeline", [p.name for p in self.pipelines]),
            ("alert rule", [a.name for a in self.alerts]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what} name used twice: {', '.join(dupes)}")
        tables: dict[str, str] = {}
        for connection in self.connections:
            for stream in connection.streams:
                table = f"{connection.destination_schema}.{stream.name.lower()}"
                if table in tables:
                    raise ValueError(
                        f"connections '{tables[table]}' and '{connection.name}' both write table {table}: "
                        "give one another destination_schema"
                    )
                tables[table] = connection.name
        return self

    def tenant_hosts(self) -> dict[str, tuple[str, int]]:
        """The database servers the organization names, by the field that names them: its PostgreSQL
        warehouse, its database sources and connections' own ones (where tenant code and the platform
        connect for it: ``dalgo_core.egress`` holds each to the operator's networks)."""
        hosts: dict[str, tuple[str, int]] = {}
        if isinstance(self.warehouse, PostgresWarehouse):
            hosts["warehouse.host"] = (self.warehouse.host, self.warehouse.port)
        for source in self.sources:
            if isinstance(source, DatabaseSource):
                hosts[f"sources.{source.name}.host"] = (source.host, source.server_port)
        for connection in self.connections:
            source = connection.source
            if isinstance(source, DatabaseSource) and connection.source_name is None:
                hosts[f"connections.{connection.name}.source.host"] = (source.host, source.server_port)
        return hosts

    @property
    def airbyte_connections(self) -> list[ConnectionSpec]:
        """The connections an Airbyte connector runs (the others are database and file sources)."""
        return [c for c in self.connections if c.is_airbyte]

    @property
    def folder(self) -> Path:
        return self.spec_path.parent if self.spec_path else settings.orgs_dir() / self.slug

    @property
    def location_name(self) -> str:
        return location_name(self.slug)

    def state_dir(self) -> Path:
        """The organization's root: its generated files (manifests, profiles, state, a DuckDB warehouse),
        and all its tenant code may write (``dalgo_core.layout``)."""
        from dalgo_core.layout import org_root

        return org_root(self.slug)


def selection_matches(pattern: str, path: Sequence[str]) -> bool:
    """Whether an asset key path, relative to its organization, is selected by a pipeline pattern:
    '/'-separated segments, '*' globbing within one segment (``analytics/*`` is every analytics model)."""
    parts = [p for p in pattern.strip("/").split("/") if p]
    return len(path) == len(parts) and all(fnmatchcase(s, p) for s, p in zip(path, parts, strict=True))


def _check_cron(cron: str) -> str:
    if problem := cron_problem(cron):
        raise ValueError(problem)
    return cron


def _check_timezone(tz: str) -> str:
    if problem := timezone_problem(tz):
        raise ValueError(problem)
    return tz


# --- reading and writing ---------------------------------------------------------------------------


# libyaml's safe loader and dumper where PyYAML was built with it (about ten times faster; the same YAML)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _format_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        # discriminated unions add the tag to the path: keep it readable
        problems.append(f"{where or '<root>'}: {err['msg']}")
    return problems


def parse_org_spec(data: Any, *, org: str, path: Path | str) -> OrgSpec:
    """Validate a spec's content, raising SpecError naming the organization, file and fields."""
    if not isinstance(data, Mapping):
        raise SpecError(org, path, ["<root>: the spec must be a mapping of fields"])
    try:
        spec = OrgSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise SpecError(org, path, _format_errors(exc)) from None
    if spec.slug != org:
        raise SpecError(org, path, [f"slug: '{spec.slug}' does not match its folder name '{org}'"])
    spec.spec_path = Path(path)
    return spec


def org_spec_path(slug: str, orgs_dir: Path | None = None) -> Path:
    return (orgs_dir or settings.orgs_dir()) / slug / SPEC_FILE


def load_org_spec(slug: str, orgs_dir: Path | None = None) -> OrgSpec:
    path = org_spec_path(slug, orgs_dir)
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)
    except FileNotFoundError:
        raise SpecError(slug, path, ["the spec file does not exist"]) from None
    except yaml.YAMLError as exc:
        raise SpecError(slug, path, [f"not valid YAML: {exc}"]) from None
    return parse_org_spec(data, org=slug, path=path)


def load_alert_rules(slug: str, orgs_dir: Path | None = None) -> list[AlertRuleSpec]:
    """The organization's alert rules. When the rest of its spec does not validate (often why its code
    location fails to load: a ``location_failed`` rule must still be read), the ``alerts`` section alone;
    ``SpecError`` when even that cannot be read."""
    try:
        return load_org_spec(slug, orgs_dir).alerts
    except SpecError as exc:
        path = org_spec_path(slug, orgs_dir)
        try:
            data = yaml.load(path.read_text(), Loader=_LOADER)
            rules = (data or {}).get("alerts") or [] if isinstance(data, Mapping) else []
            return _ALERT_RULES.validate_python(rules)
        except (OSError, yaml.YAMLError, ValidationError):
            raise exc from None


_ALERT_RULES = TypeAdapter(list[AlertRuleSpec])


def list_org_slugs(orgs_dir: Path | None = None) -> list[str]:
    """Every folder of the organizations folder that holds a spec file, sorted."""
    root = orgs_dir or settings.orgs_dir()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{SPEC_FILE}"))


def dump_org_spec(spec: OrgSpec) -> str:
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False)


def write_org_spec(spec: OrgSpec, orgs_dir: Path | None = None) -> Path:
    """Write the spec atomically (the code location never sees a half-written file)."""
    path = org_spec_path(spec.slug, orgs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(dump_org_spec(spec))
    os.replace(tmp, path)
    spec.spec_path = path
    return path
