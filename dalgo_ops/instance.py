"""The production Dagster instance: ``deploy/dagster/dagster.postgres.yaml`` plus its connection settings.

The yaml reads every PostgreSQL setting from ``DAGSTER_PG_*`` environment variables, so one file serves
``dalgo serve``, docker compose and the image; this module turns a PostgreSQL URL into those variables.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POSTGRES_INSTANCE = REPO / "deploy" / "dagster" / "dagster.postgres.yaml"
EMBEDDED_INSTANCE = REPO / "deploy" / "dagster" / "dagster.yaml"
PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
# One host only: run workers are local processes whose pids run monitoring can check. Compose and the
# Helm chart keep their own launchers (workers in other containers/pods), so this is not in the yaml.
ONE_HOST_RUN_LAUNCHER = """
# Added by dalgo serve: run monitoring checks each run worker's pid on this host.
run_launcher:
  module: dalgo_assets.instance.run_launcher
  class: OneHostRunLauncher
"""


class DeployError(Exception):
    """A deployment setting that cannot be used; the message names the setting."""


def pg_env_from_url(url: str) -> dict[str, str]:
    """``postgresql://user:pw@host:port/db`` as the ``DAGSTER_PG_*`` variables the instance yaml reads
    (parsed by SQLAlchemy's ``make_url``: percent-encoded parts decoded, a driver suffix allowed)."""
    from sqlalchemy.engine import make_url  # imported here: only a PostgreSQL deployment pays for it
    from sqlalchemy.exc import ArgumentError

    expected = "--postgres-url: expected postgresql://user:password@host:port/database"
    try:
        parts = make_url(url)
    except ArgumentError:
        raise DeployError(f"{expected}, got a string that is not a URL") from None
    if parts.get_backend_name() not in {"postgres", "postgresql"}:
        raise DeployError(f"{expected}, got '{parts.drivername}://...'")
    if not parts.host or not parts.username or not parts.database:
        raise DeployError(
            "--postgres-url: the URL needs a user, a host and a database (postgresql://user:pw@host:port/db)"
        )
    return {
        "DAGSTER_PG_HOST": parts.host,
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_USER": parts.username,
        "DAGSTER_PG_PASSWORD": parts.password or "",
        "DAGSTER_PG_DB": parts.database,
    }


def write_postgres_instance(dagster_home: Path) -> Path:
    """Install the production instance yaml as ``$DAGSTER_HOME/dagster.yaml`` (replacing the embedded one),
    with the one-host run launcher (``dalgo serve``)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    target.write_text(POSTGRES_INSTANCE.read_text() + ONE_HOST_RUN_LAUNCHER)
    return target


def write_embedded_instance(dagster_home: Path) -> Path:
    """The embedded default (``dalgo up``): Dagster's SQLite storage under ``$DAGSTER_HOME``, from
    ``deploy/dagster/dagster.yaml``, unless the operator put their own ``dagster.yaml`` there."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    if not target.exists():
        target.write_text(EMBEDDED_INSTANCE.read_text())
    return target
