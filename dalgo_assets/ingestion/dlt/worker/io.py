"""The worker's side of its conversation with ``run.py``: one JSON object a line on stdout (``{"log": level,
"message": ...}``, then ``{"result": ...}`` or ``{"error": ...}``), and, during a sync, one question whose
answer comes as one line on stdin."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(**message: Any) -> None:
    sys.stdout.write(json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


def log(level: str, message: str) -> None:
    emit(log=level, message=message)


def ask(**question: Any) -> dict[str, Any]:
    """Say something and wait for the answer (an empty one if the platform closed the conversation)."""
    emit(**question)
    line = sys.stdin.readline()
    return json.loads(line) if line.strip() else {}


def message_of(exc: BaseException) -> str:
    """The innermost cause's message (dlt wraps a step's failure in PipelineStepFailed)."""
    while exc.__cause__ is not None or getattr(exc, "exception", None) is not None:
        exc = exc.__cause__ or exc.exception  # type: ignore[attr-defined]
    return f"{type(exc).__name__}: {exc}".strip()
