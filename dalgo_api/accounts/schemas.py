"""Request and response bodies of the accounts endpoints. Passwords are ``SecretStr`` so they never
appear in a repr, a log line or a validation error."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import AfterValidator, Field, SecretStr, StringConstraints


def _email(value: str) -> str:
    value = value.strip().lower()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("not a valid email address") from None
    return value


def _readable(value: str) -> str:
    """A name people read in pages and in email subjects: no control characters (a line break there would
    end the email's header)."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must not contain control characters (line breaks, tabs)")
    return value


Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)]
Password = Annotated[SecretStr, Field(min_length=1, max_length=256)]
# the user table's first_name / last_name, without the spaces around it
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=150), AfterValidator(_readable)]
# an organization's name, without the spaces around it: blank is no name
OrgName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_readable)
]
Code = Annotated[str, Field(min_length=1, max_length=256)]  # a signup code, invitation or reset token


class LoginIn(Schema):
    email: Email
    password: Password


class UserOut(Schema):
    id: int
    email: str
    first_name: str
    last_name: str
    is_super_admin: bool


class LoginOut(Schema):
    token: str
    expires_at: datetime
    user: UserOut


class OrgRef(Schema):
    slug: str
    name: str


class MembershipOut(Schema):
    org: OrgRef
    role: str
    permissions: list[str]


class CurrentUserOut(UserOut):
    memberships: list[MembershipOut]


class SignupIn(Schema):
    email: Email
    password: Password
    signup_code: Code
    first_name: PersonName = ""
    last_name: PersonName = ""
    organization: OrgName | None = Field(
        None, description="Create this organization with the new user as its Account Manager"
    )


class ChangePasswordIn(Schema):
    old_password: Password
    new_password: Password


class ForgotPasswordIn(Schema):
    email: Email


class ResetPasswordIn(Schema):
    uid: Code
    token: Code
    password: Password


class Message(Schema):
    detail: str
