"""``pool_pre_ping`` for Dagster's PostgreSQL storage, as a SQLAlchemy engine plugin.

Dagster's storage connects per operation (a ``NullPool``) everywhere but in the webserver, which keeps a
small pool (``optimize_for_webserver``) and has no setting for a pre-ping. After a PostgreSQL restart,
the first query of each of its pooled connections failed, and the API answered that GraphQL call with a
503. The instance yaml loads this plugin by name (``postgres_db.params.plugin``, registered under
``sqlalchemy.plugins`` in ``pyproject.toml``): a pooled connection is then tested before it is used and
replaced if the server closed it. A fresh connection is never pinged, so the ``NullPool`` engines pay
nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, CreateEnginePlugin

PLUGIN_NAME = "dalgo_pool_pre_ping"


class PoolPrePing(CreateEnginePlugin):
    """Sets ``pre_ping`` on the engine's pool, whatever pool its creator chose."""

    def update_url(self, url: URL) -> URL:
        return url  # SQLAlchemy already removed the ``plugin`` argument; this plugin reads none

    def handle_pool_kwargs(self, pool_cls: type, pool_args: dict[str, Any]) -> None:
        pool_args["pre_ping"] = True
