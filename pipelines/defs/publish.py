"""Publish: swap the freshly built warehouse in for the served one, atomically.

DuckDB allows one writer or many readers per file, so dashboards never read the file
being written: a run builds `<warehouse>.build`, checkpoints and closes it, and only
then `os.replace()`s it over the served file (same folder, so the rename is atomic).
The previous version stays as `<warehouse>.prev` for a manual rollback.
"""

from __future__ import annotations

import os

import duckdb
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from pipelines.defs.transform.dbt import dbt_models
from pipelines.lib.dbt import build_path
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
    build, served = build_path(s), s.warehouse_path
    if not build.exists():
        raise RuntimeError(f"{build} does not exist: nothing was built to publish")
    con = duckdb.connect(str(build))
    try:
        con.execute("checkpoint")
        tables = con.execute(
            "select table_schema || '.' || table_name, estimated_size from duckdb_tables() "
            "where schema_name = 'marts' order by 1"
        ).fetchall()
    finally:
        con.close()
    prev = served.with_name(served.name + ".prev")
    if served.exists():
        prev.unlink(missing_ok=True)
        os.link(served, prev)
    os.replace(build, served)
    context.log.info(f"published {served} ({len(tables)} mart tables)")
    return MaterializeResult(
        metadata={
            "path": str(served),
            "mart_tables": len(tables),
            "rows": {name: int(n) for name, n in tables},
        }
    )
