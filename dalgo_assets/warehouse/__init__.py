"""An organization's warehouse as Dagster resources (its dbt profile is ``dalgo_core.warehouse.profiles``)."""

from dalgo_assets.warehouse.resources import WarehouseResource, warehouse_resources

__all__ = ["WarehouseResource", "warehouse_resources"]
