"""dbt models as Dagster assets (dbt tests appear as asset checks).

Built by `build_dbt_assets(settings)`: nothing runs at import. The manifest is parsed
once when the definitions are built (`ensure_manifest`), and a run's `dbt build` takes
`full_refresh` from the run config (`crmwh run --full-refresh`) or settings.yml.
"""

import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, Failure
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError
from pydantic import Field

from pipelines.lib.child_env import scoped_environ
from pipelines.lib.dbt import (
    build_path,
    dbt_build_args,
    dbt_env,
    ensure_manifest,
    guarded_dbt_executable,
)
from pipelines.lib.mappings import load_entities
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import create_raw_views

DBT_ASSETS_NAME = "dbt_models"


class WarehouseTranslator(DagsterDbtTranslator):
    """dbt sources `raw.<table>` are the ingestion assets; models are `<schema>/<name>`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey(["raw", dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn") or []
        return fqn[1] if len(fqn) > 2 else "dbt"


class DbtBuildConfig(Config):
    """Run config of the dbt step."""

    full_refresh: bool = Field(
        default=False,
        description="Rebuild the incremental models from scratch (also settings.yml "
        "dbt.full_refresh).",
    )


def prepare_build_file(settings: Settings) -> None:
    """Start the build file from the served warehouse (or empty) with fresh raw views."""
    build = build_path(settings)
    for leftover in (build, build.with_name(build.name + ".wal")):
        leftover.unlink(missing_ok=True)
    if settings.warehouse_path.exists():
        shutil.copyfile(settings.warehouse_path, build)
    con = duckdb.connect(str(build))
    try:
        create_raw_views(
            con, settings.data_dir, load_entities(settings.sources_dir, settings.config_dir)
        )
    finally:
        con.close()


def build_dbt_assets(settings: Settings) -> AssetsDefinition:
    """The dbt project as one multi-asset building into `build_path(settings)`."""
    project = DbtProject(
        project_dir=settings.dbt_project_dir, profiles_dir=settings.dbt_project_dir
    )
    manifest = ensure_manifest(settings)

    @dbt_assets(
        name=DBT_ASSETS_NAME,
        manifest=manifest,
        project=project,
        dagster_dbt_translator=WarehouseTranslator(),
    )
    def dbt_models(
        context: AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig
    ) -> Iterator[object]:
        args = dbt_build_args(settings, full_refresh=config.full_refresh or None)
        if settings.dbt_engine == "spark-thrift":
            yield from _build_on_thrift(context, dbt, settings, args)
            return
        prepare_build_file(settings)
        with scoped_environ(dbt_env(settings, build_path(settings))):
            invocation = dbt.cli(args, context=context)
        yield from invocation.stream()

    return dbt_models


def _build_on_thrift(
    context: AssetExecutionContext, dbt: DbtCliResource, settings: Settings, args: list[str]
) -> Iterator[object]:
    """The same `dbt build` over the Spark Thrift server of settings.yml `spark:`: its
    tables are what it serves; no build file, nothing for the publish step to swap."""
    from pipelines.lib.spark import (
        ThriftTarget,
        thrift_build_lock,
        thrift_dbt_args,
        thrift_env,
        thrift_problem,
    )

    problem = thrift_problem(settings)
    if problem:
        raise Failure(description=problem)
    target = ThriftTarget.from_settings(settings)
    context.log.info(
        f"dbt builds on the Spark Thrift server {target.host}:{target.port} "
        f"from {target.raw_location}/raw"
    )
    with thrift_build_lock(settings), scoped_environ(thrift_env(settings, target)):
        invocation = dbt.cli([*args, *thrift_dbt_args(settings)], context=context)
        try:
            yield from invocation.stream()
        except DagsterDbtCliRuntimeError as exc:
            gone = thrift_problem(settings)
            if gone:  # say why every node after it failed, not only that they did
                raise Failure(description=f"the Thrift server stopped answering: {gone}") from exc
            raise


def dbt_resource(settings: Settings) -> DbtCliResource:
    """The `dbt` resource: the project of `settings`, run through the guarded executable."""
    return DbtCliResource(
        project_dir=str(settings.dbt_project_dir),
        profiles_dir=str(settings.dbt_project_dir),
        dbt_executable=guarded_dbt_executable(),
    )
