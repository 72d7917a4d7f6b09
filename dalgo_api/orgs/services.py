"""What the organization endpoints and management commands do: create and delete organizations (with
their specs), manage memberships and invitations, keeping at least one Account Manager per organization."""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dalgo_api import bridge, mail
from dalgo_api.accounts.models import Role, User
from dalgo_api.accounts.roles import ASSIGNABLE_ROLES, ROLE_SLUGS
from dalgo_api.errors import ApiError
from dalgo_api.orgs.models import Invitation, Org, OrgUser, RetiredSlug
from dalgo_api.specs import store as specs
from dalgo_core import layout
from dalgo_core.spec import SpecError, list_org_slugs, load_org_spec

logger = logging.getLogger(__name__)

# sub-paths of /api/organizations/, and the names of the platform's own folders and processes
RESERVED_SLUGS = {"flags", "warehouse", *layout.RESERVED_SLUGS}


def taken_slugs() -> set[str]:
    """Slugs no new organization may get: in use, reserved, or once used by a deleted organization."""
    return (
        set(Org.objects.values_list("slug", flat=True))
        | set(RetiredSlug.objects.values_list("slug", flat=True))
        | RESERVED_SLUGS
    )


def get_role(slug: str, *, assignable: bool = True) -> Role:
    """A role by slug; 400 naming the known roles otherwise."""
    allowed = ASSIGNABLE_ROLES if assignable else ROLE_SLUGS
    if slug not in allowed:
        extra = " (super-admin is platform staff: createorganduser --role super-admin)" if assignable else ""
        raise ApiError(
            400,
            f"role: unknown role '{slug}'; use one of {', '.join(allowed)}{extra}",
            [{"field": "role", "message": f"unknown role '{slug}'"}],
        )
    return Role.objects.get(slug=slug)


# --- organizations ---------------------------------------------------------------------------------


def create_org(name: str, slug: str | None = None) -> Org:
    """Create the organization row and its spec (DuckDB warehouse), and add it to the Dagster workspace."""
    taken = taken_slugs()
    if slug is None:
        slug = specs.slugify_name(name, taken)
    elif slug in taken:
        raise ApiError(409, f"the slug '{slug}' is taken, reserved or was used by a deleted organization")
    with transaction.atomic():
        org = Org.objects.create(name=name, slug=slug)
        specs.create_org_spec(slug, name)
    bridge.add_location(slug, specs.code_server_port(slug))
    logger.info("created organization %s", slug)
    return org


def adopt_orgs() -> list[Org]:
    """Give a database row to every organization folder that has none (the organizations shipped in the
    folder, or one an operator wrote by hand), named as its spec says (its slug if the spec is broken:
    its location shows why). A retired or reserved slug is never adopted: it is logged instead."""
    known = set(Org.objects.values_list("slug", flat=True))
    refused = set(RetiredSlug.objects.values_list("slug", flat=True)) | RESERVED_SLUGS
    adopted = []
    for slug in list_org_slugs():
        if slug in known:
            continue
        if slug in refused:
            logger.warning("organization folder '%s' not adopted: the slug is reserved or was retired", slug)
            continue
        try:
            name = load_org_spec(slug).name
        except SpecError:
            name = slug
        adopted.append(Org.objects.create(name=name, slug=slug))
        logger.info("adopted organization %s from its folder", slug)
    return adopted


def rename_org(org: Org, name: str) -> Org:
    with transaction.atomic():
        org.name = name
        org.save(update_fields=["name"])
        specs.update_org_spec(org.slug, name=name)
    return org


def delete_org(org: Org) -> None:
    slug = org.slug
    with transaction.atomic():
        org.delete()
        RetiredSlug.objects.get_or_create(slug=slug)
        specs.delete_org_spec(slug)
    bridge.remove_location(slug)
    logger.info("deleted organization %s", slug)


# --- memberships -----------------------------------------------------------------------------------


