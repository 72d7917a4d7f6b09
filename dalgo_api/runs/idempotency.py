"""The ``Idempotency-Key`` header of ``POST /api/runs/``: a retried request with the same key (in the
same organization) gets the run the first one launched instead of launching a second one.

- ``check_key`` refuses, with a 400 naming the header, a key that is empty, longer than 255 characters
  or holds control characters.
- ``launch_once`` claims the key (a row unique per organization and key, committed before the launch),
  launches, and records the run id. A request that finds the key claimed gets the recorded run; while
  the first request is still launching it waits for it (at most ``DALGO_API_IDEMPOTENCY_WAIT_SECONDS``,
  30), then answers 409 "retry". The same key with another body is a 422. A launch that fails (nothing
  launched) releases the key, so a retry launches.
- A claim whose request died before recording its run (a crashed API process) is recovered once it is
  older than the longest launch: the run carries the claim's ``dalgo/launch`` tag, and is found by it;
  with no such run the claim is taken over and the run launched.

Keys are kept ``KEEP`` (24 hours) after they were claimed; an older key is a new key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from ninja import Header
from pydantic import WithJsonSchema

from dalgo_api import bridge
from dalgo_api.errors import ApiError
from dalgo_api.orgs.models import Org
from dalgo_api.runs.models import IdempotencyKey

HEADER = "Idempotency-Key"
FIELD = f"header.{HEADER}"
MAX_LENGTH = 255
KEEP = timedelta(hours=24)
POLL_SECONDS = 0.25
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# declared in the OpenAPI document (the checks themselves are check_key's, answering 400)
SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": r"^[^\x00-\x1f\x7f]+$"}
# the header's parameter, for every endpoint that launches a run
KeyHeader = Annotated[
    str | None,
    WithJsonSchema(SCHEMA),
    Header(
        None,
        alias=HEADER,
        description="Any string of 1 to 255 characters without control characters (a UUID, say): a retry "
        "with the same key and body returns the run the first request launched instead of launching another",
    ),
]

logger = logging.getLogger(__name__)


def wait_seconds() -> float:
    """How long a request waits for the launch of a concurrent request with the same key."""
    return float(os.environ.get("DALGO_API_IDEMPOTENCY_WAIT_SECONDS", "30"))


def check_key(value: str | None) -> str | None:
    """The key, or None without the header; 400 naming the header for a key that cannot be one."""
    if value is None:
        return None
    problem = None
    if not value:
        problem = "must not be empty"
    elif len(value) > MAX_LENGTH:
        problem = f"at most {MAX_LENGTH} characters (got {len(value)})"
    elif CONTROL.search(value):
        problem = "must not contain control characters"
    if problem:
        raise ApiError(400, f"{HEADER} header: {problem}", [{"field": FIELD, "message": problem}])
    return value


def body_hash(body: Any) -> str:
    """The request body, validated, as a hash independent of key order and spacing."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def launch_once(org: Org, key: str | None, digest: str, launch: Callable[[str], str]) -> tuple[str, datetime | None]:
    """The id of the run ``launch(launch_id)`` starts, launched at most once per organization and key,
    and, for a run an earlier request launched, when that request claimed the key (None for a new run).
    Without a key, ``launch`` is simply called."""
    if key is None:
        return launch(bridge.new_launch_id()), None
    deadline = time.monotonic() + wait_seconds()
    while True:
        row, mine = _claim(org, key, digest)
        if mine:
            break
        if row is not None:
            if row.body_hash != digest:
                problem = f"was used with a different request body (or endpoint) in organization '{org.slug}'"
                raise ApiError(
                    422,
                    f"{HEADER} header: this key {problem} (keys are kept {_hours(KEEP)} hours): "
                    "use a new key for a new request",
                    [{"field": FIELD, "message": f"this key {problem}"}],
                )
            if row.run_id:
                return row.run_id, row.claimed_at
            row, mine = _recover(org, row)
            if mine:
                break
            if row.run_id:
                return row.run_id, row.claimed_at
        if time.monotonic() > deadline:
            raise ApiError(
                409,
                f"{HEADER} header: a request with this key is still launching its run; retry shortly",
                [{"field": FIELD, "message": "a request with this key is in progress"}],
            )
        time.sleep(POLL_SECONDS)
    try:
        run_id = launch(row.launch_id)
    except BaseException:
        _release(row)
        raise
    _record(row, run_id)
    return run_id, None


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


def _claim(org: Org, key: str, digest: str) -> tuple[IdempotencyKey | None, bool]:
    """``(row, True)`` when this request claimed the key, ``(the claimed row, False)`` when another did
    (``(None, False)`` when that claim was just released: try again)."""
    now = timezone.now()
    row = IdempotencyKey.objects.filter(org=org, key=key).first()
    if row is not None and row.claimed_at >= now - KEEP:
        return row, False
    if row is not None:  # expired: a new key
        IdempotencyKey.objects.filter(pk=row.pk, claimed_at=row.claimed_at).delete()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(
                org=org, key=key, body_hash=digest, launch_id=bridge.new_launch_id(), claimed_at=now
            )
    except IntegrityError:  # a concurrent request claimed it first
        return IdempotencyKey.objects.filter(org=org, key=key).first(), False
    IdempotencyKey.objects.filter(claimed_at__lt=now - KEEP).delete()
    return row, True


def _recover(org: Org, row: IdempotencyKey) -> tuple[IdempotencyKey, bool]:
    """A claim still without a run: as it is while it launches, or, older than the longest launch, the
    claim of a request that died. Then its run is found by its launch tag and recorded, or the claim is
    taken over (``(row, True)``: launch now)."""
    if row.claimed_at > timezone.now() - timedelta(seconds=bridge.LAUNCH_MAX_SECONDS):
        return row, False
    try:
        run_id = bridge.launched_as(org.slug, row.launch_id)
    except bridge.DagsterUnavailable:
        return row, False  # cannot tell whether it launched: wait (and answer 409)
    if run_id is not None:
        IdempotencyKey.objects.filter(pk=row.pk, launch_id=row.launch_id, run_id="").update(run_id=run_id)
        row.run_id = run_id
        return row, False
    taken = IdempotencyKey.objects.filter(pk=row.pk, launch_id=row.launch_id, run_id="")
    new_id, now = bridge.new_launch_id(), timezone.now()
    if taken.update(launch_id=new_id, claimed_at=now):
        logger.warning(
            "organization %s: %s %r: its request died before launching; launching", org.slug, HEADER, row.key
        )
        row.launch_id, row.claimed_at = new_id, now
        return row, True
    return row, False


def _release(row: IdempotencyKey) -> None:
    """Nothing was launched: a retry with the key launches."""
    try:
        IdempotencyKey.objects.filter(pk=row.pk, launch_id=row.launch_id, run_id="").delete()
    except DatabaseError:
        logger.warning("%s %r of %s could not be released", HEADER, row.key, row.org_id, exc_info=True)


def _record(row: IdempotencyKey, run_id: str) -> None:
    """The run was launched: retries get it. A failure is logged (the run is found by its launch tag)."""
    try:
        IdempotencyKey.objects.filter(pk=row.pk, launch_id=row.launch_id).update(run_id=run_id)
    except DatabaseError:
        logger.warning("%s %r: run %s launched, not recorded", HEADER, row.key, run_id, exc_info=True)
