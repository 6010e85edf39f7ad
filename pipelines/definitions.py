"""Assembles the Dagster Definitions from one settings object; nothing else lives here.

`build_definitions(settings)` is what `crmwh run` and `crmwh backfill` execute, with the
settings the CLI built from its flags. `defs` is the code location the Dagster UI and the
runs it launches load (`dagster dev -m pipelines.definitions`): Dagster calls it when it
loads the location, not at import, and it reads the settings of that process's
environment, which `crmwh serve` sets from its own (`Settings.environment`).
"""

import dagster as dg
from dagster import AssetSelection, Definitions, define_asset_job

from pipelines.defs.automation import (
    build_daily_schedule,
    build_failure_sensor,
    build_landing_sensor,
)
from pipelines.defs.dashboards import dataset_asset_specs
from pipelines.defs.ingest import ingest_assets
from pipelines.defs.publish import build_publish_asset
from pipelines.defs.quality import quality_checks  # data-quality suites (quality/suites.yml)
from pipelines.defs.transform.dbt import build_dbt_assets, dbt_resource
from pipelines.lib.settings import Settings, load_settings

JOB_NAME = "full_refresh"


def build_definitions(settings: Settings) -> Definitions:
    """Every asset, check, job, schedule and sensor, reading and writing where `settings` say."""
    dbt_models = build_dbt_assets(settings)
    full_refresh = define_asset_job(
        JOB_NAME,
        selection=AssetSelection.all() - AssetSelection.groups("dashboards"),
        description=(
            "Ingest the landed files of a range of export-date partitions, run checks, build "
            "dbt, publish the warehouse. Backfill from Assets → Materialize → partition "
            "range, not from this job (docs/operations.md, Backfills)."
        ),
    )
    return Definitions(
        assets=[
            *ingest_assets(settings),
            dbt_models,
            build_publish_asset(settings, dbt_models),
            *dataset_asset_specs(),
        ],
        asset_checks=quality_checks(settings, set(dbt_models.keys)),
        jobs=[full_refresh],
        schedules=[build_daily_schedule(settings, full_refresh)],
        sensors=[build_landing_sensor(settings, full_refresh), build_failure_sensor(settings)],
        resources={"dbt": dbt_resource(settings)},
    )


@dg.definitions
def defs() -> Definitions:
    """The code location of the Dagster UI: the settings of this process's environment."""
    return build_definitions(load_settings())
