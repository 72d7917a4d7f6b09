"""Writing the audit log. The middleware opens a scope around each request that may change something;
services add what only they know (``note``: the target, the state before and after) and the entry is
written when the answer is a success. Outside a request (a management command) noting does nothing,
unless the change is the platform's own or a task's (``outside_request``: the alert dispatcher adding
the streams a source gained, an approval done by the task worker)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse

from dalgo_api.audit.masking import mask
from dalgo_api.audit.models import AuditEntry
from dalgo_api.orgs.models import Org
from dalgo_core.spec import OrgSpec

MAX_BODY_CHARS = 20_000
SYSTEM_ACTOR = "dalgo (the platform)"  # the actor of the changes the platform makes by itself
DONE = 200  # the status of a change made outside a request


@dataclass
class Scope:
    target: str = ""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    org: Org | None = None  # when the request's own context has none (an organization created)
    actor: Any = None  # when the request has no caller (an invitation accepted, a password reset)


_scope: ContextVar[Scope | None] = ContextVar("dalgo_audit_scope", default=None)


@contextlib.contextmanager
def scope() -> Iterator[Scope]:
    current = Scope()
    token = _scope.set(current)
    try:
        yield current
    finally:
        _scope.reset(token)


def note(
    *,
    target: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    org: Org | None = None,
    actor: Any = None,
) -> None:
    """Add to the current request's entry (nothing outside a request)."""
    current = _scope.get()
    if current is None:
        return
    if target is not None:
        current.target = target
    current.before.update(before or {})
    current.after.update(after or {})
    if org is not None:
        current.org = org
    if actor is not None:
        current.actor = actor


@contextlib.contextmanager
def outside_request(org: Org, action: str, target: str, actor: Any = None) -> Iterator[Scope]:
    """One entry for the change made inside the block, outside any request: by the platform itself
    (``actor`` None, shown as ``SYSTEM_ACTOR``) or for a user by a task. Nothing is written if it raises."""
    with scope() as current:
        yield current
        AuditEntry.objects.create(
            org=org,
            org_slug=org.slug,
            actor=actor,
            actor_email=actor.email if actor is not None else SYSTEM_ACTOR,
            action=action[:160],
            target=(current.target or target)[:300],
            status=DONE,
            before=mask(current.before) or None,
            after=mask(current.after) or None,
        )


def spec_changed(before: OrgSpec, after: OrgSpec) -> None:
    """Note the sections of an organization's spec that a change touched, as they were and are."""
    old = before.model_dump(mode="json", by_alias=True, exclude_none=True)
    new = after.model_dump(mode="json", by_alias=True, exclude_none=True)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    note(before={k: old.get(k) for k in changed}, after={k: new.get(k) for k in changed})


def _body(request: HttpRequest) -> Any:
    try:
        raw = request.body
    except Exception:  # a body already streamed elsewhere: nothing to keep
        return None
    if not raw:
        return None
    if len(raw) > MAX_BODY_CHARS:
        return {"note": f"a body of {len(raw)} bytes, not kept"}
    try:
        return mask(json.loads(raw))
    except ValueError:
        return {"note": "not JSON"}


def _target(request: HttpRequest) -> str:
    match = request.resolver_match
    params = dict(match.kwargs) if match else {}
    return ", ".join(f"{k}={v}" for k, v in params.items())[:300]


def action(request: HttpRequest) -> str:
    """``METHOD /api/path`` with the path's parameters as ``{name}`` (as ROLES.md lists operations)."""
    match = request.resolver_match
    route = match.route if match else request.path
    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).lstrip("/")
    return f"{request.method} {path}"[:160]


def record(request: HttpRequest, response: HttpResponse, current: Scope) -> AuditEntry:
    ctx = getattr(request, "auth", None)
    org = current.org or getattr(ctx, "org", None)
    user = getattr(ctx, "user", None) or current.actor
    slug = org.slug if org is not None else ""
    if org is not None and not Org.objects.filter(pk=org.pk).exists():  # deleted by this very request
        org = None
    return AuditEntry.objects.create(
        org=org,
        org_slug=slug,
        actor=user,
        actor_email=user.email if user is not None else "",
        action=action(request),
        target=current.target or _target(request),
        status=response.status_code,
        before=mask(current.before) or None,
        after=mask(current.after) or None,
        request=_body(request),
    )
