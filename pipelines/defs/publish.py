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
        served = settings.warehouse_path
        keep = int(settings.section("publish").get("keep_versions", 3))
        marts = publish(build_path(settings), served, keep=keep)
        context.log.info(f"published {served} ({len(marts)} mart tables)")
        return MaterializeResult(
            metadata={"path": str(served), "mart_tables": len(marts), "rows": dict(marts)}
        )

    return published_warehouse
