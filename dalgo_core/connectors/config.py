"""A source's configuration against its connector's specification: validation, and its secret fields.

A connector's ``spec`` is a JSON schema (``connectionSpecification``, draft 7) in which the fields to keep
secret say ``airbyte_secret: true``, at any depth, in nested objects and in the alternatives of a
``oneOf`` (source-file's ``provider`` is one of several storages, some with a password). Those fields are
taken out of a configuration before it is written in a spec, stored encrypted, and put back at run time
(``fill``), by their dotted path (``provider.password``).

Validation messages name the field and the rule it breaks, never the value given: a value may be a secret.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

SECRET_MARK = "airbyte_secret"


def connection_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration's JSON schema of a connector spec (the spec itself if it is one already)."""
    schema = spec.get("connectionSpecification", spec)
    return dict(schema) if isinstance(schema, Mapping) else {}


def _walk(schema: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every property of an object schema as (dotted path, its schema), the alternatives of ``oneOf``,
    ``anyOf`` and ``allOf`` included (their properties sit at the same path as their parent's)."""
    for keyword in ("oneOf", "anyOf", "allOf"):
        for option in schema.get(keyword) or []:
            if isinstance(option, Mapping):
                yield from _walk(option, prefix)
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        path = f"{prefix}.{name}" if prefix else str(name)
        yield path, prop
        yield from _walk(prop, path)


def secret_paths(spec: Mapping[str, Any]) -> list[str]:
    """The dotted paths of every field the spec marks ``airbyte_secret``, sorted."""
    return sorted({path for path, prop in _walk(connection_schema(spec), "") if prop.get(SECRET_MARK) is True})


def get_path(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path, or None."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a dotted path, creating the objects on the way; a non-object on the way is a ``LookupError``."""
    *parents, leaf = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise LookupError(f"'{dotted}': '{part}' is not an object in the configuration")
    node[leaf] = value


def split_secrets(config: Mapping[str, Any], paths: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the configuration without its secret fields, the secret values by dotted path). A secret that is
    not a string is stored as its JSON text, which ``fill`` gives back as a string: connectors' secret
    fields are strings."""
    import json

    plain = copy.deepcopy(dict(config))
    secrets: dict[str, str] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = plain
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            value = node.pop(leaf)
            if value is not None:
                secrets[path] = value if isinstance(value, str) else json.dumps(value)
    return plain, secrets


def fill(config: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the configuration with each secret value at its dotted path."""
    full = copy.deepcopy(dict(config))
    for dotted, value in secrets.items():
        set_path(full, dotted, value)
    return full


def _field(path: Any) -> str:
    return ".".join(str(p) for p in path) or "config"


def _rule(error: Any) -> str:
    """What a validation error says, from the rule and the schema, never from the value given."""
    value, kind = error.validator_value, error.validator
    if kind == "required":
        missing = [name for name in value if not isinstance(error.instance, Mapping) or name not in error.instance]
        return f"required: {', '.join(missing)}"
    if kind == "type":
        return f"must be of type {' or '.join(value) if isinstance(value, list) else value}"
    if kind in ("enum", "const"):
        options = value if isinstance(value, list) else [value]
        return "must be one of " + ", ".join(repr(o) for o in options[:20])
    if kind in ("oneOf", "anyOf"):
        return "matches none of the options the connector accepts"
    if kind == "additionalProperties":
        return "holds a field the connector does not accept"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
        return f"breaks {kind} {value}"
    if kind == "pattern":
        return f"does not match the pattern {value}"
    if kind == "format":
        return f"is not a valid {value}"
    return f"breaks the rule '{kind}' of the connector's specification"


def validate(spec: Mapping[str, Any], config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The problems of a configuration (secrets filled in) against the connector's spec, each
    ``{"field": "config.<dotted path>", "message": ...}``; empty when it is valid."""
    from jsonschema import Draft7Validator

    schema = connection_schema(spec)
    validator = Draft7Validator(schema, format_checker=None)
    problems = []
    for error in sorted(validator.iter_errors(dict(config)), key=lambda e: [str(p) for p in e.absolute_path]):
        where = _field(error.absolute_path)
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, Mapping) and name not in error.instance:
                    field = f"{where}.{name}" if error.absolute_path else name
                    problems.append({"field": f"config.{field}", "message": "is required"})
            continue
        problems.append({"field": f"config.{where}" if error.absolute_path else "config", "message": _rule(error)})
    return problems


def resolved(org: str, source: Any) -> dict[str, Any]:
    """A source's configuration (``spec.SourceSpec``) with every ``secrets`` path filled from its secret;
    a secret that cannot be read is a ``LookupError`` naming it."""
    values = {}
    for dotted, ref in source.secrets.items():
        values[dotted] = ref.resolve(org)
    try:
        return fill(source.config, values)
    except LookupError as exc:
        raise LookupError(f"source.secrets.{exc}") from None
