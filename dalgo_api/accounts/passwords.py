"""Password checks, changes and email resets (Django's validators and reset-token generator)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from dalgo_api import mail
from dalgo_api.accounts.models import ApiToken, User, storable_pk
from dalgo_api.errors import ApiError


def check_password_strength(password: str, user: User | None = None, field: str = "password") -> None:
    """400 naming the field with Django's validator messages."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ApiError(
            400, f"{field}: {' '.join(exc.messages)}", [{"field": field, "message": m} for m in exc.messages]
        ) from None


def set_password(user: User, password: str, keep: ApiToken | None = None) -> None:
    """Set a new password and revoke every token but ``keep`` (other sessions must log in again)."""
    user.set_password(password)
    user.save(update_fields=["password"])
    tokens = ApiToken.objects.filter(user=user)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    tokens.delete()


def send_reset_email(user: User) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = mail.frontend_link("resetpassword", uid=uid, token=token)
    mail.send(
        user.email,
        "Reset your Dalgo password",
        f"Someone asked to reset the password of {user.email} on Dalgo.\n\n"
        f"Set a new password here: {link}\n\nIf it was not you, ignore this email.",
    )


def user_from_reset_token(uid: str, token: str) -> User:
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError):
        pk = 0
    user = User.objects.filter(pk=pk).first() if storable_pk(pk) else None
    if user is None or not default_token_generator.check_token(user, token):
        raise ApiError(400, "token: the reset link is invalid or has expired")
    return user
