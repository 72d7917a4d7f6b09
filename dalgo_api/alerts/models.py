"""Alerts as the API keeps them: the state of each rule's condition per subject (``Incident``), every
message sent (``AlertEvent``) with its webhook deliveries, each member's inbox (``Notification``) and
choices (``NotificationPreference``), and where the dispatcher stopped reading Dagster (``DispatchCursor``).

The rules are not tables: they live in the organization's spec (``alerts``), like its pipelines, written
through ``dalgo_api.specs``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from dalgo_api.orgs.models import Org


class Incident(models.Model):
    """A rule's condition on one subject (an asset, a check, the runs of a pipeline, the code location):
    failing or not, since when, and when it was last alerted (the window counts from there)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="alert_incidents")
    rule = models.CharField(max_length=63)
    subject = models.CharField(max_length=500)
    failing = models.BooleanField(default=False)
    since = models.DateTimeField()
    alerted = models.BooleanField(default=False, help_text="this failing spell was alerted: its clearing is told")
    last_alert_at = models.DateTimeField(null=True, blank=True)
    repeats = models.PositiveIntegerField(default=0, help_text="failing signals not alerted since the last alert")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "rule", "subject"], name="one_incident_per_subject")]

    def __str__(self) -> str:
        return f"{self.org.slug} {self.rule}: {self.subject} ({'failing' if self.failing else 'ok'})"


class AlertEvent(models.Model):
    """A message the platform sent for a rule: an alert or a recovery, and to how many people."""

    ALERT, RECOVERY = "alert", "recovery"
    STATUSES = [(ALERT, "alert"), (RECOVERY, "recovery")]

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="alert_events")
    rule = models.CharField(max_length=63)
    kind = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=STATUSES)
    subject = models.CharField(max_length=500)
    asset = models.CharField(max_length=400, blank=True, default="")
    run_id = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=300)
    message = models.TextField()
    occurred_at = models.DateTimeField(help_text="when Dagster recorded what the message is about")
    created_at = models.DateTimeField(auto_now_add=True)
    emails = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["org", "-id"], name="alert_events_of_org")]

    def __str__(self) -> str:
        return f"{self.org.slug} {self.status}: {self.title}"

    def summary(self) -> dict[str, Any]:
        """What the event says, as the inbox, the history and webhooks show it."""
        return {
            "rule": self.rule,
            "kind": self.kind,
            "status": self.status,
            "subject": self.subject,
            "asset": self.asset or None,
            "run_id": self.run_id or None,
            "title": self.title,
            "message": self.message,
        }


class WebhookDelivery(models.Model):
    """One event posted to one of its rule's webhooks, retried a few times when the receiver fails."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    format = models.CharField(max_length=10)
    url_ref = models.JSONField(help_text="the webhook's secret reference in the spec, never the URL")
    host = models.CharField(max_length=255, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="none: done")
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")

    def __str__(self) -> str:
        return f"event {self.event_id} -> {self.format} {self.host or '?'} ({self.attempts} attempt(s))"


class Notification(models.Model):
    """An alert in a member's inbox, read or not."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event"], name="one_notification_per_event")]
        indexes = [models.Index(fields=["user", "-id"], name="inbox_of_user")]

    def __str__(self) -> str:
        return f"{self.user} <- {self.event}"


class NotificationPreference(models.Model):
    """A member's choice for one rule of an organization: by email, in the inbox (both by default)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preferences")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="alert_preferences")
    rule = models.CharField(max_length=63)
    email = models.BooleanField(default=True)
    inbox = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "org", "rule"], name="one_preference_per_rule")]

    def __str__(self) -> str:
        return f"{self.user} {self.org.slug}/{self.rule}: email {self.email}, inbox {self.inbox}"


class DispatchCursor(models.Model):
    """Where the dispatcher stopped reading one of Dagster's records (``dalgo_api.bridge.signals``)."""

    name = models.CharField(max_length=64, unique=True)
    value = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
