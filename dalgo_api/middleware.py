"""The request guard: input no endpoint can use is refused before any view (or the database) sees it.

- a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413 (Django would raise ``RequestDataTooBig``);
- a ``Host`` header that is not one of ``ALLOWED_HOSTS`` (or not a host name at all): 400;
- a NUL byte in the path, the query string, a header or the body (raw, ``%00`` in the query, ``\\u0000`` in
  JSON): 400 naming where, down to the parameter or JSON field (``query.cursor``, ``body.source.version``):
  PostgreSQL cannot store NUL in text, and no name, slug or value needs one.

Bodies are checked for the methods that carry one here (POST, PUT, PATCH); the answers are in the API's
error format. Under ``/api/``, Django's own answers are given in that format too:

- an unknown path (Django's HTML 404): 404;
- a method the endpoint does not take (django-ninja's HTML 405): 405 naming the methods it takes, in
  ``Allow`` too;
- a path without the trailing slash its endpoint has, requested with a method other than GET or HEAD:
  308 to the path with the slash, which clients follow with the same method and body. Django's
  ``APPEND_SLASH`` answers 301, which clients follow with a GET: ``POST /api/runs`` would have become
  ``GET /api/runs/``, a 200 listing runs while nothing was launched (and a 500 with ``DALGO_API_DEBUG``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.middleware.common import CommonMiddleware

from dalgo_api.errors import error_body, json_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# ``\\u0000`` preceded by an even number of backslashes: a JSON escape of NUL, not an escaped backslash
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _shown(name: object) -> str:
    return str(name).replace("\x00", "\\u0000")


def _nul_in(data: Any) -> str:
    """The dotted path (``body.a.0.b``) of the first string or key in decoded JSON holding a NUL."""
    stack: list[tuple[str, Any]] = [("body", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return where
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in reversed(list(items)):
            if "\x00" in str(key):
                return f"{where}.{_shown(key)}"
            stack.append((f"{where}.{_shown(key)}", item))
    return "body"


def _nul_in_body(body: bytes) -> str:
    try:
        return _nul_in(json.loads(body, strict=False))  # strict=False: a raw control character in a string
    except (ValueError, RecursionError):
        return "body"


def _nul_in_query(query: str) -> str:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return f"query.{_shown(key)}"
    return "query"


def _nul(where: str) -> HttpResponse:
    return json_error(
        400,
        f"{where}: NUL bytes are not allowed",
        [{"field": where, "message": "contains a NUL byte"}],
    )


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # what Django itself assumes: no body


def _too_large(size: int | None = None) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    got = f" ({size} bytes)" if size else ""
    return json_error(413, f"request body too large{got}: at most {limit} bytes")


def refusal(request: HttpRequest) -> HttpResponse | None:
    """The 400/413 answer for a request no endpoint may see, else ``None``."""
    try:
        request.get_host()
    except DisallowedHost:  # Django would answer its HTML error page (and log it as an error)
        return json_error(
            400,
            "Host: not a host name this API answers to (DALGO_API_ALLOWED_HOSTS)",
            [{"field": "header.host", "message": "not an allowed host"}],
        )
    if "\x00" in request.path_info:
        return _nul("path")
    query = request.META.get("QUERY_STRING", "")
    if "\x00" in query or "%00" in query:
        return _nul(_nul_in_query(query))
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return _nul("header " + key.removeprefix("HTTP_").replace("_", "-").lower())
    if request.method not in BODY_METHODS:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    size = _content_length(request)
    if limit is not None and size > limit:
        return _too_large(size)
    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large()
    if b"\x00" in body or _JSON_NUL.search(body):
        return _nul(_nul_in_body(body))
    return None


# Django's own rule for a path missing its trailing slash (APPEND_SLASH, the URLconf); only its answer differs
_APPEND_SLASH = CommonMiddleware(lambda request: HttpResponse())


def _moved(request: HttpRequest) -> HttpResponse | None:
    """308 to the path with its trailing slash, for a request that would lose its method and body in
    Django's 301; else ``None``."""
    if request.method in ("GET", "HEAD") or not _APPEND_SLASH.should_redirect_with_slash(request):
        return None
    query = request.META.get("QUERY_STRING", "")
    location = f"{request.path}/" + (f"?{query}" if query else "")
    detail = f"moved: {request.method} {location} (this endpoint's path ends with a slash)"
    body = json.dumps(error_body(detail))
    return HttpResponsePermanentRedirect(location, preserve_request=True, content=body, content_type="application/json")


def _in_error_format(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Django's own HTML 404 and 405 under ``/api/``, in the API's error format."""
    if response.status_code not in (404, 405) or response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code == 404:
        return json_error(404, f"not found: no endpoint at {request.path_info}")
    allowed = ", ".join(sorted(m.strip() for m in response.get("Allow", "").split(",") if m.strip()))
    refused = json_error(405, f"method not allowed: {request.method} {request.path_info} takes {allowed}")
    refused["Allow"] = allowed
    return refused


class RequestGuardMiddleware:
    """``refusal`` (and under ``/api/`` ``_moved``) before the view; Django's own HTML errors under
    ``/api/`` answered in the API's error format."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        if not request.path_info.startswith("/api/"):
            return self.get_response(request)
        moved = _moved(request)
        if moved is not None:
            return moved
        return _in_error_format(request, self.get_response(request))
