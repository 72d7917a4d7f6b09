"""A task: work that can take minutes (installing a connector, its ``check`` or ``discover``), done by a
worker process the API starts, and polled by the frontend (Dalgo's "task progress")."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from dalgo_api.orgs.models import Org


class Task(models.Model):
    QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, SUCCEEDED, FAILED)]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=40)
    subject = models.CharField(max_length=200, blank=True, default="")  # what it works on, for people
    # the worker's input, sealed with the secrets key (``secret_store.seal``): it may hold a config's secrets
    params = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    progress = models.JSONField(default=list)  # [{"at": iso time, "message": ...}]
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    host = models.CharField(max_length=255, blank=True, default="")  # where its worker runs
    pid = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "kind", "subject", "status"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.status}) of {self.org.slug}"

    @property
    def finished(self) -> bool:
        return self.status in (self.SUCCEEDED, self.FAILED)
