"""The sandbox policy of one organization's tenant code: its root writable, its warehouse reachable, its
own secrets (by environment variable name) and nothing of the platform's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dalgo_core import layout
from dalgo_core.sandbox.policy import Endpoint, Policy, existing
from dalgo_core.spec import BigQueryWarehouse, OrgSpec, PostgresWarehouse


def warehouse_endpoints(spec: OrgSpec) -> tuple[Endpoint, ...]:
    wh = spec.warehouse
    return (Endpoint(wh.host, wh.port),) if isinstance(wh, PostgresWarehouse) else ()


def org_policy(
    spec: OrgSpec,
    *,
    read_only: Iterable[Path | str] = (),
    env: Iterable[str] = (),
    egress: bool = False,
    cwd: Path | str | None = None,
    warehouse: bool = True,
) -> Policy:
    """What a call of the organization's tenant code may use. ``warehouse`` reaches its warehouse;
    ``egress`` the public internet through the proxy (BigQuery always needs it)."""
    from dalgo_core.warehouse.profiles import secret_env_names

    return Policy(
        org=spec.slug,
        root=str(layout.org_root(spec.slug)),
        read_only=existing(read_only),
        env=tuple(dict.fromkeys([*secret_env_names(spec), *env])),
        endpoints=warehouse_endpoints(spec) if warehouse else (),
        egress=egress or (warehouse and isinstance(spec.warehouse, BigQueryWarehouse)),
        cwd=str(cwd) if cwd else None,
    )
