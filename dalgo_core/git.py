"""git for dbt projects of organizations: only the URL schemes an operator allows, run sandboxed.

``DALGO_GIT_SCHEMES`` lists the allowed schemes (default ``https,ssh``; add ``file`` for development
and tests). ``git@host:path`` is ssh. The URL always follows ``--``, so it can never be read as an
option; git never prompts, follows no ``file`` transport inside a remote repository, checks a symbolic
link out as a plain file (tenant code may make none: ``dalgo_core.sandbox.seccomp``), and every call has a
timeout.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

SCHEMES_ENV = "DALGO_GIT_SCHEMES"
TIMEOUT_SECONDS = 300
_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[A-Za-z0-9_./~-]+$")
# Options every git call gets: no prompts, no hooks or helpers a repository could bring in.
CONFIG = (
    "-c",
    "protocol.file.allow=never",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "credential.helper=",
    "-c",
    "submodule.recurse=false",
    "-c",
    "core.symlinks=false",  # a link in the repository is checked out as a file holding its target
)
ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
}


def allowed_schemes() -> set[str]:
    return {s.strip().lower() for s in os.environ.get(SCHEMES_ENV, "https,ssh").split(",") if s.strip()}


def url_scheme(url: str) -> str:
    if _SCP_LIKE.match(url):
        return "ssh"
    scheme = urlsplit(url).scheme.lower()
    return scheme or "path"


def check_url(url: str) -> str:
    """The URL, if git may fetch it; ``ValueError`` naming the allowed schemes otherwise."""
    url = url.strip()
    if not url or url.startswith("-") or any(c in url for c in "\x00\n\r \t"):
        raise ValueError("not a git URL")
    scheme = url_scheme(url)
    allowed = allowed_schemes()
    if scheme not in allowed:
        raise ValueError(f"git URLs with scheme '{scheme}' are not allowed here; use {', '.join(sorted(allowed))}")
    if scheme == "file" and os.environ.get(SCHEMES_ENV) is None:  # pragma: no cover - default excludes file
        raise ValueError("file:// git URLs are not allowed")
    return url


def file_allowed() -> bool:
    return "file" in allowed_schemes()
