"""Organizations, memberships (user + organization + role), invitations and feature flags.

An organization's warehouse, dbt projects, connections and pipelines are not tables: they live in its
spec (``$DALGO_ORGS_DIR/<slug>/org.yaml``), written only through ``dalgo_api.specs.store``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from dalgo_api.accounts.models import Role


class Org(models.Model):
    """A tenant; ``slug`` names its spec folder and its Dagster code location."""

    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "organization"

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class RetiredSlug(models.Model):
    """The slug of a deleted organization: never given again, so no later organization, whatever its
    name, inherits its runs, logs or outputs (Dagster keeps those under the slug's code location)."""

    slug = models.CharField(max_length=40, unique=True)
    retired_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class OrgUser(models.Model):
    """A user's membership of an organization; its role decides what the user may do there."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="members")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="members")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "org"], name="one_membership_per_org")]
        verbose_name = "membership"

    def __str__(self) -> str:
        return f"{self.user} in {self.org.slug} as {self.role.slug}"


class Invitation(models.Model):
    """An invitation to join an organization with a role; the emailed token is stored hashed."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.ForeignKey(Role, on_delete=models.PROTECT)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "email"], name="one_invitation_per_email")]

    def __str__(self) -> str:
        return f"{self.email} to {self.org.slug} as {self.role.slug}"


class FeatureFlag(models.Model):
    """A flag's value, global (``org`` empty) or for one organization (which wins over the global one)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, null=True, blank=True, related_name="flags")
    name = models.CharField(max_length=64)
    enabled = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="one_flag_per_org"),
            models.UniqueConstraint(fields=["name"], condition=Q(org__isnull=True), name="one_global_flag"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={'on' if self.enabled else 'off'} ({self.org.slug if self.org else 'global'})"
