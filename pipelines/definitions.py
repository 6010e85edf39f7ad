"""Assembles the Dagster Definitions; nothing else lives here."""

from dagster import Definitions, define_asset_job

from pipelines.defs.ingest import ingest_assets
from pipelines.defs.publish import published_warehouse
from pipelines.defs.transform.dbt import dbt_models, dbt_resource

full_refresh = define_asset_job(
    "full_refresh",
    selection="*",
    description="Ingest every landed file, run checks, build dbt, publish the warehouse.",
)

defs = Definitions(
    assets=[*ingest_assets(), dbt_models, published_warehouse],
    jobs=[full_refresh],
    resources={"dbt": dbt_resource()},
)
