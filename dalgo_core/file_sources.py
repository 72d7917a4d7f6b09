"""Where a file source's files may be: a folder of the organization's own, a folder the operator allows,
an HTTP(S) address or an S3 bucket.

A relative ``url`` is a folder under the organization's files folder (``$DALGO_HOME/orgs/<slug>/files``);
an absolute one must lie under one of the folders in ``$DALGO_FILE_SOURCE_DIRS`` (``:``-separated, none by
default). Both are resolved through ``dalgo_core.layout.inside`` when a sync starts (symlinks followed), and
the sync's sandbox binds only that folder, read-only. Remote files are read through the sandbox's egress
proxy, which refuses private addresses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from dalgo_core import layout

ALLOWED_DIRS_ENV = "DALGO_FILE_SOURCE_DIRS"
FILES_FOLDER = "files"
_RELATIVE = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/?$"
_HTTP = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9_.~%+,;=@!$&'()*:-]*)*$"
_S3 = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.~%+,=@!$&'()*:-]*)*$"

Kind = Literal["local", "http", "s3"]


def kind(url: str) -> Kind:
    if url.startswith(("http://", "https://")):
        return "http"
    if url.startswith("s3://"):
        return "s3"
    return "local"


def allowed_dirs() -> list[Path]:
    """The folders outside organizations' roots the operator lets file sources read."""
    value = os.environ.get(ALLOWED_DIRS_ENV, "")
    return [Path(p) for p in value.split(":") if p.strip() and Path(p).is_absolute()]


def check_url(url: str) -> str:
    """The url, or ValueError saying what a file source's url may be."""
    if "/../" in f"/{url}/" or any(ord(c) < 32 for c in url):
        raise ValueError("url: no '..' and no control characters")
    if url.startswith(("http://", "https://")):
        if not re.match(_HTTP, url):
            raise ValueError("url: not an http(s)://host/path address")
    elif url.startswith("s3://"):
        if not re.match(_S3, url):
            raise ValueError("url: not an s3://bucket/prefix address")
    elif url.startswith("/"):
        if not any(_under(Path(url), d) for d in allowed_dirs()):
            raise ValueError(f"url: an absolute folder must be under one of {ALLOWED_DIRS_ENV} (the operator's)")
    elif "://" in url or not re.match(_RELATIVE, url):
        raise ValueError(
            "url: a folder relative to the organization's files folder, an allowed absolute folder, "
            "http(s)://... or s3://..."
        )
    return url


def _under(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.normpath(path)), Path(os.path.normpath(folder))
    return path == folder or folder in path.parents


def files_root(org: str) -> Path:
    """The organization's own files folder."""
    return layout.org_root(org) / FILES_FOLDER


def local_folder(org: str, url: str) -> Path:
    """A local url resolved (symlinks followed); ``layout.OutsideRoot`` unless it stays where it may be."""
    if not url.startswith("/"):
        return layout.inside(files_root(org), *url.strip("/").split("/"))
    for folder in allowed_dirs():
        if _under(Path(url), folder):
            rel = os.path.relpath(os.path.normpath(url), os.path.normpath(folder))
            return layout.inside(folder, *([] if rel == "." else rel.split("/")))
    raise layout.OutsideRoot(f"{url!r} is not under a folder of {ALLOWED_DIRS_ENV}")