def add_member(org: Org, user: User, role: Role) -> OrgUser:
    member, created = OrgUser.objects.get_or_create(user=user, org=org, defaults={"role": role})
    if not created and member.role_id != role.id:
        change_role(member, role)
    return member


def _keeps_an_account_manager(member: OrgUser) -> None:
    """409 if ``member`` is the organization's last Account Manager (it must always have one)."""
    if member.role.slug != Role.ACCOUNT_MANAGER:
        return
    others = (
        OrgUser.objects.select_for_update()
        .filter(org=member.org, role__slug=Role.ACCOUNT_MANAGER)
        .exclude(pk=member.pk)
    )
    if not others.exists():
        raise ApiError(
            409,
            f"{member.user.email} is the last Account Manager of '{member.org.slug}': "
            "make someone else Account Manager first",
        )


def change_role(member: OrgUser, role: Role) -> OrgUser:
    with transaction.atomic():
        if role.slug != Role.ACCOUNT_MANAGER:
            _keeps_an_account_manager(member)
        member.role = role
        member.save(update_fields=["role"])
    return member


def remove_member(member: OrgUser) -> None:
    with transaction.atomic():
        _keeps_an_account_manager(member)
        member.delete()


# --- invitations -----------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _send_invitation(invitation: Invitation) -> None:
    """Give the invitation a fresh token and email it (an older link stops working)."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _hash(token)
    invitation.sent_at = timezone.now()
    invitation.save()
    link = mail.frontend_link("invitations", invite_code=token)
    mail.send(
        invitation.email,
        f"You are invited to {invitation.org.name} on Dalgo",
        f"You have been invited to join {invitation.org.name} on Dalgo as {invitation.role.name}.\n\n"
        f"Accept the invitation here: {link}\n\nThe link is valid for {settings.INVITATION_TTL_DAYS:g} days.",
    )


def invite(org: Org, email: str, role: Role, invited_by: User | None) -> Invitation:
    if OrgUser.objects.filter(org=org, user__email=email).exists():
        raise ApiError(409, f"{email} is already a member of '{org.slug}'")
    if Invitation.objects.filter(org=org, email=email).exists():
        raise ApiError(409, f"{email} is already invited to '{org.slug}': resend or delete that invitation")
    with transaction.atomic():
        invitation = Invitation(org=org, email=email, role=role, invited_by=invited_by)
        _send_invitation(invitation)
    return invitation


def resend(invitation: Invitation) -> Invitation:
    _send_invitation(invitation)
    return invitation


def _check_invited_caller(invited: User, caller: User | None) -> None:
    if caller is None:
        raise ApiError(
            401,
            "this invitation is for an existing account: log in as that user and accept it with "
            "'Authorization: Bearer <token>'",
        )
    if caller.pk != invited.pk:
        raise ApiError(403, "this invitation is for another account: log in as the invited user to accept it")


def accept(token: str, password: str | None, first_name: str, last_name: str, *, caller: User | None = None) -> OrgUser:
    """Join the organization; creates the user (then ``password`` is required) if the email is new. An
    email that has an account joins only when ``caller`` (the logged-in user) is that account: 401 when
    nobody is logged in, 403 for another user; nothing changes then."""
    invitation = Invitation.objects.select_related("org", "role").filter(token_hash=_hash(token)).first()
    age = timezone.now() - invitation.sent_at if invitation else None
    if invitation is None or age.total_seconds() > settings.INVITATION_TTL_DAYS * 86400:
        raise ApiError(400, "invite_code: the invitation is invalid or has expired")
    with transaction.atomic():
        user = User.objects.filter(email=invitation.email).first()
        if user is not None:
            _check_invited_caller(user, caller)
        else:
            if not password:
                raise ApiError(
                    400,
                    "password: required to create your account",
                    [{"field": "password", "message": "required"}],
                )
            from dalgo_api.accounts.passwords import check_password_strength

            check_password_strength(password)
            user = User.objects.create_user(invitation.email, password, first_name=first_name, last_name=last_name)
        member = add_member(invitation.org, user, invitation.role)
        invitation.delete()
    return member
