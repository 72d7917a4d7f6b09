"""Where the platform keeps its state: two trees no tenant string can cross.

``$DALGO_HOME`` (``./.dalgo`` by default) holds

- ``platform/``: the platform's own files, never bound into a sandbox: the secrets key and the secrets
  (``secrets/<slug>/``, or ``$DALGO_SECRETS_DIR``), the API's SQLite database and Django key, Dagster's
  home (``dagster/``, or ``$DAGSTER_HOME``), the connectors' environments (``connectors/``, or
  ``$DALGO_CONNECTORS_DIR``), the process supervisor's files (``run/``), static files.
- ``orgs/<slug>/``: one organization's root, the only folder its tenant code may write: its DuckDB
  warehouse (assigned here, never chosen by a user), dbt artifacts and profile, ingestion state, the files
  its connections read.

A slug is a lowercase identifier (``names.SLUG_PATTERN``) and always lands under ``orgs/``, so it cannot name
a platform folder; ``RESERVED_SLUGS`` are refused anyway, for the folders and the names an operator reads.
Every path built from a tenant value goes through ``inside``: resolved (symlinks followed), it must stay
under its root.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from dalgo_core import settings

RESERVED_SLUGS = frozenset(
    {
        "platform",
        "orgs",
        "secrets",
        "dagster",
        "connectors",
        "run",
        "static",
        "admin",
        "api",
        "dalgo",
        "root",
        "default",
        "system",
        "public",
        "main",
        "serve",
        "tmp",
    }
)


class OutsideRoot(ValueError):
    """A path built from a tenant value leaves the root it belongs to."""


def inside(root: Path, *parts: str) -> Path:
    """``root/parts...``, refused unless it stays under ``root`` once resolved (``..``, absolute parts and
    symlinks pointing out included). The path need not exist."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise OutsideRoot(f"{'/'.join(parts)!r} leaves {root}")
    return path


def no_links(path: Path, base: Path | None = None) -> Path:
    """``path``, an organization's file the platform opens outside the sandbox (its DuckDB warehouse, dbt
    profile and manifests, connector state), refused if it or a folder of it below ``orgs/`` is a symbolic
    link. Tenant code cannot make one (``dalgo_core.sandbox.seccomp``); this refuses any made otherwise
    (by hand, by an older version) before the platform follows it into another organization. ``base``:
    another root the path must lie under (by default ``orgs/``)."""
    base = (base or orgs_root().resolve()).absolute()  # organizations' paths are built on the resolved root
    absolute = path.absolute()
    try:
        parts = absolute.relative_to(base).parts
    except ValueError:
        raise OutsideRoot(f"{path} is not in an organization's root") from None
    current = base
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise OutsideRoot(f"{current} is a symbolic link: the platform follows none in an organization's root")
    return absolute


class RefusedFile(ValueError):
    """A file of an organization's root the platform will not read: not a regular file, or too large."""


SMALL_FILE_BYTES = 16 << 20  # what the platform reads of a tenant's root in a shared process, at most


def read_org_file(path: Path, max_bytes: int | None = SMALL_FILE_BYTES) -> bytes:
    """The bytes of ``path``, a file of an organization's root the platform reads outside the sandbox:
    refused (``OutsideRoot``) if it is or lies under a link (``no_links``), refused (``RefusedFile``)
    unless a regular file (a FIFO would hold the reader, a request thread every organization shares) of
    at most ``max_bytes``. ``FileNotFoundError`` if there is none."""
    fd = os.open(no_links(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile(f"{path} is not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise RefusedFile(f"{path} is larger than {max_bytes} bytes")
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise RefusedFile(f"{path} is larger than {max_bytes} bytes")
    return data


def write_org_file(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, a file of an organization's root, atomically through a new file: a reader
    sees the old file or the new one, and whatever stood there (a link, a FIFO, a huge file) is replaced,
    never opened."""
    path = no_links(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return path


def scratch_dir(root: Path | str, prefix: str) -> Path:
    """A new private folder (mode 0700) in ``<root>/tmp``, ``root`` being where a call of tenant code may
    write (an organization's root): where the platform hands that call its inputs (a connector's config
    and catalog, a worker's job)."""
    tmp = no_links(Path(root) / "tmp", base=Path(root))
    tmp.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))
    os.chmod(folder, 0o700)
    return folder


def _dir(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().absolute() if value else default


def platform_dir() -> Path:
    return settings.home_dir() / "platform"


def lock_file(name: str) -> Path:
    """``<platform>/locks/<name>``, its folder created: where the platform's own locks live, never under an
    organization's root (tenant code writes there: a lock file it replaced by a symlink would make the
    platform open, or truncate, whatever it points at)."""
    folder = platform_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return inside(folder, name)


def orgs_root() -> Path:
    return settings.home_dir() / "orgs"


def org_root(slug: str) -> Path:
    """An organization's root: every file the platform writes for it, and all its tenant code may write."""
    return inside(orgs_root(), slug)


def dagster_home() -> Path:
    return _dir("DAGSTER_HOME", platform_dir() / "dagster")


def secrets_dir() -> Path:
    return _dir("DALGO_SECRETS_DIR", platform_dir() / "secrets")


def secrets_key_file() -> Path:
    return platform_dir() / "secrets.key"


def connectors_dir() -> Path:
    return _dir("DALGO_CONNECTORS_DIR", platform_dir() / "connectors")


def run_dir() -> Path:
    return platform_dir() / "run"


def api_database() -> Path:
    return platform_dir() / "api.sqlite3"


def api_secret_key_file() -> Path:
    return platform_dir() / "django-secret.key"


def static_dir() -> Path:
    return platform_dir() / "static"
