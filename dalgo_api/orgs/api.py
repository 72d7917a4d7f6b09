"""Organizations, feature flags and the warehouse (``/api/organizations/...``), members (``/api/users/``)
and invitations (``/api/invitations/``). Every operation declares its permission slugs in its ``auth``."""

from __future__ import annotations

import logging

import pydantic
from django.db.models import F
from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from dalgo_api import bridge
from dalgo_api.accounts.auth import RequestContext, authenticated, has_permission, optional_caller
from dalgo_api.accounts.models import Role, User, storable_pk
from dalgo_api.audit import services as audit
from dalgo_api.common_responses import errors
from dalgo_api.errors import ApiError, not_found
from dalgo_api.orgs import services
from dalgo_api.orgs import warehouse as wh
from dalgo_api.orgs.flags import UnknownFlag, flags_for, set_flag
from dalgo_api.orgs.models import Invitation, Org, OrgUser
from dalgo_api.orgs.schemas import (
    AcceptInvitationIn,
    ConnectionTestOut,
    FlagIn,
    InvitationIn,
    InvitationOut,
    MemberOut,
    OrgIn,
    OrgOut,
    OrgRenameIn,
    RoleIn,
    WarehouseIn,
    WarehouseOut,
    warehouse_data,
)
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import change_spec
from dalgo_core.names import location_name
from dalgo_core.spec import DuckDBWarehouse, OrgSpec, Warehouse

logger = logging.getLogger(__name__)

organizations = Router(tags=["organizations"])
users = Router(tags=["users"])
invitations = Router(tags=["invitations"])


# the warehouse's output uses the spec's field names ("schema") and leaves out other types' fields
WAREHOUSE_OUT = {"response": WarehouseOut, "by_alias": True, "exclude_none": True}


def _org_out(org: Org, role: str | None) -> dict:
    return {"slug": org.slug, "name": org.name, "role": role}


# --- organizations ---------------------------------------------------------------------------------


@organizations.get("/", response=list[OrgOut], auth=authenticated)
def list_orgs(request: HttpRequest) -> list[dict]:
    """The caller's organizations (every organization for a Super Admin)."""
    user = request.auth.user
    if user.is_superuser:
        return [_org_out(o, Role.SUPER_ADMIN) for o in Org.objects.all()]
    members = OrgUser.objects.filter(user=user).select_related("org", "role").order_by("org__name")
    return [_org_out(m.org, m.role.slug) for m in members]


@organizations.post("/", response={201: OrgOut}, auth=has_permission(["can_create_org"], org=False))
def create_org(request: HttpRequest, payload: OrgIn) -> tuple[int, dict]:
    """Create an organization: its spec (DuckDB warehouse) and its Dagster code location. With
    ``account_manager_email``, that user becomes its Account Manager (or is invited as one)."""
    org = services.create_org(payload.name)
    audit.note(org=org, target=f"organization {org.slug}", after={"name": org.name, "slug": org.slug})
    if payload.account_manager_email:
        manager = Role.objects.get(slug=Role.ACCOUNT_MANAGER)
        user = User.objects.filter(email=payload.account_manager_email).first()
        if user is not None:
            services.add_member(org, user, manager)
        else:
            services.invite(org, payload.account_manager_email, manager, request.auth.user)
    return 201, _org_out(org, request.auth.role)


@organizations.get("/flags", response=dict[str, bool], auth=has_permission(["can_view_flags"]))
def get_flags(request: HttpRequest) -> dict[str, bool]:
    """Every feature flag's value for the organization (its own value wins over the global one)."""
    return flags_for(request.auth.org)


@organizations.put("/flags/{flag_name}", response=dict[str, bool], auth=has_permission(["can_manage_flags"]))
def put_flag(request: HttpRequest, flag_name: str, payload: FlagIn) -> dict[str, bool]:
    """Set a flag for the organization (global values: ``manage.py manage_feature_flags``)."""
    before = flags_for(request.auth.org)
    try:
        set_flag(flag_name, payload.enabled, request.auth.org)
    except UnknownFlag as exc:
        raise ApiError(404, str(exc)) from None
    audit.note(before={flag_name: before.get(flag_name)}, after={flag_name: payload.enabled})
    return flags_for(request.auth.org)


# --- warehouse -------------------------------------------------------------------------------------


@organizations.get("/warehouse", **WAREHOUSE_OUT, auth=has_permission(["can_view_warehouse"]))
def get_warehouse(request: HttpRequest) -> dict:
    """The organization's warehouse settings; secrets are never returned, only ``secret_set``."""
    return wh.public_view(specs.load_spec(request.auth.org.slug).warehouse)


def _candidate(request: HttpRequest, payload: WarehouseIn):
    """(spec with the new warehouse, its secret, the input data) - nothing written yet."""
    slug = request.auth.org.slug
    spec = specs.load_spec(slug)
    data = warehouse_data(payload)
    try:
        secret = wh.resolve_secret(slug, data, spec.warehouse)
    except wh.WarehouseInputError as exc:
        field = str(exc).split(":", 1)[0]
        raise ApiError(400, str(exc), [{"field": f"body.{field}", "message": "required"}]) from None
    except LookupError:
        raise ApiError(400, "the stored secret cannot be read: send it again") from None
    try:
        spec.warehouse = wh.to_spec_warehouse(data, secret is not None)
    except pydantic.ValidationError as exc:  # a rule of the spec the input schema does not repeat
        errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        raise ApiError(
            400, "invalid warehouse: " + "; ".join(e["field"] + ": " + e["message"] for e in errors), errors
        ) from None
    return spec, secret, data


