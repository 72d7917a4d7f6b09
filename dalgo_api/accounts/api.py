"""Login, logout, the current user, signup and passwords (``/api/login/``, ``/api/currentuser``...)."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from ninja import Router

from dalgo_api.accounts import passwords, throttling
from dalgo_api.accounts.auth import authenticated, role_permissions
from dalgo_api.accounts.models import ApiToken, Role, User
from dalgo_api.accounts.schemas import (
    ChangePasswordIn,
    CurrentUserOut,
    ForgotPasswordIn,
    LoginIn,
    LoginOut,
    Message,
    ResetPasswordIn,
    SignupIn,
    UserOut,
)
from dalgo_api.common_responses import errors
from dalgo_api.errors import ApiError, conflict

logger = logging.getLogger(__name__)
router = Router(tags=["accounts"])


def user_out(user: User) -> dict:
    return {
        "id": user.pk,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_super_admin": user.is_superuser,
    }


@router.post("/login/", response={200: LoginOut, **errors(401, 429)}, auth=None)
def login(request: HttpRequest, payload: LoginIn) -> dict:
    """Exchange email and password for a bearer token (expires after ``DALGO_API_TOKEN_TTL_HOURS``).
    After ``DALGO_API_LOGIN_FAILURE_LIMIT`` failures for an email from one address, its logins from there
    answer 429 for ``DALGO_API_LOGIN_LOCKOUT_MINUTES``, even with the right password."""
    # axes (AxesStandaloneBackend) sees the request: it refuses a locked-out login and counts failures;
    # AxesMiddleware turns the refusal into throttling.lockout_response
    user = authenticate(request=request, email=payload.email, password=payload.password.get_secret_value())
    if user is None:
        raise ApiError(401, "invalid email or password")
    throttling.logged_in(request, user)
    token, raw = ApiToken.issue(user)
    User.objects.filter(pk=user.pk).update(last_login=token.created_at)
    return {"token": raw, "expires_at": token.expires_at, "user": user_out(user)}


@router.post("/logout/", response=Message, auth=authenticated)
def logout(request: HttpRequest) -> dict:
    """Revoke the token of this request."""
    request.auth.token.delete()
    return {"detail": "logged out"}


@router.get("/currentuser", response=CurrentUserOut, auth=authenticated)
def current_user(request: HttpRequest) -> dict:
    """The caller and every organization they belong to, with their role and permissions there
    (what a frontend needs for its organization switcher)."""
    from dalgo_api.orgs.models import OrgUser

    user = request.auth.user
    # the answer's columns alone, as rows (a frontend asks this on every page load)
    memberships = (
        OrgUser.objects.filter(user=user)
        .order_by("org__name")
        .values(slug=F("org__slug"), name=F("org__name"), role_slug=F("role__slug"))
    )
    perms: dict[str, list[str]] = {}
    out = []
    for m in memberships:
        role = Role.SUPER_ADMIN if user.is_superuser else m["role_slug"]
        if role not in perms:
            perms[role] = sorted(role_permissions(role))
        out.append({"org": {"slug": m["slug"], "name": m["name"]}, "role": role, "permissions": perms[role]})
    return {**user_out(user), "memberships": out}


def _signup_code_ok(code: str) -> bool:
    # bytes: compare_digest refuses str with non-ASCII characters
    expected = settings.SIGNUP_CODE.encode()
    return bool(expected) and hmac.compare_digest(code.encode(), expected)


@router.post("/signup/", response={201: UserOut, **errors(403, 409)}, auth=None)
def signup(request: HttpRequest, payload: SignupIn) -> tuple[int, dict]:
    """Create an account with the platform's signup code; with ``organization``, also create that
    organization with the new user as its Account Manager."""
    if not _signup_code_ok(payload.signup_code):
        raise ApiError(403, "signup_code: invalid signup code", [{"field": "signup_code", "message": "invalid"}])
    if User.objects.filter(email=payload.email).exists():
        raise conflict(f"email: a user with email {payload.email} already exists")
    password = payload.password.get_secret_value()
    passwords.check_password_strength(password)
    with transaction.atomic():
        user = User.objects.create_user(
            payload.email, password, first_name=payload.first_name, last_name=payload.last_name
        )
        if payload.organization:
            from dalgo_api.orgs import services

            org = services.create_org(payload.organization)
            services.add_member(org, user, Role.objects.get(slug=Role.ACCOUNT_MANAGER))
    return 201, user_out(user)


@router.post("/users/change_password/", response=Message, auth=authenticated)
def change_password(request: HttpRequest, payload: ChangePasswordIn) -> dict:
    """Change one's own password; other sessions (tokens) are logged out."""
    user = request.auth.user
    if not user.check_password(payload.old_password.get_secret_value()):
        raise ApiError(400, "old_password: wrong password", [{"field": "old_password", "message": "wrong"}])
    new = payload.new_password.get_secret_value()
    passwords.check_password_strength(new, user, field="new_password")
    passwords.set_password(user, new, keep=request.auth.token)
    return {"detail": "password changed"}


@router.post("/users/forgot_password/", response=Message, auth=None)
def forgot_password(request: HttpRequest, payload: ForgotPasswordIn) -> dict:
    """Email a reset link. The answer is the same whether the email is registered or not."""
    user = User.objects.filter(email=payload.email, is_active=True).first()
    if user is not None:
        passwords.send_reset_email(user)
    return {"detail": "if this email is registered, a reset link has been sent to it"}


@router.post("/users/reset_password/", response=Message, auth=None)
def reset_password(request: HttpRequest, payload: ResetPasswordIn) -> dict:
    """Set a new password with the ``uid`` and ``token`` of the emailed link; every session ends."""
    user = passwords.user_from_reset_token(payload.uid, payload.token)
    new = payload.password.get_secret_value()
    passwords.check_password_strength(new, user)
    passwords.set_password(user, new)
    return {"detail": "password reset: log in with the new password"}
