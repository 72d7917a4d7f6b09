"""Run-failure notifications: who wants an email, and which failed runs were already emailed about.

Runs themselves are not tables here: they live in Dagster's instance and are read through
``dalgo_api.bridge``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dalgo_api.orgs.models import Org


class Subscription(models.Model):
    """A user who gets an email when one of an organization's runs fails."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="run_subscriptions")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="run_subscriptions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "org"], name="one_subscription_per_org")]

    def __str__(self) -> str:
        return f"{self.user} <- failed runs of {self.org.slug}"


class NotifiedRun(models.Model):
    """A failed Dagster run whose subscribers were emailed (so each failure is sent once)."""

    run_id = models.CharField(max_length=64, unique=True)
    org_slug = models.CharField(max_length=40)
    failed_at = models.DateTimeField()
    recipients = models.PositiveIntegerField(default=0)
    notified_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"run {self.run_id} of {self.org_slug}"
