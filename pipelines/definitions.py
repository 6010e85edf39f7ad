"""Assembles the Dagster Definitions; nothing else lives here."""

from dagster import AssetSelection, Definitions, define_asset_job

from pipelines.defs.automation import (
    build_daily_schedule,
    build_landing_sensor,
    notify_on_run_failure,
)
from pipelines.defs.dashboards import dataset_asset_specs
from pipelines.defs.ingest import ingest_assets
from pipelines.defs.publish import published_warehouse
from pipelines.defs.quality import quality_checks  # data-quality suites (quality/suites.yml)
from pipelines.defs.transform.dbt import dbt_models, dbt_resource

full_refresh = define_asset_job(
    "full_refresh",
    selection=AssetSelection.all() - AssetSelection.groups("dashboards"),
    description=(
        "Ingest the landed files of a range of export-date partitions, run checks, build dbt, "
        "publish the warehouse. Backfill from Assets → Materialize → partition range, not "
        "from this job (docs/operations.md, Backfills)."
    ),
)

defs = Definitions(
    assets=[*ingest_assets(), dbt_models, published_warehouse, *dataset_asset_specs()],
    asset_checks=quality_checks(set(dbt_models.keys)),  # data-quality suites (quality/suites.yml)
    jobs=[full_refresh],
    schedules=[build_daily_schedule(full_refresh)],
    sensors=[build_landing_sensor(full_refresh), notify_on_run_failure],
    resources={"dbt": dbt_resource()},
)
