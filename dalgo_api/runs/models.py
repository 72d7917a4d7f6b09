"""The ``Idempotency-Key`` of run launches. Runs themselves are not tables here: they live in Dagster's
instance and are read through ``dalgo_api.bridge`` (their failures are alerts: ``dalgo_api.alerts``).
"""

from __future__ import annotations

from django.db import models

from dalgo_api.orgs.models import Org


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` a client sent with ``POST /api/runs/``: the run it launched, so that a retry
    with the same key in the same organization returns that run instead of launching another one.

    The row is claimed (unique per organization and key) before the launch and gets its ``run_id``
    after it; a launch that fails releases it. ``launch_id`` is the run's ``dalgo/launch`` tag, which
    finds the run of a launch whose request died before recording it. Kept ``KEEP`` (24 hours) after
    the claim."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)  # sha256 of the request body, validated and normalized
    launch_id = models.CharField(max_length=32)
    run_id = models.CharField(max_length=64, blank=True, default="")  # "" while the launch is in progress
    claimed_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="one_run_per_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.org.slug} key {self.key!r} -> run {self.run_id or '(launching)'}"
