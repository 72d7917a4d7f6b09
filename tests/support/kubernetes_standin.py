"""A STAND-IN for a Kubernetes cluster, for tests on machines that cannot run Kubernetes.

This is **not Kubernetes**. This project's test machines have no Docker, no container runtime and no
internet, so this module gives the code that drives a cluster through the official ``kubernetes`` Python
client something real to talk to, over HTTP, with the client's own code path untouched:

``KubernetesStandin`` stands in for the kube-apiserver (plain HTTP on 127.0.0.1, a free port). It serves
the same URLs, JSON shapes, status codes and ``Status`` error bodies as a real apiserver for:

- apps/v1 ``deployments`` (and their ``status`` subresource), core v1 ``services`` (and ``status``),
  ``configmaps``, ``secrets``; ``pods`` are written by the ``Kubelet`` below and can be listed, read,
  deleted (the kubelet then replaces the pod, as a ReplicaSet would) and their ``log`` read;
- verbs: list (``labelSelector``: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a``,
  ``!a``; ``fieldSelector`` on ``metadata.name``/``metadata.namespace``; ``limit``/``continue``), get,
  create, replace (PUT), patch (``merge-patch+json``: RFC 7386; ``strategic-merge-patch+json``: a merge
  patch whose lists with a patch merge key (containers, env, ports, volumes, volumeMounts, service ports,
  ...) merge by that key, with the ``$patch``, ``$retainKeys`` and ``$deleteFromPrimitiveList``
  directives; ``json-patch+json``: RFC 6902), delete (with ``preconditions``), and ``dryRun=All``;
- the apiserver's behaviour around them: system metadata (``uid``, ``creationTimestamp``, a global
  ``resourceVersion`` bumped on every write and kept by a write that changes nothing, deployments'
  ``generation``), the defaults a real server fills in (a deployment's strategy, pod spec, containers,
  probes; a service's type, ports, ``clusterIP`` from 127.0.1.0/24 by default, never reused; a secret's
  type and ``stringData``), the validation a controller most often trips over (names as DNS-1123 subdomains or,
  for services, DNS-1035 labels; labels; a deployment's selector against its template; containers;
  ports; config keys; a service's immutable ``clusterIP``; immutable ConfigMaps/Secrets), optimistic
  concurrency (409 on a stale ``resourceVersion``), status kept apart from spec, and the error messages'
  wording (``deployments.apps "x" not found``, ``Service "x" is invalid: metadata.name: Invalid value:
  ...``); a few decode errors are close approximations;
- discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/apps``, ``/apis/apps/v1``, ``/version``) and
  ``/healthz``, ``/livez``, ``/readyz``.

Every request is recorded in ``KubernetesStandin.requests`` as ``Request(method, path, status)`` (the path
without its query string).

``Kubelet`` stands in for the controller manager and a kubelet for one namespace: each Deployment with
``replicas`` != 0 is realised as one local process (container[0]'s ``command`` + ``args``, looked up on
the pod's ``PATH``), run under bubblewrap for its volumes, and reported back through the API as a Pod and as
the Deployment's ``status``. See ``Kubelet`` for how pod IPs, Services, volumes, probes and restarts work.

Not done, on purpose: scheduling and nodes, real networking (every pod shares this machine's loopback: a
pod's IP is a 127.x address, and a literal ``0.0.0.0`` it is told to bind becomes that address), a DNS
server (pods get an ``/etc/hosts`` naming the services), container images (the program comes from this
machine), RBAC and authentication (bearer tokens are ignored, no TLS), admission, watch (``watch=true``
is answered 400), server-side apply (415), ``deletecollection``, namespaces as objects (any namespace name
is accepted), ReplicaSets, Endpoints, Events, ``managedFields``, garbage collection beyond a Deployment's
pod, rolling updates (the old pod is stopped before the new one starts), more than one pod per Deployment,
sidecar/init containers, liveness and startup probes, resource limits, and UDP services.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import copy
import hashlib
import http.client
import ipaddress
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import kubernetes.client

__all__ = ["CLUSTER_IP_RANGE", "POD_IP_RANGE", "Kubelet", "KubernetesStandin", "PodInfo", "Request"]

CLUSTER_IP_RANGE = "127.0.1.0/24"
"""Where services' cluster IPs come from by default (127.0.1.1, 127.0.1.2, ..., never reused in one stand-in).
All of 127.0.0.0/8 is loopback on Linux, so these addresses work without any network setup."""
POD_IP_RANGE = "127.0.2.0/24"
"""Where the IPs of pods no Service selects come from by default (127.0.2.1, ...; reused once all are given)."""

_SERVER_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class _Kind:
    resource: str
    kind: str
    group: str
    singular: str
    name_rule: str  # "subdomain" (DNS-1123 subdomain) or "dns1035" (DNS-1035 label)
    short_names: tuple[str, ...] = ()
    writable: bool = True  # create/replace/patch through the API
    returns_deleted: bool = False  # DELETE answers the object rather than a Status
    has_status: bool = False  # a status subresource, kept apart from the main resource's writes

    @property
    def api_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"

    @property
    def qualified_resource(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


_KINDS: dict[tuple[str, str], _Kind] = {
    ("apps", "deployments"): _Kind(
        "deployments", "Deployment", "apps", "deployment", "subdomain", ("deploy",), has_status=True
    ),
    ("", "services"): _Kind(
        "services", "Service", "", "service", "dns1035", ("svc",), returns_deleted=True, has_status=True
    ),
    ("", "configmaps"): _Kind("configmaps", "ConfigMap", "", "configmap", "subdomain", ("cm",)),
    ("", "secrets"): _Kind("secrets", "Secret", "", "secret", "subdomain"),
    ("", "pods"): _Kind(
        "pods", "Pod", "", "pod", "subdomain", ("po",), writable=False, returns_deleted=True, has_status=True
    ),
}


# -------------------------------------------------------------------------------------------- errors


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
        }
        if details is not None:
            self.body["details"] = details
        self.body["code"] = code


def _details(kind: _Kind, name: str, *, use_kind: bool = False) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if kind.group:
        details["group"] = kind.group
    details["kind"] = kind.kind if use_kind else kind.resource  # the apiserver puts the resource in "kind"
    return details


def _not_found(kind: _Kind, name: str) -> _ApiError:
    return _ApiError(404, "NotFound", f'{kind.qualified_resource} "{name}" not found', _details(kind, name))


def _already_exists(kind: _Kind, name: str) -> _ApiError:
    return _ApiError(409, "AlreadyExists", f'{kind.qualified_resource} "{name}" already exists', _details(kind, name))


def _conflict(kind: _Kind, name: str, why: str) -> _ApiError:
    message = f'Operation cannot be fulfilled on {kind.qualified_resource} "{name}": {why}'
    return _ApiError(409, "Conflict", message, _details(kind, name))


_STALE = "the object has been modified; please apply your changes to the latest version and try again"


def _bad_request(message: str) -> _ApiError:
    return _ApiError(400, "BadRequest", message)


def _internal(message: str) -> _ApiError:
    return _ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def _no_resource() -> _ApiError:
    return _ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _method_not_allowed() -> _ApiError:
    return _ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def _go_repr(value: Any) -> str:
    """A value as the apiserver's field errors print it (Go's %#v, roughly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return (
            "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items())) + "}"
        )
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class _FieldError:
    type: str  # the cause's reason: FieldValueInvalid, FieldValueRequired, ...
    field: str
    detail: str = ""
    value: Any = None

    def body(self) -> str:
        head = {
            "FieldValueRequired": "Required value",
            "FieldValueForbidden": "Forbidden",
            "FieldValueTooLong": "Too long",
        }.get(self.type)
        if head is None:
            word = {
                "FieldValueInvalid": "Invalid value",
                "FieldValueNotSupported": "Unsupported value",
                "FieldValueDuplicate": "Duplicate value",
                "FieldValueNotFound": "Not found",
            }[self.type]
            head = f"{word}: {_go_repr(self.value)}"
        return f"{head}: {self.detail}" if self.detail else head

    def message(self) -> str:
        return f"{self.field}: {self.body()}"


def _invalid(kind: _Kind, name: str, errors: list[_FieldError]) -> _ApiError:
    messages = [e.message() for e in errors]
    aggregate = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    details = _details(kind, name, use_kind=True)
    details["causes"] = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    return _ApiError(422, "Invalid", f'{kind.qualified_kind} "{name}" is invalid: {aggregate}', details)


def _decode_error(kind: _Kind, why: str) -> _ApiError:
    return _bad_request(f'{kind.kind} in version "v1" cannot be handled as a {kind.kind}: {why}')


# ---------------------------------------------------------------------------------------- validation

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _dns1123_label(value: str) -> list[str]:
    errors = ["must be no more than 63 characters"] if len(value) > 63 else []
    return errors + ([] if _DNS1123_LABEL.fullmatch(value) else [_DNS1123_LABEL_MSG])


def _dns1123_subdomain(value: str) -> list[str]:
    errors = ["must be no more than 253 characters"] if len(value) > 253 else []
    return errors + ([] if _DNS1123_SUBDOMAIN.fullmatch(value) else [_DNS1123_SUBDOMAIN_MSG])


def _dns1035_label(value: str) -> list[str]:
    errors = ["must be no more than 63 characters"] if len(value) > 63 else []
    return errors + ([] if _DNS1035_LABEL.fullmatch(value) else [_DNS1035_LABEL_MSG])


def _qualified_name(value: str) -> list[str]:
    prefix, _, name = value.rpartition("/")
    errors = []
    if "/" in value and not prefix:
        errors.append("prefix part must be non-empty")
    elif prefix:
        errors += [f"prefix part {m}" for m in _dns1123_subdomain(prefix)]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.fullmatch(name):
        errors.append(_QUALIFIED_NAME_MSG)
    return errors


def _label_errors(labels: dict[str, str], path: str) -> list[_FieldError]:
    errors = []
    for key, value in labels.items():
        errors += [_FieldError("FieldValueInvalid", path, m, key) for m in _qualified_name(key)]
        if len(value) > 63:
            errors.append(_FieldError("FieldValueInvalid", path, "must be no more than 63 characters", value))
        if not _LABEL_VALUE.fullmatch(value):
            errors.append(_FieldError("FieldValueInvalid", path, _LABEL_VALUE_MSG, value))
    return errors