def _apply_warehouse(slug: str, warehouse: Warehouse) -> OrgSpec:
    """The new warehouse in the spec, the dbt profile rewritten and the location reloaded at once, so
    dbt, the loaders and data statistics all use it from now on (undone if Dagster refuses it)."""
    return change_spec(slug, lambda spec: setattr(spec, "warehouse", warehouse), prepare=True, dagster_required=False)


@organizations.put("/warehouse", **WAREHOUSE_OUT, auth=has_permission(["can_edit_warehouse"]))
def put_warehouse(request: HttpRequest, payload: WarehouseIn) -> dict:
    """Set the warehouse (DuckDB, PostgreSQL or BigQuery). The secret goes to the secrets backend,
    encrypted; the spec references it. Omit the secret to keep the stored one."""
    spec, secret, data = _candidate(request, payload)
    with wh.secrets_restored_on_failure(spec.slug):
        wh.store_secret(spec.slug, data, secret)
        _apply_warehouse(spec.slug, spec.warehouse)
    logger.info("organization %s: warehouse set to %s", spec.slug, spec.warehouse.type)
    return wh.public_view(spec.warehouse)


@organizations.post("/warehouse/test", response=ConnectionTestOut, auth=has_permission(["can_edit_warehouse"]))
def test_warehouse(request: HttpRequest, payload: WarehouseIn) -> dict:
    """Connect to a warehouse with these settings (and the stored secret if none is given) without
    saving anything; ``ok`` false carries the driver's message."""
    spec, secret, _ = _candidate(request, payload)
    ok, message = wh.test_connection(spec, secret)
    return {"ok": ok, "message": message}


@organizations.delete("/warehouse", **WAREHOUSE_OUT, auth=has_permission(["can_delete_warehouses"]))
def delete_warehouse(request: HttpRequest) -> dict:
    """Forget the warehouse and its secrets; the organization falls back to its default DuckDB file
    (a spec always has a warehouse)."""
    slug = request.auth.org.slug
    with wh.secrets_restored_on_failure(slug):
        wh.store_secret(slug, {"type": "duckdb"}, None)
        spec = _apply_warehouse(slug, DuckDBWarehouse())
    return wh.public_view(spec.warehouse)


class ReloadOut(Schema):
    location: str
    live: bool = Field(description="The organization's code location loaded its spec and dbt manifests")


@organizations.post(
    "/reload", response={200: ReloadOut, **errors(409, 422, 503)}, auth=has_permission(["can_edit_pipeline"])
)
def reload_organization(request: HttpRequest) -> dict:
    """Reload the organization's code location now (after a change made outside the API, for example a
    dbt project folder edited by an operator): 422 with the loader's message if it does not load."""
    slug = request.auth.org.slug
    bridge.reload_location(slug)
    return {"location": location_name(slug), "live": True}


# --- one organization by slug (after the fixed sub-paths above) ------------------------------------


@organizations.get("/{slug}", response=OrgOut, auth=has_permission(["can_view_org"], org_path_param="slug"))
def get_org(request: HttpRequest, slug: str) -> dict:
    return _org_out(request.auth.org, request.auth.role)


@organizations.put("/{slug}", response=OrgOut, auth=has_permission(["can_edit_org"], org_path_param="slug"))
def rename_org(request: HttpRequest, slug: str, payload: OrgRenameIn) -> dict:
    """Rename (the slug, hence the code location, stays)."""
    audit.note(before={"name": request.auth.org.name}, after={"name": payload.name})
    return _org_out(services.rename_org(request.auth.org, payload.name), request.auth.role)


@organizations.delete("/{slug}", response={204: None}, auth=has_permission(["can_delete_org"], org_path_param="slug"))
def delete_org(request: HttpRequest, slug: str) -> tuple[int, None]:
    """Delete the organization, its memberships, its spec, secrets and code location."""
    audit.note(before={"name": request.auth.org.name, "slug": slug})
    services.delete_org(request.auth.org)
    return 204, None


# --- members ---------------------------------------------------------------------------------------


def _member_out(m: OrgUser) -> dict:
    return {
        "user_id": m.user_id,
        "email": m.user.email,
        "first_name": m.user.first_name,
        "last_name": m.user.last_name,
        "role": m.role.slug,
        "joined_at": m.created_at,
    }


def _member(ctx: RequestContext, params: dict) -> OrgUser:
    members = OrgUser.objects.filter(org=ctx.org, user_id=params["user_id"]).select_related("user", "role")
    member = members.first() if storable_pk(params["user_id"]) else None
    if member is None:
        raise not_found("user", params["user_id"])
    return member


