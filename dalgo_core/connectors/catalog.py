"""The connector catalog: the Airbyte source connectors an organization may use.

A curated default set (``curated.csv``: Airbyte's Python connectors that install from PyPI and matter to
NGOs, each pinned to a version that installs on the platform's Python), to which platform operators add
their own connectors (a PyPI package and a version). Each entry names its connector (the command the
package installs, e.g. ``source-file``), the package and version to install, and where it is documented;
its configuration form is the connector's own ``spec``, read once per version. The platform's own
database and files sources (``builtin``) join them, their form known at once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from dalgo_core.connectors.install import package_name

CURATED_FILE = Path(__file__).with_name("curated.csv")
DOCS = "https://docs.airbyte.com/integrations/sources/"


@dataclass(frozen=True)
class ConnectorDef:
    connector: str  # the command, e.g. source-file
    version: str
    title: str
    description: str = ""
    package: str = ""  # default airbyte-<connector>
    documentation_url: str = ""
    custom: bool = False  # added by an operator
    engine: Literal["airbyte", "dlt"] = "airbyte"  # dlt: the platform's own database and files sources

    @property
    def pypi_package(self) -> str:
        return self.package or package_name(self.connector)

    @property
    def docs(self) -> str:
        return self.documentation_url or DOCS + self.connector.removeprefix("source-")


@cache
def curated() -> tuple[ConnectorDef, ...]:
    """The default catalog, in the order of ``curated.csv``."""
    with CURATED_FILE.open(newline="") as handle:
        return tuple(
            ConnectorDef(
                connector=row["connector"], version=row["version"], title=row["title"], description=row["description"]
            )
            for row in csv.DictReader(handle)
        )


def find(catalog: list[ConnectorDef] | tuple[ConnectorDef, ...], connector: str) -> ConnectorDef | None:
    return next((c for c in catalog if c.connector == connector), None)
