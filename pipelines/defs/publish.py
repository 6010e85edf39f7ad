"""Publish asset: swap the freshly built warehouse in for the served one, atomically.

See `pipelines.lib.publish` for why the served file is never written in place.
"""

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset

from pipelines.lib.dbt import build_path
from pipelines.lib.publish import publish
from pipelines.lib.settings import Settings


def build_publish_asset(settings: Settings, dbt_models: AssetsDefinition) -> AssetsDefinition:
    """The asset that replaces `settings.warehouse_path` with the build of `dbt_models`."""

    @asset(
        key=AssetKey(["warehouse", "published"]),
        deps=[dbt_models],
        group_name="publish",
        description="The served warehouse file; replaced only after dbt build and its tests pass.",
        kinds={"duckdb"},
    )
    def published_warehouse(context: AssetExecutionContext) -> MaterializeResult:
        if settings.dbt_engine == "spark-thrift":
            return _served_by_thrift(context, settings)
        served = settings.warehouse_path
        keep = int(settings.section("publish").get("keep_versions", 3))
        marts = publish(build_path(settings), served, keep=keep)
        context.log.info(f"published {served} ({len(marts)} mart tables)")
        return MaterializeResult(
            metadata={"path": str(served), "mart_tables": len(marts), "rows": dict(marts)}
        )

    return published_warehouse


def _served_by_thrift(context: AssetExecutionContext, settings: Settings) -> MaterializeResult:
    """dbt built the marts as tables of the Thrift server, which serves them as they are:
    there is no file to swap. Records which tables schema `marts` holds there, and rows."""
    from pipelines.lib.spark import ThriftTarget
    from pipelines.lib.spark_service import thrift_query

    target = ThriftTarget.from_settings(settings)
    tables = [r[1] for r in thrift_query(target, "show tables in marts")]
    rows = {}
    for table in sorted(tables):
        rows[table] = int(thrift_query(target, f"select count(*) from marts.`{table}`")[0][0])
    where = f"{target.host}:{target.port}"
    context.log.info(f"the Spark Thrift server {where} serves {len(rows)} mart tables")
    return MaterializeResult(
        metadata={"thrift_server": where, "mart_tables": len(rows), "rows": rows}
    )