def _check_string_map(kind: _Kind, value: Any, go_field: str) -> None:
    """A map of strings (labels, data, ...), or the 400 the apiserver's JSON decoder answers."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise _decode_error(
            kind,
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {go_field} of type map[string]string",
        )
    for item in value.values():
        if not isinstance(item, str):
            raise _decode_error(
                kind, f"json: cannot unmarshal {_json_type(item)} into Go struct field {go_field} of type string"
            )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


# --------------------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        return not has


_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"[A-Za-z0-9_.-]*"
_SET_TERM = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*")
_EQ_TERM = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_EXISTS_TERM = re.compile(rf"\s*(!?)\s*({_KEY})\s*")


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return terms


def _parse_label_selector(selector: str) -> list[_Requirement]:
    if not selector.strip():
        return []
    requirements = []
    for term in _split_terms(selector):
        if m := _SET_TERM.fullmatch(term):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            if not values or not all(re.fullmatch(_VALUE, v) for v in values):
                raise _bad_request(
                    f"unable to parse requirement: found '{term.strip()}', expected: ',', ')' or identifier"
                )
            requirements.append(_Requirement(m.group(1), m.group(2), values))
        elif m := _EQ_TERM.fullmatch(term):
            requirements.append(_Requirement(m.group(1), "!=" if m.group(2) == "!=" else "=", (m.group(3),)))
        elif m := _EXISTS_TERM.fullmatch(term):
            requirements.append(_Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise _bad_request(f"unable to parse requirement: found '{term.strip()}', expected: identifier")
    return requirements


def _parse_field_selector(selector: str, kind: _Kind) -> list[tuple[str, str, str]]:
    supported = {"metadata.name", "metadata.namespace"}
    if kind.resource == "pods":
        supported |= {"status.phase", "status.podIP", "spec.nodeName", "spec.restartPolicy"}
    if kind.resource == "secrets":
        supported.add("type")
    terms = []
    for term in selector.split(","):
        if not term.strip():
            continue
        m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*", term)
        if not m:
            raise _bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        if m.group(1) not in supported:
            raise _bad_request(f"field label not supported: {m.group(1)}")
        terms.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return terms


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions) against labels; an empty one matches all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        op = ops.get(expression.get("operator", ""))
        if op is None:
            return False
        if not _Requirement(expression.get("key", ""), op, tuple(expression.get("values") or ())).matches(labels):
            return False
    return True


# ----------------------------------------------------------------------------------------- patches

_POD_SPEC_MERGE_KEYS = {
    ("containers",): "name",
    ("initContainers",): "name",
    ("ephemeralContainers",): "name",
    ("volumes",): "name",
    ("imagePullSecrets",): "name",
    ("hostAliases",): "ip",
    ("topologySpreadConstraints",): "topologyKey",
    ("resourceClaims",): "name",
    ("schedulingGates",): "name",
}
_CONTAINER_MERGE_KEYS = {
    ("env",): "name",
    ("ports",): "containerPort",
    ("volumeMounts",): "mountPath",
    ("volumeDevices",): "devicePath",
}
_MERGE_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("status", "conditions"): "type",
    ("spec", "ports"): "port",  # a Service's ports
}
for _base in (("spec", "template", "spec"), ("spec",)):
    for _path, _key in _POD_SPEC_MERGE_KEYS.items():
        _MERGE_KEYS[_base + _path] = _key
    for _containers in ("containers", "initContainers", "ephemeralContainers"):
        for _path, _key in _CONTAINER_MERGE_KEYS.items():
            _MERGE_KEYS[(*_base, _containers, *_path)] = _key
_PRIMITIVE_MERGE = {("metadata", "finalizers")}


class _PatchError(Exception):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_DELETE = object()


def _strategic_merge(target: Any, patch: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strategic_merge({}, {k: v for k, v in patch.items() if k != "$patch"}, path)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [item for item in result.get(name) or [] if item not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub = (*path, key)
        if isinstance(value, list) and sub in _MERGE_KEYS:
            result[key] = _strategic_merge_list(result.get(key), value, sub)
        elif isinstance(value, list) and sub in _PRIMITIVE_MERGE:
            merged = list(result.get(key) or [])
            result[key] = merged + [item for item in value if item not in merged]
        else:
            merged = _strategic_merge(result.get(key), value, sub)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _strategic_merge_list(target: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    key = _MERGE_KEYS[path]
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [
            _strategic_merge({}, item, path)
            for item in patch
            if not (isinstance(item, dict) and item.get("$patch") == "replace")
        ]
    result = list(target) if isinstance(target, list) else []
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise _PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strategic_merge({}, item, path))
        else:
            result[index] = _strategic_merge(result[index], item, path)
    return result


def strategic_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """A strategic merge patch of a Deployment, Service, ConfigMap, Secret (lists merged by their patch keys)."""
    if not isinstance(patch, dict):
        raise _PatchError("a strategic merge patch must be a JSON object")
    result = _strategic_merge(target, patch, ())
    return {} if result is _DELETE else result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _PatchError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _resolve(doc: Any, tokens: list[str], op: str, path: str) -> tuple[Any, str]:
    """The container holding the pointer's last token, and that token."""
    if not tokens:
        raise _PatchError(f"{op} operation does not apply: doc is missing path: {path}")
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise _PatchError(f"{op} operation does not apply: doc is missing path: {path}: missing value")
    return node, tokens[-1]


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise ValueError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise ValueError(f"invalid operation {operation!r}")
        op, path = operation["op"], operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise ValueError(f"missing value for {op} operation at {path}")
        if op == "move" or op == "copy":
            source = _pointer(operation.get("from"))
            parent, last = _resolve(doc, source, op, operation.get("from"))
            value = copy.deepcopy(_get_child(parent, last, op, operation.get("from")))
            if op == "move":
                _remove_child(parent, last, op, operation.get("from"))
            doc = _add(doc, _pointer(path), value, path)
        elif op == "add":
            doc = _add(doc, _pointer(path), copy.deepcopy(operation["value"]), path)
        elif op == "remove":
            parent, last = _resolve(doc, _pointer(path), op, path)
            _remove_child(parent, last, op, path)
        elif op == "replace":
            tokens = _pointer(path)
            if not tokens:
                doc = copy.deepcopy(operation["value"])
                continue
            parent, last = _resolve(doc, tokens, op, path)
            _get_child(parent, last, op, path)
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(operation["value"])
            else:
                parent[last] = copy.deepcopy(operation["value"])
        elif op == "test":
            tokens = _pointer(path)
            actual = doc if not tokens else _get_child(*_resolve(doc, tokens, op, path), op, path)
            if actual != operation["value"]:
                raise _PatchError(f"testing value {path} failed: test failed")
        else:
            raise ValueError(f"Unexpected kind: {op}")
    return doc


def _get_child(parent: Any, token: str, op: str, path: Any) -> Any:
    if isinstance(parent, dict) and token in parent:
        return parent[token]
    if isinstance(parent, list) and token.isdigit() and int(token) < len(parent):
        return parent[int(token)]
    raise _PatchError(f"{op} operation does not apply: doc is missing key: {path}: missing value")


def _remove_child(parent: Any, token: str, op: str, path: Any) -> None:
    _get_child(parent, token, op, path)
    if isinstance(parent, list):
        del parent[int(token)]
    else:
        del parent[token]


