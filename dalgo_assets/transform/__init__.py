"""dbt projects as assets: prepared manifests, the organization translator, maintenance jobs."""
