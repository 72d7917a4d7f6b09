"""Token authentication and per-endpoint permissions.

Every operation passes one of these as its ninja ``auth``:

- ``authenticated``: any valid token (login-level endpoints such as logout or the current user);
  ``optional_caller(request)`` reads one where a token is optional;
- ``has_permission([...])``: a valid token, the organization named by the ``x-dalgo-org`` header (or by
  the path's ``{slug}`` for ``/organizations/{slug}``), and every listed permission slug in the caller's
  role there. Platform-level operations (``org=False``) check the slugs without an organization: only
  Super Admins (``is_superuser``) hold permissions outside one.

Failures raise ``ApiError`` (401 bad/expired token, 404 unknown organization or not a member - never
revealing that it exists, 403 missing permission), mapped to JSON in ``dalgo_api.api``. Running the check
as the operation's auth means a denied caller learns nothing about the body's validation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from ninja.security import HttpBearer

from dalgo_api.accounts.models import AccessGeneration, ApiToken, Permission, Role, User, hash_token
from dalgo_api.accounts.roles import load_matrix
from dalgo_api.errors import ApiError

if TYPE_CHECKING:
    from dalgo_api.orgs.models import Org

ORG_HEADER = "x-dalgo-org"


@dataclass
class RequestContext:
    """Who is calling, in which organization, with which role and permissions (``request.auth``)."""

    user: User
    token: ApiToken
    org: Org | None = None
    role: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    obj: Any = None  # the object named by the path, found by the operation's ``lookup``


clock: Callable[[], float] = time.monotonic  # the remembered callers' ages (a test passes time with it)
AUTH_TTL_SECONDS = 60.0  # the bound for a change made without Django's signals (an operator's SQL)
AUTH_CACHE_MAX = 10_000
CHANGES_POLL_SECONDS = 1.0
# (token hash, organization slug, what was checked: "token", "org" or "platform") -> (expiry, caller)
_auth_cache: dict[tuple[str, str | None, str], tuple[float, RequestContext]] = {}
# role slug -> (expiry, its permission slugs)
_permissions_cache: dict[str, tuple[float, frozenset[str]]] = {}
# the access generation what this process remembers was read at, and when to look at it again
_followed: dict[str, Any] = {"generation": None, "next_look": 0.0}


def role_permissions(role: str) -> frozenset[str]:
    """A role's permission slugs, from the tables the migration (or ``seed_roles``) loaded from
    ``roles.csv``. Kept per process (a query less per request) like the remembered callers: forgotten
    when a role or its permissions change, in every process that reads them (the API's, the alert
    dispatcher's) at its next look at the access generation, at most ``AUTH_TTL_SECONDS``."""
    now = clock()
    _follow_changes(now)
    cached = _permissions_cache.get(role)
    if cached is None or cached[0] <= now:
        slugs = frozenset(Permission.objects.filter(roles__slug=role).values_list("slug", flat=True))
        cached = _permissions_cache[role] = (now + AUTH_TTL_SECONDS, slugs)
    return cached[1]


def forget_authentications(sender: Any = None, created: bool = False, **_: object) -> None:
    """Connected to every change of a token, user, membership, organization or role: forget this
    process's remembered callers at once, and count the change in the access generation (when the
    change commits) so every other API process forgets its own within ``CHANGES_POLL_SECONDS``. A new
    token or user needs neither: no remembered caller was checked against it (so a login forgets
    nothing)."""
    if created and sender in (ApiToken, User):
        return
    _forget_here()
    transaction.on_commit(_count_change)


def _forget_here() -> None:
    _auth_cache.clear()
    _membership_cache.clear()
    _permissions_cache.clear()


def _count_change() -> None:
    if not AccessGeneration.objects.filter(pk=1).update(value=F("value") + 1):
        AccessGeneration.objects.get_or_create(pk=1)


def _follow_changes(now: float) -> None:
    """Forget the remembered callers, memberships and role permissions if the access generation moved
    since they were read (one query per ``CHANGES_POLL_SECONDS`` in this process)."""
    if now < _followed["next_look"]:
        return
    _followed["next_look"] = now + CHANGES_POLL_SECONDS
    generation = AccessGeneration.objects.filter(pk=1).values_list("value", flat=True).first()
    if generation != _followed["generation"]:
        _forget_here()
        _followed["generation"] = generation


def _remembered(key: tuple[str, str | None, str], find: Callable[[], RequestContext]) -> RequestContext:
    """The caller ``find()`` returns, remembered under ``key`` in this process until a change of what it
    was checked against (``forget_authentications``), at most ``AUTH_TTL_SECONDS``: a client polling
    runs, logs or its own user then costs no token and membership queries. A refusal (``find`` raises)
    is never remembered; each request gets a context of its own (``obj`` is per request)."""
    now = clock()
    _follow_changes(now)
    hit = _auth_cache.get(key)
    if hit is not None and hit[0] > now and not hit[1].token.expired:
        return dataclasses.replace(hit[1])
    ctx = find()
    if len(_auth_cache) >= AUTH_CACHE_MAX:
        _auth_cache.clear()
    _auth_cache[key] = (now + AUTH_TTL_SECONDS, ctx)
    return dataclasses.replace(ctx)


def _token_caller(token: str) -> RequestContext:
    row = next(iter(ApiToken.objects.select_related("user").filter(key_hash=hash_token(token))[:1]), None)
    if row is None or not row.user.is_active:
        raise ApiError(401, "invalid token: log in again")
    if row.expired:
        row.delete()
        raise ApiError(401, "token expired: log in again")
    return RequestContext(user=row.user, token=row)


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``; tokens are looked up by their sha256 and must not be expired."""

    permissions: tuple[str, ...] = ()

    def authenticate(self, request: HttpRequest, token: str) -> RequestContext:
        return _remembered((hash_token(token), None, "token"), lambda: _token_caller(token))

    def __call__(self, request: HttpRequest) -> RequestContext | None:
        # HttpBearer returns None without a header (ninja then answers a bare 401): say why instead.
        if not request.headers.get("Authorization", "").lower().startswith("bearer "):
            raise ApiError(401, "missing 'Authorization: Bearer <token>' header")
        return super().__call__(request)


Lookup = Callable[[RequestContext, dict[str, Any]], Any]


class PermissionAuth(TokenAuth):
    """A valid token plus the operation's permission slugs, in its organization (see ``has_permission``)."""

    def __init__(
        self,
        permissions: list[str],
        *,
        org: bool = True,
        org_path_param: str | None = None,
        lookup: Lookup | None = None,
    ):
        super().__init__()
        unknown = set(permissions) - set().union(*load_matrix().values())
        if unknown:
            raise ValueError(f"has_permission: unknown permission slug(s) {sorted(unknown)}")
        self.permissions = tuple(permissions)
        self.org_scoped = org
        self.org_path_param = org_path_param
        self.lookup = lookup

    def authenticate(self, request: HttpRequest, token: str) -> RequestContext:
        ctx = self._caller(request, token)
        if self.lookup is not None:
            # Before the permission check: an object outside the caller's organization is 404 for
            # everyone, so 403 only ever speaks of objects the caller's organization owns.
            match = request.resolver_match
            ctx.obj = self.lookup(ctx, dict(match.kwargs) if match else {})
        missing = [p for p in self.permissions if p not in ctx.permissions]
        if missing:
            if ctx.org is not None:
                held = f"your role in organization '{ctx.org.slug}' is {ctx.role}"
            else:
                held = "this platform-level operation is for Super Admins"
            raise ApiError(403, f"permission denied: {', '.join(missing)} required; {held}")
        return ctx

    def _caller(self, request: HttpRequest, token: str) -> RequestContext:
        """The caller, its organization, role and permissions, remembered per (token, organization)."""
        slug = self._org_slug(request) if self.org_scoped else None

        def find() -> RequestContext:
            ctx = TokenAuth.authenticate(self, request, token)
            if self.org_scoped:
                _enter_org(ctx, slug)
            elif ctx.user.is_superuser:
                ctx.role, ctx.permissions = Role.SUPER_ADMIN, role_permissions(Role.SUPER_ADMIN)
            return ctx

        return _remembered((hash_token(token), slug, "org" if self.org_scoped else "platform"), find)

    def _org_slug(self, request: HttpRequest) -> str | None:
        if self.org_path_param:
            match = request.resolver_match
            return match.kwargs.get(self.org_path_param) if match else None
        return request.headers.get(ORG_HEADER)


# user id -> (expiry, {organization slug: (the organization's row, role slug)})
_membership_cache: dict[int, tuple[float, dict[str, tuple[tuple[Any, ...], str]]]] = {}


def _membership(user: User, slug: str) -> tuple[Org, str] | None:
    """The organization named ``slug`` and the user's role there, if a member. The user's memberships
    are read in one query (rows, no objects: a member of a hundred organizations costs one row each) and
    remembered with the callers: a member switching among many organizations costs one membership query,
    not one per organization."""
    from dalgo_api.orgs.models import Org, OrgUser

    fields = [f.attname for f in Org._meta.concrete_fields]
    now = clock()
    _follow_changes(now)
    hit = _membership_cache.get(user.pk)
    if hit is None or hit[0] <= now:
        rows = OrgUser.objects.filter(user=user).values_list("org__slug", "role__slug", *(f"org__{f}" for f in fields))
        found = {slug: (values, role) for slug, role, *values in rows}
        if len(_membership_cache) >= AUTH_CACHE_MAX:
            _membership_cache.clear()
        hit = _membership_cache[user.pk] = (now + AUTH_TTL_SECONDS, found)
    member = hit[1].get(slug)
    if member is None:
        return None
    values, role = member
    return Org.from_db(Org.objects.db, fields, values), role


def _enter_org(ctx: RequestContext, slug: str | None) -> None:
    """Set the organization and the role the membership (or Super Admin status) gives there."""
    from dalgo_api.orgs.models import Org, OrgUser

    if not slug:
        memberships = list(OrgUser.objects.filter(user=ctx.user).select_related("org", "role")[:2])
        if len(memberships) != 1 or ctx.user.is_superuser:
            raise ApiError(400, f"name the organization with the '{ORG_HEADER}' header")
        ctx.org, ctx.role = memberships[0].org, memberships[0].role.slug
    elif ctx.user.is_superuser:
        ctx.org = Org.objects.filter(slug=slug).first()
        ctx.role = Role.SUPER_ADMIN
    else:
        ctx.org, ctx.role = _membership(ctx.user, slug) or (None, None)
    if ctx.org is None:
        raise ApiError(404, f"organization '{slug}' not found")
    ctx.permissions = role_permissions(ctx.role)


authenticated = TokenAuth()


def optional_caller(request: HttpRequest) -> RequestContext | None:
    """For an operation open to everyone that needs to know a logged-in caller (accepting an invitation
    as an existing user): ``None`` without an ``Authorization`` header, the caller for a valid token,
    401 for any other header."""
    if "Authorization" not in request.headers:
        return None
    return authenticated(request)


def has_permission(
    permissions: list[str],
    *,
    org: bool = True,
    org_path_param: str | None = None,
    lookup: Lookup | None = None,
) -> PermissionAuth:
    """The auth of an endpoint that needs these permission slugs (see the module docstring);
    ``lookup(ctx, path_params)`` finds the path's object in the caller's organization (or raises 404)
    and leaves it in ``request.auth.obj``."""
    return PermissionAuth(permissions, org=org, org_path_param=org_path_param, lookup=lookup)
