"""How an organization's dbt nodes become Dagster assets.

- models, seeds and snapshots: ``<org>/<dbt project>/<name>``, grouped per project;
- a dbt source whose table another part of the organization builds (an ingestion stream, or a model
  of another dbt project) takes that asset's key, which makes the edge in the lineage;
- any other source stays an external upstream asset ``<org>/source/<source name>/<table>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from dalgo_assets.transform.dbt_integration import DagsterDbtTranslator, DagsterDbtTranslatorSettings
from dalgo_core.names import ORG_TAG

# A table in the warehouse, as dbt names it: (schema, identifier), lower-cased.
Relation = tuple[str, str]
# Who builds each relation: (the builder's namespace, e.g. a dbt project or a connection, its asset key).
RelationIndex = Mapping[Relation, tuple[str, dg.AssetKey]]

BUILDING_TYPES = ("model", "seed", "snapshot")


def relation_of(props: Mapping[str, Any]) -> Relation:
    if props["resource_type"] == "source":
        name = props.get("identifier") or props["name"]
    else:
        name = props.get("alias") or props["name"]
    return (str(props["schema"]).lower(), str(name).lower())


def model_key(org: str, project: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([org, project, name])


def dbt_relations(org: str, project: str, manifest: Mapping[str, Any]) -> dict[Relation, tuple[str, dg.AssetKey]]:
    """The relations a dbt project builds, for the other projects' sources to find."""
    return {
        relation_of(node): (project, model_key(org, project, node["name"]))
        for node in manifest["nodes"].values()
        if node["resource_type"] in BUILDING_TYPES
    }


class OrgDbtTranslator(DagsterDbtTranslator):
    def __init__(self, org: str, project: str, relations: RelationIndex):
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.org = org
        self.project = project
        self.relations = relations

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        props = dbt_resource_props
        if props["resource_type"] != "source":
            return model_key(self.org, self.project, props["name"])
        builder = self.relations.get(relation_of(props))
        if builder is not None and builder[0] != self.project:
            return builder[1]
        explicit = (props.get("meta") or {}).get("dagster", {}).get("asset_key")
        if explicit:
            return dg.AssetKey([self.org, *explicit])
        return dg.AssetKey([self.org, "source", props["source_name"], props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return f"{self.org}_{self.project}"

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), ORG_TAG: self.org, "dalgo/dbt_project": self.project}
