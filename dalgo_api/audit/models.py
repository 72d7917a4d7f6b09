"""The audit log: one entry per change made through the API (``dalgo_api.audit.middleware``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dalgo_api.orgs.models import Org


class AuditEntry(models.Model):
    """Who changed what, when, in which organization: the operation, its target, the state before and
    after (where the API knows it) and the request's body, secrets masked (``dalgo_api.audit.masking``)."""

    org = models.ForeignKey(Org, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries")
    org_slug = models.CharField(max_length=40, blank=True, default="", help_text="kept once the organization is gone")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_email = models.CharField(max_length=254, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=160, help_text='the operation, e.g. "PUT /api/organizations/warehouse"')
    target = models.CharField(max_length=300, blank=True, default="")
    status = models.PositiveSmallIntegerField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "-id"], name="audit_entries_of_org")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {self.org_slug or '-'} {self.actor_email or '?'}: {self.action} {self.target}"
        )
