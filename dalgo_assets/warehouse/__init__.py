"""An organization's warehouse: its dbt profile and the Dagster resource that connects to it."""

from dalgo_assets.warehouse.profiles import dbt_profile, secret_env_names, write_profiles
from dalgo_assets.warehouse.resources import WarehouseResource, warehouse_resources

__all__ = ["WarehouseResource", "dbt_profile", "secret_env_names", "warehouse_resources", "write_profiles"]
