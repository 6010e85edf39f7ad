"""dbt models as Dagster assets (dbt tests appear as asset checks)."""

import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pipelines.lib.dbt import (
    build_path,
    dbt_build_args,
    dbt_env,
    ensure_manifest,
    guarded_dbt_executable,
)
from pipelines.lib.mappings import load_entities
from pipelines.lib.settings import get_settings
from pipelines.lib.warehouse import create_raw_views


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


settings = get_settings()
dbt_project = DbtProject(
    project_dir=settings.dbt_project_dir, profiles_dir=settings.dbt_project_dir
)
ensure_manifest(settings)


def prepare_build_file() -> None:
    """Start the build file from the served warehouse (or empty) with fresh raw views."""
    s = get_settings()
    build = build_path(s)
    for leftover in (build, build.with_name(build.name + ".wal")):
        leftover.unlink(missing_ok=True)
    if s.warehouse_path.exists():
        shutil.copyfile(s.warehouse_path, build)
    con = duckdb.connect(str(build))
    try:
        create_raw_views(con, s.data_dir, load_entities(s.sources_dir, s.config_dir))
    finally:
        con.close()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[object]:
    s = get_settings()
    prepare_build_file()
    os.environ.update(dbt_env(s, build_path(s)))
    yield from dbt.cli(dbt_build_args(s), context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(settings.dbt_project_dir),
        dbt_executable=guarded_dbt_executable(),
    )