def _add(doc: Any, tokens: list[str], value: Any, path: Any) -> Any:
    if not tokens:
        return value
    parent, last = _resolve(doc, tokens, "add", path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _PatchError(f"add operation does not apply: doc is missing path: {path}: invalid index")
    else:
        raise _PatchError(f"add operation does not apply: doc is missing path: {path}: missing value")
    return doc


# ---------------------------------------------------------------------------------------- defaults


def _default_probe(probe: dict[str, Any]) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _default_container(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = container.get("image") or ""
    if "imagePullPolicy" not in container:
        tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
        container["imagePullPolicy"] = "Always" if tag in ("", "latest") else "IfNotPresent"
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if isinstance(container.get(probe), dict):
            _default_probe(container[probe])


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for source in ("configMap", "secret"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)
        if isinstance(volume.get("hostPath"), dict):
            volume["hostPath"].setdefault("type", "")


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        _default_pod_spec(template.setdefault("spec", {}))


def _default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if spec["type"] != "ExternalName":
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


# ------------------------------------------------------------------------------------------ server


class Request(NamedTuple):
    """One request the stand-in answered: the method, the URL's path (no query string), the status code."""

    method: str
    path: str
    status: int


_NAMESPACED = re.compile(
    r"/(?:api/v1|apis/(?P<group>[a-z0-9.-]+)/v1)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?"
)
_ALL_NAMESPACES = re.compile(r"/(?:api/v1|apis/(?P<group>[a-z0-9.-]+)/v1)/(?P<resource>[^/]+)")
_SUBRESOURCES = {"status", "log"}


class KubernetesStandin:
    """A kube-apiserver stand-in on 127.0.0.1 (see the module's docstring for what it serves).

    ``with KubernetesStandin() as kube:`` then ``kubernetes.client.ApiClient(kube.client_configuration())``.
    ``requests`` lists what was asked; ``get_object``/``list_objects`` read the store directly (copies).
    """

    def __init__(self, *, cluster_ip_range: str = CLUSTER_IP_RANGE, pod_ip_range: str = POD_IP_RANGE) -> None:
        """Two stand-ins running at once (pytest-xdist workers) need ranges of their own: their pods share
        this machine's loopback, so the same IP and port in both would clash."""
        self.cluster_ip_range = ipaddress.ip_network(cluster_ip_range)
        self.pod_ip_range = ipaddress.ip_network(pod_ip_range)
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k.resource: {} for k in _KINDS.values()}
        self._rv = 0
        self._cluster_ips = [str(ip) for ip in self.cluster_ip_range.hosts()]
        self._next_cluster_ip = 0
        self._cluster_ips_used: set[str] = set()
        self._pod_ips = [str(ip) for ip in self.pod_ip_range.hosts()]
        self._next_pod_ip = 0
        self._next_node_port = 30000
        self._pod_logs: dict[tuple[str, str], Path] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.requests: list[Request] = []
        self.url = ""

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> KubernetesStandin:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="kubernetes-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> KubernetesStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client_configuration(self) -> kubernetes.client.Configuration:
        """A configuration of the official client for this server (no proxy, whatever the environment says)."""
        configuration = kubernetes.client.Configuration(host=self.url)
        configuration.proxy = None  # a proxy from the environment must not carry 127.0.0.1 elsewhere
        return configuration

    # ---------------------------------------------------------------- the store, read directly by tests

    @property
    def resource_version(self) -> int:
        """The store's current resourceVersion."""
        return self._rv

    def get_object(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A stored object (a copy), e.g. ``get_object("deployments", "dalgo", "org-acme")``, or None."""
        with self._lock:
            obj = self._objects[resource].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a resource (copies), in one namespace or all, ordered by namespace and name."""
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._objects[resource].items())
                if namespace is None or ns == namespace
            ]

    # ---------------------------------------------------------------- writes by the Kubelet (not over HTTP)

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _system_write(self, resource: str, namespace: str, obj: dict[str, Any], *, create: bool) -> bool:
        """Create or update an object as a controller would; False if it is gone and ``create`` is False."""
        name = obj["metadata"]["name"]
        with self._lock:
            store = self._objects[resource]
            old = store.get((namespace, name))
            new = copy.deepcopy(obj)
            meta = new["metadata"]
            meta["namespace"] = namespace
            if old is None:
                if not create:
                    return False
                meta.setdefault("uid", str(uuid.uuid4()))
                meta["creationTimestamp"] = _now()
            else:
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                meta["resourceVersion"] = old["metadata"]["resourceVersion"]
                if new == old:
                    return True
            meta["resourceVersion"] = self._bump()
            store[(namespace, name)] = new
            return True

    def _system_set_status(self, resource: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        with self._lock:
            old = self._objects[resource].get((namespace, name))
            if old is None or old.get("status") == status:
                return
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(status)
            new["metadata"]["resourceVersion"] = self._bump()
            self._objects[resource][(namespace, name)] = new

    def _system_delete(self, resource: str, namespace: str, name: str) -> None:
        with self._lock:
            if self._objects[resource].pop((namespace, name), None) is not None:
                self._bump()
            if resource == "pods":
                self._pod_logs.pop((namespace, name), None)

    def _allocate_pod_ip(self) -> str:
        """The next pod IP of the range, skipping those of existing pods once the range has wrapped around."""
        with self._lock:
            held = {(pod.get("status") or {}).get("podIP") for pod in self._objects["pods"].values()}
            for _ in range(len(self._pod_ips)):
                ip = self._pod_ips[self._next_pod_ip % len(self._pod_ips)]
                self._next_pod_ip += 1
                if ip not in held:
                    return ip
        raise RuntimeError(f"the Kubernetes stand-in ran out of pod IPs ({self.pod_ip_range})")

    # ---------------------------------------------------------------- HTTP

    def _handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        if method == "GET":
            discovery = self._discovery(path.rstrip("/") or "/")
            if discovery is not None:
                return 200, discovery
        params = {key: values[-1] for key, values in query.items()}
        if m := _NAMESPACED.fullmatch(path):
            kind = _KINDS.get((m.group("group") or "", m.group("resource")))
            if kind is None:
                raise _no_resource()
            ns, name, sub = unquote(m.group("ns")), m.group("name"), m.group("sub")
            name = unquote(name) if name is not None else None
            if sub is not None and (sub not in _SUBRESOURCES or (sub == "log") != (kind.resource == "pods")):
                raise _no_resource()
            if sub == "status" and not kind.has_status:
                raise _no_resource()
            return self._serve(kind, method, ns, name, sub, params, headers, body)
        if m := _ALL_NAMESPACES.fullmatch(path):
            kind = _KINDS.get((m.group("group") or "", m.group("resource")))
            if kind is None:
                raise _no_resource()
            if method != "GET":
                raise _method_not_allowed()
            return 200, self._list(kind, None, params)
        raise _no_resource()

    def _serve(
        self,
        kind: _Kind,
        method: str,
        ns: str,
        name: str | None,
        sub: str | None,
        params: dict[str, str],
        headers: Any,
        body: bytes,
    ) -> tuple[int, Any]:
        dry_run = params.get("dryRun") == "All"
        if name is None:
            if method == "GET":
                return 200, self._list(kind, ns, params)
            if method == "POST" and kind.writable:
                return self._create(kind, ns, _decode(body, kind), dry_run)
            raise _method_not_allowed()
        if sub == "log":
            if method != "GET":
                raise _method_not_allowed()
            return 200, self._pod_log(ns, name, params)
        if method == "GET":
            return 200, self._get(kind, ns, name)
        if method == "DELETE" and sub is None:
            try:
                options = json.loads(body) if body.strip() else {}
            except ValueError as e:
                raise _bad_request(f"couldn't get version/kind; json parse error: {e}") from None
            return 200, self._delete(kind, ns, name, options if isinstance(options, dict) else {}, dry_run)
        if not kind.writable:
            raise _method_not_allowed()
        if method == "PUT":
            return 200, self._update(kind, ns, name, _decode(body, kind), sub, dry_run)
        if method == "PATCH":
            content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            return 200, self._patch(kind, ns, name, content_type, body, sub, dry_run)
        raise _method_not_allowed()

    def _discovery(self, path: str) -> dict[str, Any] | None:
        apps = {"groupVersion": "apps/v1", "version": "v1"}
        if path == "/version":
            return dict(_SERVER_VERSION)
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("//")[1]}],
            }
        if path == "/apis":
            group = {"name": "apps", "versions": [apps], "preferredVersion": apps}
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
        if path == "/apis/apps":
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": "apps",
                "versions": [apps],
                "preferredVersion": apps,
            }
        for group, group_version in (("", "v1"), ("apps", "apps/v1")):
            if path == ("/api/v1" if not group else f"/apis/{group}/v1"):
                resources = []
                for kind in _KINDS.values():
                    if kind.group != group:
                        continue
                    verbs = ["get", "list"] + (["create", "update", "patch"] if kind.writable else []) + ["delete"]
                    entry = {"name": kind.resource, "singularName": kind.singular, "namespaced": True}
                    entry |= {"kind": kind.kind, "verbs": sorted(verbs)}
                    if kind.short_names:
                        entry["shortNames"] = list(kind.short_names)
                    resources.append(entry)
                    if kind.has_status:
                        verbs = ["get", "patch", "update"] if kind.writable else ["get"]
                        resources.append(
                            {
                                "name": f"{kind.resource}/status",
                                "singularName": "",
                                "namespaced": True,
                                "kind": kind.kind,
                                "verbs": verbs,
                            }
                        )
                    if kind.resource == "pods":
                        resources.append(
                            {
                                "name": "pods/log",
                                "singularName": "",
                                "namespaced": True,
                                "kind": "Pod",
                                "verbs": ["get"],
                            }
                        )
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": group_version,
                    "resources": resources,
                }
        return None

    # ---------------------------------------------------------------- verbs

    def _get(self, kind: _Kind, ns: str, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._objects[kind.resource].get((ns, name))
            if obj is None:
                raise _not_found(kind, name)
            return copy.deepcopy(obj)

    def _list(self, kind: _Kind, ns: str | None, params: dict[str, str]) -> dict[str, Any]:
        if params.get("watch") in ("true", "1"):
            raise _bad_request("watch is not supported by this Kubernetes stand-in")
        labels = _parse_label_selector(params.get("labelSelector", ""))
        fields = _parse_field_selector(params.get("fieldSelector", ""), kind)
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 0
        start: tuple[str, str] | None = None
        if params.get("continue"):
            try:
                start_ns, start_name = json.loads(base64.urlsafe_b64decode(params["continue"]))["start"]
                start = (str(start_ns), str(start_name))
            except (ValueError, KeyError, TypeError) as e:
                raise _bad_request(f"continue key is not valid: {e}") from None
        with self._lock:
            items = []
            for (item_ns, item_name), obj in sorted(self._objects[kind.resource].items()):
                if (ns is not None and item_ns != ns) or (start is not None and (item_ns, item_name) <= start):
                    continue
                item_labels = obj["metadata"].get("labels") or {}
                if not all(r.matches(item_labels) for r in labels):
                    continue
                if not all((_field_value(obj, f) == v) == (op == "=") for f, op, v in fields):
                    continue
                item = copy.deepcopy(obj)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
            metadata: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = json.dumps({"rv": metadata["resourceVersion"], "start": [last["namespace"], last["name"]]})
            metadata["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": metadata, "items": items}

    def _pod_log(self, ns: str, name: str, params: dict[str, str]) -> str:
        self._get(_KINDS[("", "pods")], ns, name)
        path = self._pod_logs.get((ns, name))
        text = path.read_text(errors="replace") if path is not None and path.exists() else ""
        if params.get("tailLines", "").isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(params["tailLines"]) :]) if int(params["tailLines"]) else ""
        return text

    def _check_type(self, kind: _Kind, body: dict[str, Any]) -> None:
        api_version, obj_kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != kind.api_version:
            raise _bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({kind.api_version})"
            )
        if obj_kind and obj_kind != kind.kind:
            internal = kind.group or "core"
            raise _bad_request(
                f'{obj_kind} in version "v1" cannot be handled as a {kind.kind}: converting (v1.{obj_kind}) to '
                f"({internal}.{kind.kind}): unknown conversion"
            )
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise _decode_error(
                kind,
                f"json: cannot unmarshal {_json_type(meta)} into Go struct field {kind.kind}.metadata "
                "of type v1.ObjectMeta",
            )
        meta = meta or {}
        _check_string_map(kind, meta.get("labels"), "ObjectMeta.metadata.labels")
        _check_string_map(kind, meta.get("annotations"), "ObjectMeta.metadata.annotations")
        if kind.resource in ("configmaps", "secrets"):
            _check_string_map(kind, body.get("data"), f"{kind.kind}.data")
            _check_string_map(kind, body.get("binaryData"), f"{kind.kind}.binaryData")
            _check_string_map(kind, body.get("stringData"), f"{kind.kind}.stringData")
        for key in ("spec", "status"):
            if body.get(key) is not None and not isinstance(body[key], dict):
                raise _decode_error(
                    kind, f"json: cannot unmarshal {_json_type(body[key])} into Go struct field {kind.kind}.{key}"
                )

    def _create(self, kind: _Kind, ns: str, body: dict[str, Any], dry_run: bool) -> tuple[int, dict[str, Any]]:
        self._check_type(kind, body)
        obj = copy.deepcopy(body)
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") not in (None, "", ns):
            raise _bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_POD_SUFFIX_ALPHABET, k=5))
        name = meta.get("name") or ""
        if meta.get("resourceVersion"):
            raise _internal("resourceVersion should not be set on objects to be created")
        meta["namespace"] = ns
        for system in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields", "selfLink"):
            meta.pop(system, None)
        if kind.has_status:
            obj["status"] = {"loadBalancer": {}} if kind.resource == "services" else {}
        if kind.resource == "deployments":
            meta["generation"] = 1
        self._prepare(kind, obj, None)
        with self._lock:
            errors = self._validate(kind, obj, None)
            if errors:
                raise _invalid(kind, name, errors)
            if (ns, name) in self._objects[kind.resource]:
                raise _already_exists(kind, name)
            if kind.resource == "services":
                self._allocate_service(kind, obj, dry_run)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            if dry_run:
                return 201, obj
            meta["resourceVersion"] = self._bump()
            self._objects[kind.resource][(ns, name)] = obj
            return 201, copy.deepcopy(obj)

    def _update(
        self, kind: _Kind, ns: str, name: str, body: dict[str, Any], sub: str | None, dry_run: bool
    ) -> dict[str, Any]:
        self._check_type(kind, body)
        with self._lock:
            old = self._objects[kind.resource].get((ns, name))
            if old is None:
                raise _not_found(kind, name)
            meta = body.get("metadata") or {}
            if meta.get("name", "") != name:
                raise _bad_request(
                    f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
                )
            if meta.get("namespace") not in (None, "", ns):
                raise _bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            old_meta = old["metadata"]
            if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
                raise _conflict(kind, name, _STALE)
            if meta.get("uid") and meta["uid"] != old_meta["uid"]:
                why = f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta['uid']}"
                raise _conflict(kind, name, why)
            if sub == "status":
                new = copy.deepcopy(old)
                new["status"] = copy.deepcopy(body.get("status") or {})
            else:
                new = copy.deepcopy(body)
                new["kind"], new["apiVersion"] = kind.kind, kind.api_version
                new_meta = new.setdefault("metadata", {})
                for system in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                    if system in old_meta:
                        new_meta[system] = old_meta[system]
                    else:
                        new_meta.pop(system, None)
                new_meta["namespace"] = ns
                new_meta.pop("managedFields", None)
                if kind.has_status:
                    new.pop("status", None)
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                self._prepare(kind, new, old)
                errors = self._validate(kind, new, old)
                if errors:
                    raise _invalid(kind, name, errors)
                if kind.resource == "deployments" and new.get("spec") != old.get("spec"):
                    new_meta["generation"] = old_meta.get("generation", 1) + 1
            if new == old:
                return copy.deepcopy(old)
            if dry_run:
                return new
            new["metadata"]["resourceVersion"] = self._bump()
            self._objects[kind.resource][(ns, name)] = new
            return copy.deepcopy(new)

    def _patch(
        self, kind: _Kind, ns: str, name: str, content_type: str, body: bytes, sub: str | None, dry_run: bool
    ) -> dict[str, Any]:
        kinds = (
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        )
        if content_type not in kinds:
            raise _ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(kinds)}",
                {},
            )
        try:
            patch = json.loads(body or b"null")
        except ValueError as e:
            raise _bad_request(f"error decoding patch: {e}") from None
        with self._lock:
            current = self._get(kind, ns, name)
            try:
                if content_type == "application/json-patch+json":
                    patched = json_patch(current, patch)
                elif content_type == "application/merge-patch+json":
                    patched = merge_patch(current, patch)
                else:
                    patched = strategic_merge_patch(current, patch)
            except ValueError as e:
                raise _bad_request(str(e)) from None
            except _PatchError as e:
                raise _ApiError(422, "Invalid", str(e), {}) from None
            if not isinstance(patched, dict):
                raise _bad_request("the patched object is not a JSON object")
            return self._update(kind, ns, name, patched, sub, dry_run)

    def _delete(self, kind: _Kind, ns: str, name: str, options: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        with self._lock:
            obj = self._get(kind, ns, name)
            preconditions = options.get("preconditions") or {}
            for key, field_name in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted, actual = preconditions.get(key), obj["metadata"].get(key)
                if wanted and wanted != actual:
                    why = (
                        f"Precondition failed: {field_name} in precondition: {wanted}, "
                        f"{field_name} in object meta: {actual}"
                    )
                    raise _conflict(kind, name, why)
            if not dry_run:
                del self._objects[kind.resource][(ns, name)]
                obj["metadata"]["resourceVersion"] = self._bump()
                if kind.resource == "pods":
                    self._pod_logs.pop((ns, name), None)
        if kind.returns_deleted:
            return obj
        details = _details(kind, name)
        details["uid"] = obj["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    # ---------------------------------------------------------------- per kind: preparation, validation

    def _prepare(self, kind: _Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """What the apiserver's strategies do before validating: defaults, secrets' stringData, kept fields."""
        if kind.resource == "deployments":
            if isinstance(obj.get("spec"), dict):
                _default_deployment(obj)
        elif kind.resource == "services":
            spec = obj.setdefault("spec", {})
            if not isinstance(spec, dict):
                return
            _default_service(obj)
            if old is not None:
                old_spec = old.get("spec") or {}
                if not spec.get("clusterIP") and not spec.get("clusterIPs") and old_spec.get("clusterIP"):
                    spec["clusterIP"] = old_spec["clusterIP"]  # a PUT without it keeps it, as since 1.20
                if spec.get("clusterIP") == old_spec.get("clusterIP"):
                    for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                        if key not in spec and key in old_spec:
                            spec[key] = copy.deepcopy(old_spec[key])
                old_node_ports = {
                    p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or [] if isinstance(p, dict)
                }
                for port in spec.get("ports") or []:
                    node_port = old_node_ports.get(port.get("port")) if isinstance(port, dict) else None
                    if node_port and not port.get("nodePort") and spec.get("type") in ("NodePort", "LoadBalancer"):
                        port["nodePort"] = node_port
            if spec.get("clusterIPs") and not spec.get("clusterIP"):
                spec["clusterIP"] = spec["clusterIPs"][0]
        elif kind.resource == "secrets":
            obj.setdefault("type", "Opaque")
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = obj.setdefault("data", {})
                for key, value in string_data.items():
                    data[key] = base64.b64encode(value.encode()).decode()
            for value in (obj.get("data") or {}).values():
                try:
                    base64.b64decode(value, validate=True)
                except ValueError:
                    raise _decode_error(kind, f"illegal base64 data at input byte {_bad_base64_byte(value)}") from None

    def _validate(self, kind: _Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> list[_FieldError]:
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        errors: list[_FieldError] = []
        if not name:
            errors.append(_FieldError("FieldValueRequired", "metadata.name", "name or generateName is required"))
        else:
            rule = _dns1035_label if kind.name_rule == "dns1035" else _dns1123_subdomain
            errors += [_FieldError("FieldValueInvalid", "metadata.name", m, name) for m in rule(name)]
        errors += _label_errors(meta.get("labels") or {}, "metadata.labels")
        for key in meta.get("annotations") or {}:
            errors += [
                _FieldError("FieldValueInvalid", "metadata.annotations", m, key) for m in _qualified_name(key.lower())
            ]
        if kind.resource == "deployments":
            errors += _validate_deployment(obj, old)
        elif kind.resource == "services":
            errors += _validate_service(obj, old)
        elif kind.resource in ("configmaps", "secrets"):
            errors += _validate_data(kind, obj, old)
        return errors

    def _allocate_service(self, kind: _Kind, obj: dict[str, Any], dry_run: bool) -> None:
        spec = obj["spec"]
        name = obj["metadata"]["name"]
        if spec.get("type") == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return
        requested = spec.get("clusterIP")
        if requested == "None":
            spec["clusterIPs"] = ["None"]
        else:
            in_use = {(s.get("spec") or {}).get("clusterIP") for s in self._objects["services"].values()}
            if requested:
                network = self.cluster_ip_range
                try:
                    address = ipaddress.ip_address(requested)
                except ValueError:
                    detail = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    raise _invalid(
                        kind, name, [_FieldError("FieldValueInvalid", "spec.clusterIPs[0]", detail, requested)]
                    ) from None
                if address not in network or address in (network.network_address, network.broadcast_address):
                    detail = (
                        f"failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. "
                        f"The range of valid IPs is {network}"
                    )
                    raise _invalid(
                        kind, name, [_FieldError("FieldValueInvalid", "spec.clusterIPs", detail, [requested])]
                    )
                if requested in in_use:
                    detail = f"failed to allocate IP {requested}: provided IP is already allocated"
                    raise _invalid(
                        kind, name, [_FieldError("FieldValueInvalid", "spec.clusterIPs", detail, [requested])]
                    )
                ip = requested
            else:
                candidate = self._next_cluster_ip
                while candidate < len(self._cluster_ips) and (
                    self._cluster_ips[candidate] in self._cluster_ips_used or self._cluster_ips[candidate] in in_use
                ):
                    candidate += 1
                if candidate >= len(self._cluster_ips):
                    raise _internal("failed to allocate a serviceIP: range is full")
                ip = self._cluster_ips[candidate]
                if not dry_run:
                    self._next_cluster_ip = candidate + 1
            if not dry_run:
                self._cluster_ips_used.add(ip)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    port["nodePort"] = self._next_node_port
                    if not dry_run:
                        self._next_node_port += 1


def _bad_base64_byte(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for index, ch in enumerate(value):
        if ch not in alphabet:
            return index
    return len(value)


def _decode(body: bytes, kind: _Kind) -> dict[str, Any]:
    try:
        obj = json.loads(body or b"{}")
    except ValueError as e:
        raise _bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    if not isinstance(obj, dict):
        raise _decode_error(kind, f"json: cannot unmarshal {_json_type(obj)} into Go value of type struct")
    return obj


def _port_number_errors(value: Any, path: str) -> list[_FieldError]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [_FieldError("FieldValueInvalid", path, "must be between 1 and 65535, inclusive", value)]
    return []


def _validate_pod_spec(spec: Any, path: str) -> list[_FieldError]:
    if not isinstance(spec, dict):
        return [_FieldError("FieldValueRequired", path)]
    errors: list[_FieldError] = []
    volumes = spec.get("volumes") or []
    volume_names = set()
    for i, volume in enumerate(volumes):
        vname = volume.get("name", "") if isinstance(volume, dict) else ""
        vpath = f"{path}.volumes[{i}].name"
        if not vname:
            errors.append(_FieldError("FieldValueRequired", vpath))
        else:
            errors += [_FieldError("FieldValueInvalid", vpath, m, vname) for m in _dns1123_label(vname)]
            if vname in volume_names:
                errors.append(_FieldError("FieldValueDuplicate", vpath, value=vname))
            volume_names.add(vname)
    containers = spec.get("containers")
    if not containers:
        errors.append(_FieldError("FieldValueRequired", f"{path}.containers"))
    names = set()
    for i, container in enumerate(containers or []):
        cpath = f"{path}.containers[{i}]"
        if not isinstance(container, dict):
            errors.append(_FieldError("FieldValueRequired", cpath))
            continue
        cname = container.get("name") or ""
        if not cname:
            errors.append(_FieldError("FieldValueRequired", f"{cpath}.name"))
        else:
            errors += [_FieldError("FieldValueInvalid", f"{cpath}.name", m, cname) for m in _dns1123_label(cname)]
            if cname in names:
                errors.append(_FieldError("FieldValueDuplicate", f"{cpath}.name", value=cname))
            names.add(cname)
        if not container.get("image"):
            errors.append(_FieldError("FieldValueRequired", f"{cpath}.image"))
        for j, port in enumerate(container.get("ports") or []):
            errors += _port_number_errors((port or {}).get("containerPort"), f"{cpath}.ports[{j}].containerPort")
        for j, mount in enumerate(container.get("volumeMounts") or []):
            mpath = f"{cpath}.volumeMounts[{j}]"
            if not mount.get("name"):
                errors.append(_FieldError("FieldValueRequired", f"{mpath}.name"))
            elif mount["name"] not in volume_names:
                errors.append(_FieldError("FieldValueNotFound", f"{mpath}.name", value=mount["name"]))
            if not mount.get("mountPath"):
                errors.append(_FieldError("FieldValueRequired", f"{mpath}.mountPath"))
            sub_path = mount.get("subPath") or ""
            if sub_path.startswith("/"):
                errors.append(_FieldError("FieldValueInvalid", f"{mpath}.subPath", "must be a relative path", sub_path))
            elif ".." in sub_path.split("/"):
                errors.append(_FieldError("FieldValueInvalid", f"{mpath}.subPath", "must not contain '..'", sub_path))
        for j, env in enumerate(container.get("env") or []):
            if not (env or {}).get("name"):
                errors.append(_FieldError("FieldValueRequired", f"{cpath}.env[{j}].name"))
    return errors


def _validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[_FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_FieldError("FieldValueRequired", "spec")]
    errors: list[_FieldError] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        errors.append(_FieldError("FieldValueInvalid", "spec.replicas", "must be greater than or equal to 0", replicas))
    selector = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict):
        errors.append(_FieldError("FieldValueRequired", "spec.selector"))
    elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
        detail = "empty selector is invalid for deployment"
        errors.append(_FieldError("FieldValueInvalid", "spec.selector", detail, selector))
    else:
        errors += _label_errors(selector.get("matchLabels") or {}, "spec.selector.matchLabels")
        if not _selector_matches(selector, labels):
            detail = "`selector` does not match template `labels`"
            errors.append(_FieldError("FieldValueInvalid", "spec.template.metadata.labels", detail, labels))
    errors += _label_errors(labels, "spec.template.metadata.labels")
    template_spec = template.get("spec")
    errors += _validate_pod_spec(template_spec, "spec.template.spec")
    if isinstance(template_spec, dict) and template_spec.get("restartPolicy", "Always") != "Always":
        errors.append(
            _FieldError(
                "FieldValueNotSupported",
                "spec.template.spec.restartPolicy",
                'supported values: "Always"',
                template_spec["restartPolicy"],
            )
        )
    strategy = spec.get("strategy") or {}
    if strategy.get("type") not in ("RollingUpdate", "Recreate"):
        detail = 'supported values: "Recreate", "RollingUpdate"'
        errors.append(_FieldError("FieldValueNotSupported", "spec.strategy.type", detail, strategy.get("type")))
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        errors.append(_FieldError("FieldValueInvalid", "spec.selector", "field is immutable", selector))
    return errors


def _validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> list[_FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_FieldError("FieldValueRequired", "spec")]
    errors: list[_FieldError] = []
    service_type = spec.get("type")
    types = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
    if service_type not in types:
        detail = "supported values: " + ", ".join(f'"{t}"' for t in types)
        errors.append(_FieldError("FieldValueNotSupported", "spec.type", detail, service_type))
    ports = spec.get("ports") or []
    if service_type == "ExternalName":
        if not spec.get("externalName"):
            errors.append(_FieldError("FieldValueRequired", "spec.externalName"))
    elif not ports and spec.get("clusterIP") != "None":
        errors.append(_FieldError("FieldValueRequired", "spec.ports"))
    seen = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            errors.append(_FieldError("FieldValueRequired", path))
            continue
        if len(ports) > 1 and not port.get("name"):
            errors.append(_FieldError("FieldValueRequired", f"{path}.name"))
        elif port.get("name"):
            errors += [
                _FieldError("FieldValueInvalid", f"{path}.name", m, port["name"]) for m in _dns1123_label(port["name"])
            ]
        errors += _port_number_errors(port.get("port"), f"{path}.port")
        protocol = port.get("protocol")
        if protocol not in ("TCP", "UDP", "SCTP"):
            detail = 'supported values: "SCTP", "TCP", "UDP"'
            errors.append(_FieldError("FieldValueNotSupported", f"{path}.protocol", detail, protocol))
        target = port.get("targetPort")
        if isinstance(target, str) and not target.isdigit():
            if len(target) > 15 or not _IANA_SVC_NAME.fullmatch(target) or not re.search("[a-z]", target):
                detail = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
                errors.append(_FieldError("FieldValueInvalid", f"{path}.targetPort", detail, target))
        elif target is not None:
            errors += _port_number_errors(int(target), f"{path}.targetPort")
        if (port.get("port"), protocol) in seen:
            errors.append(_FieldError("FieldValueDuplicate", path, value=port))
        seen.add((port.get("port"), protocol))
    errors += _label_errors(spec.get("selector") or {}, "spec.selector")
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") != old_ip and service_type != "ExternalName":
            errors.append(
                _FieldError(
                    "FieldValueInvalid",
                    "spec.clusterIPs[0]",
                    "may not change once set",
                    spec.get("clusterIPs") or [spec.get("clusterIP", "")],
                )
            )
    return errors


def _validate_data(kind: _Kind, obj: dict[str, Any], old: dict[str, Any] | None) -> list[_FieldError]:
    errors: list[_FieldError] = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    size = 0
    for field_name, values in (("data", data), ("binaryData", binary)):
        for key, value in values.items():
            errors += [
                _FieldError("FieldValueInvalid", f"{field_name}[{key}]", m, key)
                for m in ([] if _CONFIG_KEY.fullmatch(key) else [_CONFIG_KEY_MSG])
            ]
            if field_name == "binaryData" and key in data:
                errors.append(
                    _FieldError("FieldValueInvalid", f"binaryData[{key}]", "duplicate of key present in data", key)
                )
            size += len(key) + len(value)
    if kind.resource == "configmaps" and size > 1024 * 1024:
        errors.append(_FieldError("FieldValueTooLong", "", "must have at most 1048576 bytes"))
    if old is not None:
        if old.get("immutable"):
            immutable = "field is immutable when `immutable` is set"
            if data != (old.get("data") or {}) or binary != (old.get("binaryData") or {}):
                errors.append(_FieldError("FieldValueForbidden", "data", immutable))
            if not obj.get("immutable"):
                errors.append(_FieldError("FieldValueForbidden", "immutable", immutable))
        if kind.resource == "secrets" and obj.get("type") != old.get("type"):
            errors.append(_FieldError("FieldValueInvalid", "type", "field is immutable", obj.get("type")))
    return errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubernetes-standin"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def setup(self) -> None:
        super().setup()
        standin: KubernetesStandin = self.server.standin  # type: ignore[attr-defined]
        with standin._lock:
            standin._connections.add(self.connection)

    def finish(self) -> None:
        standin: KubernetesStandin = self.server.standin  # type: ignore[attr-defined]
        with standin._lock:
            standin._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: requests are recorded instead
        pass

    def _dispatch(self) -> None:
        standin: KubernetesStandin = self.server.standin  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            code, payload = standin._handle(
                self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), self.headers, body
            )
        except _ApiError as e:
            code, payload = e.code, e.body
        except Exception as e:  # a bug of the stand-in: answered as the apiserver answers its own
            traceback.print_exc(file=sys.stderr)
            error = _internal(f"{type(e).__name__}: {e}")
            code, payload = error.code, error.body
        if isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain"
        else:
            data, content_type = json.dumps(payload).encode() + b"\n", "application/json"
        # recorded before the answer leaves: a client that has its answer finds its request in the list
        standin.requests.append(Request(self.command, parts.path, code))
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


# ----------------------------------------------------------------------------------------- kubelet

_POD_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_LIVE_KUBELETS: weakref.WeakSet[Kubelet] = weakref.WeakSet()


@atexit.register
def _kill_leftover_pods() -> None:
    for kubelet in list(_LIVE_KUBELETS):
        kubelet._kill_all()


@dataclass(frozen=True)
class PodInfo:
    """What the kubelet knows of a Deployment's pod."""

    name: str
    deployment: str
    ip: str
    pid: int | None  # the pod's process group (bubblewrap leads it; the program is its child)
    ready: bool
    restart_count: int
    waiting_reason: str | None  # CreateContainerConfigError, ContainerCreating, CrashLoopBackOff, ...
    waiting_message: str | None
    log: Path


class _PodError(Exception):
    def __init__(self, reason: str, message: str, *, unschedulable: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.unschedulable = unschedulable


@dataclass(eq=False)
class _Pod:
    name: str
    deployment: str
    deployment_uid: str
    uid: str
    ip: str
    template: dict[str, Any]
    template_hash: str
    dir: Path
    log: Path
    created: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: str = ""
    started_mono: float = 0.0
    ever_started: bool = False
    restart_count: int = 0
    backoff: float = 0.0
    next_attempt: float = 0.0
    waiting: tuple[str, str] | None = None
    unschedulable: str | None = None
    last_terminated: dict[str, Any] | None = None
    ready: bool = False
    env: dict[str, str] = field(default_factory=dict)
    sandbox: list[str] = field(default_factory=list)
    projections: list[tuple[str, dict[str, Any], Path]] = field(default_factory=list)
    prober_stop: threading.Event = field(default_factory=threading.Event)
    prober: threading.Thread | None = None
    condition_times: dict[str, tuple[str, str]] = field(default_factory=dict)
    published: bool = False

    @property
    def container(self) -> dict[str, Any]:
        return ((self.template.get("spec") or {}).get("containers") or [{}])[0]


def _transition(times: dict[str, tuple[str, str]], kind: str, status: str) -> str:
    previous = times.get(kind)
    if previous is None or previous[0] != status:
        times[kind] = (status, _now())
    return times[kind][1]


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values, command and args ($$ escapes a $)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            if value[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if value[i + 1] == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2 : end]
                    out.append(env.get(name, value[i : end + 1]))
                    i = end + 1
                    continue
        out.append(value[i])
        i += 1
    return "".join(out)


def _bind_address(value: str, ip: str) -> str:
    """A literal 0.0.0.0 (alone, after '=', or before ':port') becomes the pod's IP."""
    if value == "0.0.0.0":
        return ip
    if value.endswith("=0.0.0.0"):
        return value[: -len("0.0.0.0")] + ip
    if value.startswith("0.0.0.0:"):
        return ip + value[len("0.0.0.0") :]
    return value


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The process's exit code if it has ended, without reaping it (its process group stays addressable)."""
    if proc.returncode is not None:
        return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return proc.poll() if proc.poll() is not None else 0
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else 128 + info.si_status


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _children(pid: int) -> list[int]:
    children = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def _wait_exit(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _exit_code(proc) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _signal_program(proc: subprocess.Popen[bytes], sig: int) -> None:
    """A signal to bubblewrap's child, the container's main process (or to bubblewrap before it has one)."""
    for pid in _children(proc.pid) or [proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: the program first, so that bubblewrap reaps it (nothing is left a zombie for PID 1 to reap),
    then whatever is left of the process group, and bubblewrap reaped."""
    if _exit_code(proc) is None:
        _signal_program(proc, signal.SIGKILL)
        _wait_exit(proc, 1.0)
    _killpg(proc.pid, signal.SIGKILL)  # the leader, if still running, and stragglers (the zombie leader holds the id)
    proc.wait()


def _stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the container's main process, SIGKILL after ``grace`` seconds, as the kubelet stops a container.

    The main process is bubblewrap's child: bubblewrap itself forwards no signal and, killed, would take the
    program down at once with SIGKILL (``--die-with-parent``), with no chance to shut down gracefully.
    """
    if _exit_code(proc) is None:
        _signal_program(proc, signal.SIGTERM)
        _wait_exit(proc, grace)
    _kill(proc)


def _project(folder: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write files into a volume folder the way the kubelet's AtomicWriter does: a timestamped directory, a
    ``..data`` symlink swapped to it atomically, and top-level symlinks through ``..data``."""
    folder.mkdir(parents=True, exist_ok=True)
    data_link = folder / "..data"
    if data_link.is_symlink():
        current = folder / os.readlink(data_link)
        existing = {
            str(p.relative_to(current)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in current.rglob("*")
            if p.is_file()
        }
        if existing == files:
            return
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + uuid.uuid4().hex[:9]
    target = folder / stamp
    target.mkdir()
    for relative, (data, mode) in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    tmp_link = folder / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(stamp)
    os.replace(tmp_link, data_link)
    tops = {relative.split("/", 1)[0] for relative in files}
    for top in tops:
        link = folder / top
        if not link.is_symlink():
            tmp = folder / f"..{top}_tmp"
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(f"..data/{top}")
            os.replace(tmp, link)
    for entry in folder.iterdir():
        if entry.name.startswith(".."):
            if entry.name != "..data" and entry.name != stamp and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_symlink() and entry.name not in tops:
            entry.unlink()


class _Forwarder:
    """kube-proxy for one service port: connections to clusterIP:port go on to podIP:targetPort."""

    def __init__(self, address: tuple[str, int], target: tuple[str, int]):
        self.address = address
        self.target = target
        self._stopped = threading.Event()
        self._socket = socket.create_server(address, reuse_port=False)
        self._socket.settimeout(0.2)
        threading.Thread(target=self._accept, name=f"kube-proxy {address}", daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        sockets = [client, upstream]
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stopped.set()
        self._socket.close()


class Kubelet:
    """Realises one namespace's Deployments as local processes, and reports them through the API.

    Every ~0.2 s it reconciles each Deployment of ``namespace``:

    - ``replicas`` != 0 (default 1): one pod, a process running container[0]'s ``command`` + ``args`` (with
      no ``command``, ``args`` is the whole argv: images' entrypoints are taken as empty), the program looked
      up on the pod's ``PATH``, ``$(VAR)`` references expanded, and a literal ``0.0.0.0`` argument (or
      ``...=0.0.0.0``, ``0.0.0.0:port``) replaced by the pod's IP, since all pods share this machine's
      network. A new pod starts when the Deployment is new, when its pod template changes (not on a
      change of ``replicas`` alone, as in Kubernetes), when the Service that gives it its IP comes or goes,
      or when its Pod is deleted through the API; the old one is stopped first (SIGTERM to the program,
      SIGKILL to the pod's process group after ``min(terminationGracePeriodSeconds, max_grace_seconds)``).
      Deleting the Deployment, or scaling it to 0, stops its pod.
    - Pod IP: the ``clusterIP`` of the first Service (by name) in the namespace whose ``selector`` is a
      subset of the pod template's labels and whose IP no other pod has, so ``clusterIP:port`` reaches the
      pod; otherwise the next address of the stand-in's ``pod_ip_range`` (127.0.2.N). Ports of selecting
      Services whose ``targetPort`` differs from ``port``, or whose IP is not the pod's, are forwarded (a
      small kube-proxy, TCP only).
    - Environment: PATH, HOME, LANG of this process, then ``extra_env``; then the service links of the
      namespace's services (``WEB_SERVICE_HOST``, ...), ``envFrom`` (``configMapRef``/``secretRef``,
      ``prefix``, ``optional``), then ``env`` (``value``; ``valueFrom`` ``secretKeyRef``,
      ``configMapKeyRef``, ``fieldRef``), which wins over ``envFrom`` as in Kubernetes; ``HOSTNAME`` is the
      pod's name (also its hostname, in its own UTS namespace). A missing ConfigMap, Secret or key that is
      not ``optional`` keeps the pod Pending with the container waiting in ``CreateContainerConfigError``,
      retried every second (creating the Secret then starts it).
    - Volumes, with bubblewrap: ``bwrap --dev-bind / / --die-with-parent`` plus a bind per volumeMount of
      container[0]: ``persistentVolumeClaim`` is ``pvc_dirs[claimName]`` (a missing claim keeps the pod
      Pending, unschedulable), ``configMap`` and ``secret`` are projected into ``workdir/<pod>/volumes/``
      as the kubelet's AtomicWriter does (a timestamped folder, a ``..data`` symlink swapped atomically,
      each key a symlink through it; mounted read-only) and re-projected every ``configmap_sync_seconds``,
      so a mount without ``subPath`` sees new data and one with ``subPath`` keeps the file it started with,
      as in Kubernetes; ``emptyDir`` is a folder of the pod; ``hostPath`` the path itself. ``subPath`` (and
      ``subPathExpr``) bind that part of the volume. A mountPath whose parent folders do not exist on this
      machine is made without touching the host: bubblewrap would ``mkdir`` the missing folders on the host
      itself (``/`` is bound writable), so the deepest existing ancestor is covered with a ``--tmpfs`` and
      its entries bound back into it (none, for an empty one such as this machine's ``/srv``, so
      ``/srv/dalgo/data`` costs only ``--tmpfs /srv``; when that ancestor is ``/``, bubblewrap's own empty
      root is used and each entry of ``/`` bound into it). ``/etc/hosts`` is replaced by one naming the
      pod (its hostname) and the services (``svc``, ``svc.ns``, ``svc.ns.svc``,
      ``svc.ns.svc.cluster.local``), kept current, in place of cluster DNS.
    - Readiness: ``readinessProbe`` ``tcpSocket``, ``httpGet`` or ``exec``, every second after
      ``initialDelaySeconds``, each attempt bounded by ``timeoutSeconds`` (default 1 s, as in Kubernetes),
      with ``successThreshold``/``failureThreshold``; no probe: ready once the process runs. An ``exec``
      probe runs in the same sandbox and environment as the pod; ``dagster api grpc-health-check`` without
      ``-h``/``--host`` gets ``--host <podIP>`` (its default is localhost, which in a real pod is the pod
      itself, here this machine), and ``localhost``/``127.0.0.1``/``0.0.0.0`` arguments of exec probes
      become the pod's IP for the same reason.
    - Status: the Deployment's ``status`` carries ``observedGeneration``, ``replicas``,
      ``updatedReplicas``, ``readyReplicas``/``availableReplicas`` (1 once ready) or
      ``unavailableReplicas``, and Available/Progressing conditions; as from a real apiserver a zero count
      is left out (the client reads None). The Pod object has the template's labels (and
      ``pod-template-hash``), ``status.podIP``, ``phase`` (Pending until the container first starts, then
      Running), Ready/ContainersReady conditions and a container status with its state.
    - A process that exits is restarted with a back-off of 1, 2, 4, 8, 10, 10 ... s (``restartPolicy:
      Always``); meanwhile, as in Kubernetes, the pod stays ``Running`` with the container waiting in
      ``CrashLoopBackOff``, its ``lastState.terminated`` giving the exit code, ``restartCount`` counting.
    - stdout and stderr go to ``workdir/<pod>.log`` (``logs(deployment)``, or the API's ``pods/log``).

    ``stop()`` (or leaving the ``with`` block) stops every pod and removes their Pod objects; an ``atexit``
    hook and bubblewrap's ``--die-with-parent`` make sure no pod outlives the test process.
    """

    def __init__(
        self,
        kube: KubernetesStandin,
        *,
        pvc_dirs: dict[str, Path],
        namespace: str,
        configmap_sync_seconds: float = 1.0,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        working_dir: Path | None = None,
        max_grace_seconds: float = 10.0,
    ):
        """``pvc_dirs``: each PersistentVolumeClaim's folder on this machine, by claim name. ``workdir``: where
        pods' logs, projected volumes, emptyDirs and /etc/hosts files go. ``extra_env``: added to every pod's
        base environment (PYTHONPATH, a PATH with the test's venv first, ...). ``working_dir``: the pods'
        current directory when the container has no ``workingDir`` (default: ``workdir``).
        ``max_grace_seconds``: the longest a pod is given between SIGTERM and SIGKILL."""
        self.kube = kube
        self.pvc_dirs = {name: Path(path) for name, path in pvc_dirs.items()}
        self.namespace = namespace
        self.configmap_sync_seconds = configmap_sync_seconds
        self.workdir = Path(workdir)
        self.extra_env = dict(extra_env or {})
        self.working_dir = Path(working_dir) if working_dir is not None else self.workdir
        self.max_grace_seconds = max_grace_seconds
        self._pods: dict[str, _Pod] = {}
        self._last_logs: dict[str, Path] = {}
        self._deployment_conditions: dict[str, dict[str, tuple[str, str]]] = {}
        self._forwarders: dict[tuple[str, int], _Forwarder] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sync = 0.0
        self._bwrap = shutil.which("bwrap")
        self.errors: list[str] = []  # tracebacks of reconcile passes that failed (a stand-in bug)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Kubelet:
        if self._bwrap is None:
            raise RuntimeError("the Kubelet stand-in needs bubblewrap (bwrap) on PATH")
        if self._thread is not None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        _LIVE_KUBELETS.add(self)
        # Pods are started from this thread and die with it (bwrap --die-with-parent): it lives until stop().
        self._thread = threading.Thread(target=self._run, name=f"kubelet {self.namespace}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join()
        _LIVE_KUBELETS.discard(self)

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- for tests

    def pod(self, deployment: str) -> PodInfo | None:
        """The Deployment's current pod, or None."""
        with self._lock:
            pod = self._pods.get(deployment)
            if pod is None:
                return None
            waiting = pod.waiting if pod.proc is None else None
            if pod.proc is None and pod.unschedulable:
                waiting = ("Unschedulable", pod.unschedulable)
            return PodInfo(
                name=pod.name,
                deployment=deployment,
                ip=pod.ip,
                pid=pod.proc.pid if pod.proc is not None else None,
                ready=pod.ready,
                restart_count=pod.restart_count,
                waiting_reason=waiting[0] if waiting else None,
                waiting_message=waiting[1] if waiting else None,
                log=pod.log,
            )

    def logs(self, deployment: str) -> str:
        """stdout and stderr of the Deployment's current (or last) pod."""
        with self._lock:
            path = self._pods[deployment].log if deployment in self._pods else self._last_logs.get(deployment)
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    def wait_ready(self, deployment: str, timeout: float = 20.0) -> PodInfo:
        """Wait until the Deployment's pod is ready; TimeoutError with its state and log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.pod(deployment)
            if info is not None and info.ready:
                return info
            time.sleep(0.05)
        raise TimeoutError(f"{deployment} not ready after {timeout}s: {self.pod(deployment)}\n{self.logs(deployment)}")

    # ---------------------------------------------------------------- the loop

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._reconcile()
                except Exception:
                    self.errors.append(traceback.format_exc())
                    traceback.print_exc(file=sys.stderr)
                self._stopping.wait(0.2)
        finally:
            for name in list(self._pods):
                self._remove_pod(name)
            for forwarder in self._forwarders.values():
                forwarder.close()
            self._forwarders.clear()

    def _kill_all(self) -> None:
        """At interpreter exit: SIGKILL to every pod's process group."""
        for pod in list(self._pods.values()):
            if pod.proc is not None:
                _killpg(pod.proc.pid, signal.SIGKILL)

    def _reconcile(self) -> None:
        ns = self.namespace
        deployments = {d["metadata"]["name"]: d for d in self.kube.list_objects("deployments", ns)}
        services = self.kube.list_objects("services", ns)
        sync = time.monotonic() >= self._next_sync
        if sync:
            self._next_sync = time.monotonic() + self.configmap_sync_seconds
        for name in list(self._pods):
            if name not in deployments:
                self._remove_pod(name)
        for name in list(self._deployment_conditions):
            if name not in deployments:
                del self._deployment_conditions[name]
        for name, deployment in deployments.items():
            self._reconcile_deployment(name, deployment, services, sync)
        self._reconcile_forwarders(deployments, services)
        all_services = self.kube.list_objects("services")
        for pod in list(self._pods.values()):
            self._write_hosts(pod, all_services)

    def _service_ip(self, labels: dict[str, str], services: list[dict[str, Any]], deployment: str) -> str | None:
        taken = {pod.ip for name, pod in self._pods.items() if name != deployment}
        for service in services:
            spec = service.get("spec") or {}
            selector, ip = spec.get("selector") or {}, spec.get("clusterIP")
            if not selector or not ip or ip == "None" or ip in taken or spec.get("type") == "ExternalName":
                continue
            if all(labels.get(k) == v for k, v in selector.items()):
                return ip
        return None

    def _reconcile_deployment(
        self, name: str, deployment: dict[str, Any], services: list[dict[str, Any]], sync: bool
    ) -> None:
        spec = deployment.get("spec") or {}
        generation = deployment["metadata"].get("generation", 1)
        replicas = spec.get("replicas", 1)
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        pod = self._pods.get(name)
        if replicas == 0:
            if pod is not None:
                self._remove_pod(name)
            self._publish_deployment(name, generation, None)
            return
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        service_ip = self._service_ip(labels, services, name)
        if pod is not None:
            behind_service = ipaddress.ip_address(pod.ip) in self.kube.cluster_ip_range
            if (
                pod.deployment_uid != deployment["metadata"]["uid"]
                or pod.template_hash != template_hash
                or (service_ip is not None and pod.ip != service_ip)
                or (service_ip is None and behind_service)
                or (pod.published and self.kube.get_object("pods", self.namespace, pod.name) is None)
            ):
                self._remove_pod(name)
                pod = None
        if pod is None:
            pod_name = f"{name}-{''.join(random.choices(_POD_SUFFIX_ALPHABET, k=5))}"
            pod = _Pod(
                name=pod_name,
                deployment=name,
                deployment_uid=deployment["metadata"]["uid"],
                uid=str(uuid.uuid4()),
                ip=service_ip or self.kube._allocate_pod_ip(),
                template=copy.deepcopy(template),
                template_hash=template_hash,
                dir=self.workdir / pod_name,
                log=self.workdir / f"{pod_name}.log",
                created=_now(),
            )
            with self._lock:
                self._pods[name] = pod
                self._last_logs[name] = pod.log
            self.kube._pod_logs[(self.namespace, pod.name)] = pod.log
        if pod.proc is not None:
            code = _exit_code(pod.proc)
            if code is not None:
                self._container_ended(pod, code)
            elif sync:
                self._refresh_projections(pod)
        if pod.proc is None and time.monotonic() >= pod.next_attempt:
            self._start_container(pod, services)
        self._publish_pod(pod)
        self._publish_deployment(name, generation, pod)

    # ---------------------------------------------------------------- containers

    def _container_ended(self, pod: _Pod, code: int) -> None:
        proc = pod.proc
        assert proc is not None
        pod.prober_stop.set()
        _kill(proc)  # what is left of the container goes with its main process
        finished = _now()
        ran = time.monotonic() - pod.started_mono
        with self._lock:
            pod.proc = None
            pod.ready = False
            pod.restart_count += 1
            pod.last_terminated = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": pod.started_at,
                "finishedAt": finished,
                "containerID": f"standin://{proc.pid}",
            }
            self._back_off(pod, ran)

    def _back_off(self, pod: _Pod, ran: float) -> None:
        if ran > 600:
            pod.backoff = 0.0
        pod.backoff = 1.0 if pod.backoff == 0 else min(pod.backoff * 2, 10.0)
        pod.next_attempt = time.monotonic() + pod.backoff
        container = pod.container.get("name", "")
        message = (
            f"back-off {pod.backoff:g}s restarting failed container={container} "
            f"pod={pod.name}_{self.namespace}({pod.uid})"
        )
        pod.waiting = ("CrashLoopBackOff", message)

    def _start_container(self, pod: _Pod, services: list[dict[str, Any]]) -> None:
        container = pod.container
        try:
            env = self._container_env(pod, container, services)
            mounts = self._mounts(pod, container, env)
        except _PodError as e:
            with self._lock:
                if e.unschedulable:
                    pod.unschedulable, pod.waiting = e.message, None
                else:
                    pod.unschedulable, pod.waiting = None, (e.reason, e.message)
                pod.next_attempt = time.monotonic() + 1.0
            return
        pod.unschedulable = None
        argv = [_expand(a, env) for a in (container.get("command") or []) + (container.get("args") or [])]
        argv = [_bind_address(a, pod.ip) for a in argv]
        if not argv:
            with self._lock:
                pod.waiting = ("CreateContainerError", "failed to generate container spec: no command specified")
                pod.next_attempt = time.monotonic() + 1.0
            return
        program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", ""))
        if program is None:
            self._start_failed(pod, f'exec: "{argv[0]}": executable file not found in $PATH')
            return
        pod.dir.mkdir(parents=True, exist_ok=True)
        self._write_hosts(pod, self.kube.list_objects("services"))
        sandbox = self._sandbox(pod, mounts, container.get("workingDir"))
        with open(pod.log, "ab") as log:
            try:
                proc = subprocess.Popen(
                    [self._bwrap or "bwrap", *sandbox, "--", program, *argv[1:]],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as e:
                self._start_failed(pod, str(e))
                return
        with self._lock:
            pod.proc = proc
            pod.env = env
            pod.sandbox = sandbox
            pod.started_at = _now()
            pod.started_mono = time.monotonic()
            pod.ever_started = True
            pod.waiting = None
            pod.ready = False
            pod.prober_stop = threading.Event()
        probe = container.get("readinessProbe")
        if not probe:
            pod.ready = True
        else:
            pod.prober = threading.Thread(
                target=self._probe_loop, args=(pod, probe, pod.prober_stop), name=f"prober {pod.name}", daemon=True
            )
            pod.prober.start()

    def _start_failed(self, pod: _Pod, message: str) -> None:
        with self._lock:
            pod.restart_count += 1
            pod.last_terminated = {
                "exitCode": 128,
                "reason": "StartError",
                "message": f"failed to create containerd task: failed to create shim task: {message}: unknown",
                "startedAt": "1970-01-01T00:00:00Z",
                "finishedAt": _now(),
            }
            self._back_off(pod, 0)

    def _remove_pod(self, deployment: str) -> None:
        pod = self._pods.get(deployment)
        if pod is None:
            return
        pod.prober_stop.set()
        if pod.proc is not None:
            grace = (pod.template.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            _stop_process(pod.proc, min(float(grace), self.max_grace_seconds))
        with self._lock:
            pod.proc = None
            pod.ready = False
            del self._pods[deployment]
        if pod.prober is not None:
            pod.prober.join(5)
        self.kube._system_delete("pods", self.namespace, pod.name)
        shutil.rmtree(pod.dir, ignore_errors=True)

    # ---------------------------------------------------------------- environment

    def _lookup(self, resource: str, name: str) -> dict[str, Any] | None:
        return self.kube.get_object(resource, self.namespace, name)

    def _source_data(self, resource: str, name: str, optional: bool) -> dict[str, str] | None:
        obj = self._lookup(resource, name)
        if obj is None:
            if optional:
                return None
            singular = "configmap" if resource == "configmaps" else "secret"
            raise _PodError("CreateContainerConfigError", f'{singular} "{name}" not found')
        if resource == "secrets":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data = dict(obj.get("data") or {})
        for key, value in (obj.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value).decode(errors="replace")
        return data

    def _container_env(self, pod: _Pod, container: dict[str, Any], services: list[dict[str, Any]]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        env.update(self.extra_env)
        if (pod.template.get("spec") or {}).get("enableServiceLinks", True):
            env.update(_service_links(services))
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for key, resource in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
                ref = source.get(key)
                if ref:
                    data = self._source_data(resource, ref.get("name", ""), bool(ref.get("optional")))
                    for name, value in (data or {}).items():
                        if re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", prefix + name):
                            env[prefix + name] = value
        for item in container.get("env") or []:
            name = item["name"]
            source = item.get("valueFrom")
            if not source:
                env[name] = _bind_address(_expand(item.get("value", ""), env), pod.ip)
                continue
            value = self._env_value(pod, source)
            if value is not None:
                env[name] = value
        env["HOSTNAME"] = pod.name
        return env

    def _env_value(self, pod: _Pod, source: dict[str, Any]) -> str | None:
        for key, resource, kind in (
            ("secretKeyRef", "secrets", "Secret"),
            ("configMapKeyRef", "configmaps", "ConfigMap"),
        ):
            ref = source.get(key)
            if ref:
                optional = bool(ref.get("optional"))
                data = self._source_data(resource, ref.get("name", ""), optional)
                if data is None:
                    return None
                if ref.get("key") not in data:
                    if optional:
                        return None
                    message = f"couldn't find key {ref.get('key')} in {kind} {self.namespace}/{ref.get('name')}"
                    raise _PodError("CreateContainerConfigError", message)
                return data[ref["key"]]
        field_ref = source.get("fieldRef")
        if field_ref:
            path = field_ref.get("fieldPath", "")
            labels = (pod.template.get("metadata") or {}).get("labels") or {}
            annotations = (pod.template.get("metadata") or {}).get("annotations") or {}
            values = {
                "metadata.name": pod.name,
                "metadata.namespace": self.namespace,
                "metadata.uid": pod.uid,
                "spec.nodeName": "standin",
                "spec.serviceAccountName": (pod.template.get("spec") or {}).get("serviceAccountName", "default"),
                "status.podIP": pod.ip,
                "status.podIPs": pod.ip,
                "status.hostIP": "127.0.0.1",
                "status.hostIPs": "127.0.0.1",
            }
            if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
                return (labels if m.group(1) == "labels" else annotations).get(m.group(2), "")
            if path in values:
                return values[path]
            raise _PodError("CreateContainerConfigError", f"unsupported fieldPath: {path}")
        if source.get("resourceFieldRef"):
            return "0"
        return None

    # ---------------------------------------------------------------- volumes

    def _mounts(self, pod: _Pod, container: dict[str, Any], env: dict[str, str]) -> list[tuple[str, Path, bool]]:
        volumes = {v["name"]: v for v in (pod.template.get("spec") or {}).get("volumes") or []}
        mounts: list[tuple[str, Path, bool]] = []
        projections: list[tuple[str, dict[str, Any], Path]] = []
        prepared: dict[str, tuple[Path, bool]] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if mount["name"] not in prepared:
                prepared[mount["name"]] = self._volume_source(pod, volume, projections)
            source, read_only = prepared[mount["name"]]
            sub_path = mount.get("subPath") or _expand(mount.get("subPathExpr") or "", env)
            if sub_path:
                path = source / sub_path
                if not os.path.lexists(path):
                    if "configMap" in volume or "secret" in volume:
                        message = (
                            f'failed to prepare subPath for volumeMount "{mount["name"]}" '
                            f'of container "{container.get("name")}"'
                        )
                        raise _PodError("CreateContainerConfigError", message)
                    path.mkdir(parents=True, exist_ok=True)
                source = path.resolve()
            mounts.append((os.path.normpath(mount["mountPath"]), source, read_only or bool(mount.get("readOnly"))))
        pod.projections = projections
        return mounts

    def _volume_source(
        self, pod: _Pod, volume: dict[str, Any], projections: list[tuple[str, dict[str, Any], Path]]
    ) -> tuple[Path, bool]:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"].get("claimName", "")
            if claim not in self.pvc_dirs:
                message = f'0/1 nodes are available: persistentvolumeclaim "{claim}" not found.'
                raise _PodError("Unschedulable", message, unschedulable=True)
            return self.pvc_dirs[claim], bool(volume["persistentVolumeClaim"].get("readOnly"))
        folder = pod.dir / "volumes" / name
        if "configMap" in volume or "secret" in volume:
            source_kind = "configMap" if "configMap" in volume else "secret"
            projections.append((source_kind, volume, folder))
            self._project_volume(source_kind, volume, folder, strict=True)
            return folder, True
        if "emptyDir" in volume:
            folder.mkdir(parents=True, exist_ok=True)
            return folder, False
        if "hostPath" in volume:
            path = Path(volume["hostPath"].get("path", ""))
            kind = volume["hostPath"].get("type", "")
            if not path.exists():
                if kind == "DirectoryOrCreate":
                    path.mkdir(parents=True)
                elif kind == "FileOrCreate":
                    path.touch()
                else:
                    raise _PodError(
                        "ContainerCreating",
                        f'MountVolume.SetUp failed for volume "{name}" : hostPath {path} does not exist',
                    )
            return path, False
        raise _PodError(
            "ContainerCreating", f'volume "{name}": this volume type is not supported by the Kubernetes stand-in'
        )

    def _project_volume(self, source_kind: str, volume: dict[str, Any], folder: Path, *, strict: bool) -> None:
        spec = volume[source_kind]
        resource, singular = ("configmaps", "configmap") if source_kind == "configMap" else ("secrets", "secret")
        ref = spec.get("name") if source_kind == "configMap" else spec.get("secretName")
        obj = self._lookup(resource, ref or "")
        if obj is None:
            if spec.get("optional"):
                _project(folder, {})
                return
            if not strict:
                return  # the kubelet keeps the last content when the source goes away
            raise _PodError(
                "ContainerCreating",
                f'MountVolume.SetUp failed for volume "{volume["name"]}" : {singular} "{ref}" not found',
            )
        data: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            data[key] = base64.b64decode(value) if resource == "secrets" else value.encode()
        for key, value in (obj.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value)
        mode = spec.get("defaultMode", 420)
        files: dict[str, tuple[bytes, int]] = {}
        if spec.get("items"):
            for item in spec["items"]:
                if item.get("key") not in data:
                    if spec.get("optional") or not strict:
                        continue
                    message = (
                        f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
                        f"{source_kind.lower()} references non-existent config key: {item.get('key')}"
                    )
                    raise _PodError("ContainerCreating", message)
                files[os.path.normpath(item["path"])] = (data[item["key"]], item.get("mode", mode))
        else:
            files = {key: (value, mode) for key, value in data.items()}
        _project(folder, files)

    def _refresh_projections(self, pod: _Pod) -> None:
        for source_kind, volume, folder in pod.projections:
            with contextlib.suppress(_PodError):
                self._project_volume(source_kind, volume, folder, strict=False)

    def _sandbox(self, pod: _Pod, mounts: list[tuple[str, Path, bool]], working_dir: str | None) -> list[str]:
        """bubblewrap's arguments: the host's root, the volumes bound in, the pod's /etc/hosts and hostname."""
        shadows = set()
        for destination, _, _ in mounts:
            path = Path(destination)
            if os.path.lexists(path):
                continue
            ancestor = path.parent
            while not os.path.lexists(ancestor):
                ancestor = ancestor.parent
            shadows.add(ancestor)
        args = [] if Path("/") in shadows else ["--dev-bind", "/", "/"]
        args += ["--die-with-parent", "--unshare-uts", "--hostname", pod.name[:63]]
        for shadow in sorted(shadows, key=lambda p: len(p.parts)):
            if shadow != Path("/"):
                args += ["--perms", f"{shadow.stat().st_mode & 0o7777:o}", "--tmpfs", str(shadow)]
            for entry in sorted(os.listdir(shadow)):
                path = shadow / entry
                if path.is_symlink():
                    args += ["--symlink", os.readlink(path), str(path)]
                else:
                    args += ["--dev-bind", str(path), str(path)]
        for destination, source, read_only in sorted(mounts, key=lambda m: len(Path(m[0]).parts)):
            args += ["--ro-bind" if read_only else "--bind", str(source), destination]
        if os.path.exists("/etc/hosts"):
            args += ["--ro-bind", str(pod.dir / "hosts"), "/etc/hosts"]
        args += ["--chdir", working_dir or str(self.working_dir)]
        return args

    def _write_hosts(self, pod: _Pod, services: list[dict[str, Any]]) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", f"{pod.ip}\t{pod.name}"]
        for service in services:
            ip = (service.get("spec") or {}).get("clusterIP")
            if not ip or ip == "None":
                continue
            name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
            names = [name] if ns == self.namespace else []
            names += [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]
            lines.append(f"{ip}\t{' '.join(names)}")
        content = "\n".join(lines) + "\n"
        path = pod.dir / "hosts"
        if not pod.dir.exists():
            return
        if path.exists() and path.read_text() == content:
            return
        # written in place: the pod's /etc/hosts is a bind of this very file
        with open(path, "r+" if path.exists() else "w") as f:
            f.write(content)
            f.truncate()

    # ---------------------------------------------------------------- probes

    def _probe_loop(self, pod: _Pod, probe: dict[str, Any], stop: threading.Event) -> None:
        if stop.wait(float(probe.get("initialDelaySeconds", 0))):
            return
        successes = failures = 0
        while not stop.is_set():
            ok = self._probe_once(pod, probe, float(probe.get("timeoutSeconds", 1)))
            if stop.is_set():
                return
            with self._lock:
                if ok:
                    successes, failures = successes + 1, 0
                    if successes >= int(probe.get("successThreshold", 1)):
                        pod.ready = True
                else:
                    successes, failures = 0, failures + 1
                    if failures >= int(probe.get("failureThreshold", 3)):
                        pod.ready = False
            stop.wait(1.0)

    def _probe_port(self, pod: _Pod, port: Any) -> int | None:
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        for declared in pod.container.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        return None

    def _probe_once(self, pod: _Pod, probe: dict[str, Any], timeout: float) -> bool:
        if "tcpSocket" in probe:
            port = self._probe_port(pod, probe["tcpSocket"].get("port"))
            if port is None:
                return False
            try:
                with socket.create_connection((probe["tcpSocket"].get("host") or pod.ip, port), timeout=timeout):
                    return True
            except OSError:
                return False
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = self._probe_port(pod, get.get("port"))
            if port is None:
                return False
            connection = http.client.HTTPConnection(get.get("host") or pod.ip, port, timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                connection.request("GET", get.get("path", "/"), headers=headers)
                return 200 <= connection.getresponse().status < 400
            except OSError:
                return False
            finally:
                connection.close()
        if "exec" in probe:
            argv = [_expand(a, pod.env) for a in probe["exec"].get("command") or []]
            argv = [pod.ip if a in ("localhost", "127.0.0.1") else _bind_address(a, pod.ip) for a in argv]
            if "grpc-health-check" in argv and not any(a in ("-h", "--host") or a.startswith("--host=") for a in argv):
                argv += ["--host", pod.ip]
            if not argv:
                return False
            program = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=pod.env.get("PATH", ""))
            if program is None:
                return False
            try:
                proc = subprocess.Popen(
                    [self._bwrap or "bwrap", *pod.sandbox, "--", program, *argv[1:]],
                    env=pod.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError:
                return False
            try:
                return proc.wait(timeout) == 0
            except subprocess.TimeoutExpired:
                _kill(proc)
                return False
        return False

    # ---------------------------------------------------------------- kube-proxy

    def _reconcile_forwarders(self, deployments: dict[str, dict[str, Any]], services: list[dict[str, Any]]) -> None:
        wanted: dict[tuple[str, int], tuple[str, int]] = {}
        for service in services:
            spec = service.get("spec") or {}
            ip, selector = spec.get("clusterIP"), spec.get("selector") or {}
            if not ip or ip == "None" or not selector:
                continue
            for name, pod in self._pods.items():
                labels = (pod.template.get("metadata") or {}).get("labels") or {}
                if name not in deployments or not all(labels.get(k) == v for k, v in selector.items()):
                    continue
                for port in spec.get("ports") or []:
                    if port.get("protocol", "TCP") != "TCP":
                        continue
                    target = self._probe_port(pod, port.get("targetPort", port.get("port")))
                    if target is None or (pod.ip == ip and target == port.get("port")):
                        continue
                    wanted[(ip, int(port["port"]))] = (pod.ip, target)
                break
        for address in list(self._forwarders):
            if address not in wanted or self._forwarders[address].target != wanted[address]:
                self._forwarders.pop(address).close()
        for address, target in wanted.items():
            if address not in self._forwarders:
                # the address may be busy (the pod itself listens there): tried again next pass
                with contextlib.suppress(OSError):
                    self._forwarders[address] = _Forwarder(address, target)

    # ---------------------------------------------------------------- status

    def _publish_pod(self, pod: _Pod) -> None:
        labels = dict((pod.template.get("metadata") or {}).get("labels") or {})
        labels["pod-template-hash"] = pod.template_hash
        metadata: dict[str, Any] = {
            "name": pod.name,
            "generateName": f"{pod.deployment}-",
            "namespace": self.namespace,
            "uid": pod.uid,
            "labels": labels,
        }
        annotations = (pod.template.get("metadata") or {}).get("annotations")
        if annotations:
            metadata["annotations"] = dict(annotations)
        spec = copy.deepcopy(pod.template.get("spec") or {})
        spec["nodeName"] = "standin"
        container = pod.container
        with self._lock:
            running = pod.proc is not None
            ready = running and pod.ready
            if running:
                state: dict[str, Any] = {"running": {"startedAt": pod.started_at}}
            elif pod.waiting is not None:
                state = {"waiting": {"reason": pod.waiting[0], "message": pod.waiting[1]}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            container_status: dict[str, Any] = {
                "name": container.get("name", ""),
                "image": container.get("image", ""),
                "imageID": "",
                "ready": ready,
                "restartCount": pod.restart_count,
                "started": running,
                "state": state,
                "lastState": {"terminated": dict(pod.last_terminated)} if pod.last_terminated else {},
            }
            if running and pod.proc is not None:
                container_status["containerID"] = f"standin://{pod.proc.pid}"
            times = pod.condition_times
            scheduled = "False" if pod.unschedulable else "True"
            conditions = [
                {"type": "PodReadyToStartContainers", "status": "True" if pod.ever_started else "False"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True" if ready else "False"},
                {"type": "ContainersReady", "status": "True" if ready else "False"},
                {"type": "PodScheduled", "status": scheduled},
            ]
            for condition in conditions:
                condition["lastProbeTime"] = None
                condition["lastTransitionTime"] = _transition(times, condition["type"], condition["status"])
                if condition["type"] in ("Ready", "ContainersReady") and not ready:
                    condition["reason"] = "ContainersNotReady"
                    condition["message"] = f"containers with unready status: [{container.get('name', '')}]"
                if condition["type"] == "PodScheduled" and pod.unschedulable:
                    condition["reason"], condition["message"] = "Unschedulable", pod.unschedulable
            status: dict[str, Any] = {
                "phase": "Running" if pod.ever_started else "Pending",
                "conditions": conditions,
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "startTime": pod.created,
                "qosClass": "BestEffort",
            }
            if not pod.unschedulable:
                status["podIP"] = pod.ip
                status["podIPs"] = [{"ip": pod.ip}]
                status["containerStatuses"] = [container_status]
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}
        if self.kube._system_write("pods", self.namespace, obj, create=not pod.published):
            pod.published = True

    def _publish_deployment(self, name: str, generation: int, pod: _Pod | None) -> None:
        status: dict[str, Any] = {"observedGeneration": generation}
        times = self._deployment_conditions.setdefault(name, {})
        if pod is not None:
            ready = pod.proc is not None and pod.ready
            status |= {"replicas": 1, "updatedReplicas": 1}
            if ready:
                status |= {"readyReplicas": 1, "availableReplicas": 1}
            else:
                status["unavailableReplicas"] = 1
            replica_set = f"{name}-{pod.template_hash}"
            available = {
                "type": "Available",
                "status": "True" if ready else "False",
                "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if ready
                else "Deployment does not have minimum availability.",
            }
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated",
                "message": f'ReplicaSet "{replica_set}" has successfully progressed.'
                if ready
                else f'ReplicaSet "{replica_set}" is progressing.',
            }
            for condition in (available, progressing):
                changed_at = _transition(times, condition["type"], condition["status"])
                updated_at = _transition(times, condition["type"] + "/reason", condition["reason"])
                condition["lastUpdateTime"] = updated_at
                condition["lastTransitionTime"] = changed_at
            status["conditions"] = [available, progressing]
        self.kube._system_set_status("deployments", self.namespace, name, status)


def _service_links(services: list[dict[str, Any]]) -> dict[str, str]:
    """The docker-links-style variables Kubernetes gives pods for the services of their namespace."""
    env: dict[str, str] = {}
    for service in services:
        spec = service.get("spec") or {}
        ip, ports = spec.get("clusterIP"), spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
        first = ports[0]
        protocol = first.get("protocol", "TCP").lower()
        env[f"{prefix}_PORT"] = f"{protocol}://{ip}:{first['port']}"
        for port in ports:
            protocol = port.get("protocol", "TCP")
            base = f"{prefix}_PORT_{port['port']}_{protocol}"
            env[base] = f"{protocol.lower()}://{ip}:{port['port']}"
            env[f"{base}_PROTO"] = protocol.lower()
            env[f"{base}_PORT"] = str(port["port"])
            env[f"{base}_ADDR"] = ip
    return env
