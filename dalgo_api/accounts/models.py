"""Users (email is the login), API tokens, and the role/permission tables.

Roles and permissions are data (``roles.csv``, loaded by a migration and by ``manage.py seed_roles``),
so the matrix can change without code changes and the tests read the same file the app loads.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    """Creates users by email, the only login name."""

    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("a user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person. ``is_superuser`` makes them a platform Super Admin, acting in every organization."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()  # type: ignore[misc]

    def __str__(self) -> str:
        return self.email


class Permission(models.Model):
    """A permission slug such as ``can_view_pipelines``; endpoints declare the slugs they need."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)

    def __str__(self) -> str:
        return self.slug


class Role(models.Model):
    """Super Admin, Account Manager, Pipeline Manager, Analyst or Guest; ``level`` orders them."""

    SUPER_ADMIN = "super-admin"
    ACCOUNT_MANAGER = "account-manager"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    level = models.PositiveSmallIntegerField()
    permissions = models.ManyToManyField(Permission, related_name="roles", blank=True)

    class Meta:
        ordering = ["-level"]

    def __str__(self) -> str:
        return self.name


MAX_PK = 2**63 - 1  # the largest id SQLite's INTEGER and PostgreSQL's bigint hold


def storable_pk(value: int) -> bool:
    """Whether ``value`` can be a row id (a larger one makes the database driver raise, not miss)."""
    return 0 < value <= MAX_PK


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A login token. Only its sha256 is stored, so a database leak does not leak sessions."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"token of {self.user} until {self.expires_at:%Y-%m-%d %H:%M}"

    @classmethod
    def issue(cls, user: User) -> tuple[ApiToken, str]:
        """Create a token; the raw value is returned once and never stored."""
        raw = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            key_hash=hash_token(raw),
            expires_at=timezone.now() + timedelta(hours=settings.TOKEN_TTL_HOURS),
        )
        return token, raw

    @property
    def expired(self) -> bool:
        return self.expires_at <= timezone.now()


class AccessGeneration(models.Model):
    """One row counting the changes to what a caller is checked against: its token, its user, its
    memberships, their organizations and roles. Each API process remembers the callers it checked and
    forgets them when the count moves (``dalgo_api.accounts.auth``), so a change made through any API
    process, on any host, applies in all of them within a second."""

    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "access generation"
