"""The platform's own sources, run by dlt on its hosts (``dalgo_assets/ingestion/dlt``): a database
(PostgreSQL, MySQL) and files (CSV, Parquet, JSON lines; a folder, HTTP(S), S3).

They sit in the connector catalog beside Airbyte's connectors (``database`` and ``files``, the ``type`` a
connection's source says), with a configuration form shaped as an Airbyte connector's ``spec``: the JSON
schema of the configuration models below, whose secret fields say ``airbyte_secret`` as Airbyte's do, so
``config.secret_paths``, ``config.split_secrets`` and ``config.validate`` treat both alike. The form is
known without running anything. A configuration gives secrets as values; the spec's source
(``spec.DatabaseSource``, ``spec.FileSource``) refers to them once stored.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic.json_schema import GenerateJsonSchema, NoDefault

from dalgo_core.connectors.catalog import ConnectorDef
from dalgo_core.spec import DatabaseFields, FileFields, NamedDatabaseSource, NamedFileSource, SecretRef

Kind = Literal["database", "files"]
KINDS: tuple[Kind, ...] = ("database", "files")
DOCS = "https://dlthub.com/docs/dlt-ecosystem/verified-sources/"
_KEEP = "Stored encrypted, never returned; left out of an update, the stored value stays."


def _secret(description: str) -> Any:
    return Field(
        None, max_length=1000, description=f"{description}. {_KEEP}", json_schema_extra={"airbyte_secret": True}
    )


class DatabaseConfig(DatabaseFields):
    """A PostgreSQL or MySQL database: the tables of one schema are its streams."""

    model_config = {"title": "Database (PostgreSQL, MySQL)"}
    password: SecretStr | None = _secret("The user's password")


class FilesConfig(FileFields):
    """CSV, Parquet or JSON lines files: each stream is the files of one pattern, ``<stream>.<format>`` by
    default."""

    model_config = {"title": "Files (CSV, Parquet, JSON lines)"}
    aws_access_key_id: SecretStr | None = _secret("S3: the access key id")
    aws_secret_access_key: SecretStr | None = _secret("S3: the secret access key")


CONFIGS: dict[str, type[DatabaseConfig] | type[FilesConfig]] = {"database": DatabaseConfig, "files": FilesConfig}


@cache
def definitions() -> tuple[ConnectorDef, ...]:
    """The catalog's entries of the platform's own sources (their version: the dlt that runs them)."""
    dlt = version("dlt")
    return (
        ConnectorDef(
            connector="database",
            version=dlt,
            title="Database (PostgreSQL, MySQL)",
            description="An organization's own application database: its tables, typed as the database declares "
            "them, in full or incrementally by a cursor column and merged on the primary key",
            package="dlt",
            documentation_url=DOCS + "sql_database",
            engine="dlt",
        ),
        ConnectorDef(
            connector="files",
            version=dlt,
            title="Files (CSV, Parquet, JSON lines)",
            description="Exports in the organization's files folder, on HTTP(S) or in an S3 bucket, "
            "read at the speed of the files' own readers",
            package="dlt",
            documentation_url=DOCS + "filesystem",
            engine="dlt",
        ),
    )


def is_builtin(connector: str) -> bool:
    return connector in KINDS


class _Form(GenerateJsonSchema):
    """A form a frontend renders: an optional field is its type, left out when empty (not ``anyOf`` with
    null, nor a null default)."""

    def nullable_schema(self, schema: Any) -> Any:
        return self.generate_inner(schema["schema"])

    def get_default_value(self, schema: Any) -> Any:
        found = super().get_default_value(schema)
        return NoDefault if found is None else found


@cache
def spec(connector: str) -> dict[str, Any]:
    """The configuration form of a platform source, shaped as an Airbyte connector's ``spec``."""
    definition = next(d for d in definitions() if d.connector == connector)
    schema = CONFIGS[connector].model_json_schema(by_alias=True, schema_generator=_Form)
    return {"documentationUrl": definition.documentation_url, "connectionSpecification": schema}


def _field(loc: tuple[Any, ...]) -> str:
    return "config." + ".".join(str(p) for p in loc) if loc else "config"


def validate(connector: str, config: dict[str, Any]) -> list[dict[str, str]]:
    """The rules the form cannot say (a file source's url, S3 keys given together), as ``config.validate``
    gives problems: each field named, no value echoed."""
    try:
        CONFIGS[connector].model_validate(config)
    except ValidationError as exc:
        return [{"field": _field(e["loc"]), "message": e["msg"].removeprefix("Value error, ")} for e in exc.errors()]
    return []


def configured(connector: str, config: dict[str, Any]) -> DatabaseConfig | FilesConfig:
    """A whole configuration (secrets as values) as its model; ``ValueError`` when it does not validate."""
    return CONFIGS[connector].model_validate(config)


def named_source(
    connector: str, name: str, plain: dict[str, Any], refs: dict[str, SecretRef]
) -> NamedDatabaseSource | NamedFileSource:
    """The spec's entry of a named source: its settings, and its secret fields by reference."""
    model = NamedDatabaseSource if connector == "database" else NamedFileSource
    return model.model_validate({**plain, **refs, "name": name, "type": connector})
