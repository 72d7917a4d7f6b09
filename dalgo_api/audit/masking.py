"""Secrets out of what the audit log keeps: values of secret-looking fields, every value of a ``secrets``
mapping, and credentials inside URLs become ``***``. Masking is by name, so it errs on the side of hiding
(a source's ``url`` is hidden with the webhooks' URLs)."""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SECRET_FIELD = re.compile(r"pass|secret|token|credential|keyfile|private|api_?key|invite_code|^url$|webhook", re.I)
SECRET_MAPS = {"secrets"}
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
MAX_DEPTH = 12


def mask(value: Any, depth: int = 0) -> Any:
    """A copy of JSON-like ``value`` with its secrets masked."""
    if depth > MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = str(key)
            if name in SECRET_MAPS and isinstance(item, dict):
                out[name] = {k: MASK for k in item}
            elif SECRET_FIELD.search(name) and item not in (None, "", [], {}):
                out[name] = MASK
            else:
                out[name] = mask(item, depth + 1)
        return out
    if isinstance(value, list):
        return [mask(item, depth + 1) for item in value]
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(f"{MASK}@", value)
    return value
