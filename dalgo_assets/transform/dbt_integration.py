"""dagster-dbt as the definitions use it: imported in its own mode without dbt-core.

dagster-dbt imports dbt-core (its manifest contracts, adapters, agate, mashumaro, protobuf: about 30 MB
of every code server and run worker, and its graph selector at each load) only to evaluate a dbt
selection and to name dbt's statuses. Without dbt-core (its dbt Fusion mode, ``dagster_dbt.compat``) it
takes the default selection (``fqn:*``, the only one used here) straight from the manifest's nodes and
uses its own status enums, the same strings. Definitions never run dbt in-process: dbt runs as
``dalgo-dbt``, a subprocess in the organization's sandbox, which dagster-dbt's resource reads the same
in either mode. So dagster-dbt is imported here with ``dbt.version`` hidden (a ``None`` in
``sys.modules`` makes that import fail, Python's own way to block one); dbt-core stays importable for
the rest of the process (``dalgo prepare`` reads its version).

Every module of ``dalgo_assets`` imports dagster-dbt through this one (import-linter enforces it), so
the mode does not depend on which module happens to be imported first.
"""

from __future__ import annotations

import sys
from typing import Any

_PROBE = "dbt.version"  # what dagster_dbt.compat imports to find dbt-core


def _import_without_dbt_core() -> Any:
    if "dagster_dbt" in sys.modules:  # imported already (by this module, or by a caller of dagster-dbt)
        return sys.modules["dagster_dbt"]
    saved = sys.modules.get(_PROBE)
    sys.modules[_PROBE] = None  # type: ignore[assignment]
    try:
        import dagster_dbt
    finally:
        if saved is None:
            del sys.modules[_PROBE]
        else:
            sys.modules[_PROBE] = saved
    return dagster_dbt


_import_without_dbt_core()

from dagster_dbt import (  # noqa: E402
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets  # noqa: E402
from dagster_dbt.compat import DBT_PYTHON_VERSION  # noqa: E402

# True in every process whose first import of dagster-dbt was this module's
WITHOUT_DBT_CORE = DBT_PYTHON_VERSION is None

__all__ = [
    "WITHOUT_DBT_CORE",
    "DagsterDbtTranslator",
    "DagsterDbtTranslatorSettings",
    "DbtCliInvocation",
    "DbtCliResource",
    "DbtProject",
    "dbt_assets",
    "get_manifest_and_translator_from_dbt_assets",
]
