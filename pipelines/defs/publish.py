"""Publish asset: swap the freshly built warehouse in for the served one, atomically.

See `pipelines.lib.publish` for why the served file is never written in place.
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from pipelines.defs.transform.dbt import dbt_models
from pipelines.lib.dbt import build_path
from pipelines.lib.publish import publish
from pipelines.lib.settings import get_settings


@asset(
    key=AssetKey(["warehouse", "published"]),
    deps=[dbt_models],
    group_name="publish",
    description="The served warehouse file; replaced only after dbt build and its tests pass.",
    kinds={"duckdb"},
)
def published_warehouse(context: AssetExecutionContext) -> MaterializeResult:
    s = get_settings()
    keep = int(s.section("publish").get("keep_versions", 3))
    marts = publish(build_path(s), s.warehouse_path, keep=keep)
    context.log.info(f"published {s.warehouse_path} ({len(marts)} mart tables)")
    return MaterializeResult(
        metadata={"path": str(s.warehouse_path), "mart_tables": len(marts), "rows": dict(marts)}
    )