@users.get("/", response=list[MemberOut], auth=has_permission(["can_view_orgusers"]))
def list_members(request: HttpRequest) -> list[dict]:
    """The organization's users with their roles."""
    # the answer's columns alone, as rows: no user or role objects built (a frontend polls this list)
    rows = (
        OrgUser.objects.filter(org=request.auth.org)
        .order_by("user__email")
        .values(
            "user_id",
            email=F("user__email"),
            first_name=F("user__first_name"),
            last_name=F("user__last_name"),
            role_slug=F("role__slug"),
            joined_at=F("created_at"),
        )
    )
    return [{"role": row.pop("role_slug"), **row} for row in rows]


@users.get("/{int:user_id}", response=MemberOut, auth=has_permission(["can_view_orgusers"], lookup=_member))
def get_member(request: HttpRequest, user_id: int) -> dict:
    return _member_out(request.auth.obj)


@users.put(
    "/{int:user_id}",
    response={200: MemberOut, **errors(409)},
    auth=has_permission(["can_edit_orguser_role"], lookup=_member),
)
def change_member_role(request: HttpRequest, user_id: int, payload: RoleIn) -> dict:
    """Change a member's role (409 if it would leave the organization without an Account Manager)."""
    member = request.auth.obj
    audit.note(target=f"user {member.user.email}", before={"role": member.role.slug}, after={"role": payload.role})
    return _member_out(services.change_role(member, services.get_role(payload.role)))


@users.delete(
    "/{int:user_id}",
    response={204: None, **errors(409)},
    auth=has_permission(["can_delete_orguser"], lookup=_member),
)
def remove_member(request: HttpRequest, user_id: int) -> tuple[int, None]:
    """Remove a member from the organization (the account stays; 409 for the last Account Manager)."""
    member = request.auth.obj
    audit.note(target=f"user {member.user.email}", before={"email": member.user.email, "role": member.role.slug})
    services.remove_member(member)
    return 204, None


# --- invitations -----------------------------------------------------------------------------------


def _invitation_out(inv: Invitation) -> dict:
    return {
        "id": inv.pk,
        "email": inv.email,
        "role": inv.role.slug,
        "invited_by": inv.invited_by.email if inv.invited_by else None,
        "sent_at": inv.sent_at,
    }


def _invitation(ctx: RequestContext, params: dict) -> Invitation:
    invs = Invitation.objects.filter(org=ctx.org, pk=params["invitation_id"])
    invs = invs.select_related("role", "invited_by", "org")
    inv = invs.first() if storable_pk(params["invitation_id"]) else None
    if inv is None:
        raise not_found("invitation", params["invitation_id"])
    return inv


@invitations.get("/", response=list[InvitationOut], auth=has_permission(["can_view_invitations"]))
def list_invitations(request: HttpRequest) -> list[dict]:
    invs = Invitation.objects.filter(org=request.auth.org).select_related("role", "invited_by")
    return [_invitation_out(i) for i in invs.order_by("email")]


@invitations.post("/", response={201: InvitationOut, **errors(409)}, auth=has_permission(["can_create_invitation"]))
def create_invitation(request: HttpRequest, payload: InvitationIn) -> tuple[int, dict]:
    """Invite an email with a role; the invitation link is emailed."""
    role = services.get_role(payload.role)
    audit.note(target=f"invitation {payload.email}", after={"email": payload.email, "role": role.slug})
    return 201, _invitation_out(services.invite(request.auth.org, payload.email, role, request.auth.user))


@invitations.post(
    "/{int:invitation_id}/resend",
    response=InvitationOut,
    auth=has_permission(["can_edit_invitation"], lookup=_invitation),
)
def resend_invitation(request: HttpRequest, invitation_id: int) -> dict:
    """Email the invitation again with a new link (the old link stops working)."""
    return _invitation_out(services.resend(request.auth.obj))


@invitations.delete(
    "/{int:invitation_id}",
    response={204: None},
    auth=has_permission(["can_delete_invitation"], lookup=_invitation),
)
def delete_invitation(request: HttpRequest, invitation_id: int) -> tuple[int, None]:
    inv = request.auth.obj
    audit.note(target=f"invitation {inv.email}", before={"email": inv.email, "role": inv.role.slug})
    inv.delete()
    return 204, None


@invitations.post(
    "/accept/",
    response={200: OrgOut, **errors(401, 403, 409)},
    auth=None,
    # open to everyone; an existing user's invitation needs that user's token
    openapi_extra={"security": [{}, {"TokenAuth": []}]},
)
def accept_invitation(request: HttpRequest, payload: AcceptInvitationIn) -> dict:
    """Join with the emailed ``invite_code``. A new email sets its password here; an email that already
    has an account accepts logged in as that user (``Authorization: Bearer <token>``: 401 without it,
    403 as anyone else)."""
    caller = optional_caller(request)
    password = payload.password.get_secret_value() if payload.password else None
    member = services.accept(
        payload.invite_code,
        password,
        payload.first_name,
        payload.last_name,
        caller=caller.user if caller else None,
    )
    audit.note(org=member.org, actor=member.user, target=f"user {member.user.email}", after={"role": member.role.slug})
    return _org_out(member.org, member.role.slug)
