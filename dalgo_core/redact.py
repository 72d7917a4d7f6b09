"""What tenant code's output may say to a user: dbt's own cause, without colours, tracebacks or any
value of the platform's environment or secrets (each shown as ``***``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_SENSITIVE_NAME = re.compile(r"PASS|SECRET|KEY|TOKEN|DSN|URL|CREDENTIAL|AUTH|PRIVATE", re.I)
_BENIGN = {
    "PATH",
    "HOME",
    "PWD",
    "OLDPWD",
    "LANG",
    "LC_ALL",
    "SHELL",
    "TERM",
    "USER",
    "LOGNAME",
    "HOSTNAME",
    "SHLVL",
    "TZ",
    "TMPDIR",
    "_",
    "PYTHONUNBUFFERED",
    "DAGSTER_DBT_CLI",
    "DBT_LOG_FORMAT",
}
MAX_LINES = 30
_TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d\s+")


def _secrets(extra: Iterable[str]) -> list[str]:
    values = set(extra)
    for name, value in os.environ.items():
        if name in _BENIGN or len(value) < 6:
            continue
        if _SENSITIVE_NAME.search(name) or ("/" not in value and len(value) >= 8 and not value.isdigit()):
            values.add(value)
    return sorted((v for v in values if v), key=len, reverse=True)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` without ANSI codes and with every platform environment value and ``extra`` secret as ***."""
    text = _ANSI.sub("", text)
    for value in _secrets(extra):
        text = text.replace(value, "***")
    return text


def tenant_error(output: str, extra: Iterable[str] = ()) -> str:
    """What a failed tool's output says about why: from its first error line on (dbt prints the cause
    below it), without timestamps, colours or traceback frames, redacted."""
    lines = [_TIMESTAMP.sub("", ln.rstrip()) for ln in _ANSI.sub("", output).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Traceback", "  File ", "    "))]
    first = next((i for i, ln in enumerate(lines) if re.search(r"error|fail|not found|invalid", ln, re.I)), None)
    kept = lines[first:] if first is not None else lines
    return redact("\n".join(kept[:MAX_LINES] if first is not None else kept[-MAX_LINES:]), extra)
