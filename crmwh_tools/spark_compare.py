"""Marts built on Spark against DuckDB's, row by row (the Spark tests and the Spark bench).

Spark's tables are Parquet folders in its warehouse (`<warehouse>/marts.db/<table>/`);
DuckDB reads them back, so both sides go through the same reader and the same
normalisation: money to the cent, other decimals to 1e-6, floats within 1e-9 relative,
timestamps naive UTC (Spark writes UTC-adjusted instants; its session zone is UTC).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import duckdb

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def normalise(value: object) -> object:
    """One representation per value across engines (see the module docstring)."""
    if isinstance(value, Decimal):
        return value.quantize(CENT if value.as_tuple().exponent >= -2 else MICRO)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def sort_key(row: tuple) -> tuple:
    """A total order over rows of mixed types and nulls (floats to 3 places)."""
    return tuple(
        (0, "") if v is None else (1, f"{v:.3f}") if isinstance(v, float) else (1, str(v))
        for v in row
    )


def same_value(a: object, b: object) -> bool:
    """Equal after normalisation; floats within 1e-9 relative (1e-6 absolute)."""
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def sorted_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return sorted(
        (tuple(normalise(v) for v in row) for row in con.execute(sql).fetchall()),
        key=sort_key,
    )


def duckdb_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' "
        "and table_type = 'BASE TABLE' order by 1").fetchall()]  # fmt: skip


def compare_marts(
    duckdb_file: Path, spark_marts: Path, tables: Iterable[str] | None = None
) -> tuple[list[str], int]:
    """Every table of schema `marts` of `duckdb_file` (or those of `tables`) against its
    Parquet folder under `spark_marts`: (the differences, one line per differing table;
    rows compared)."""
    con = duckdb.connect(str(duckdb_file), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    differences, compared_rows = [], 0
    try:
        for table in duckdb_marts(con) if tables is None else sorted(tables):
            folder = spark_marts / table
            if not folder.is_dir():
                differences.append(f"{table}: not built on Spark")
                continue
            duck_cols = [r[0] for r in con.execute(f"describe marts.{table}").fetchall()]
            # a partitioned table (incremental models on Spark) keeps its partition column
            # in the folder names (`paid_on=2025-01-03/`) and last in its schema: read it
            # back from there and compare in DuckDB's column order
            files = sorted(str(p) for p in folder.rglob("*.parquet"))
            spark_rows: list[tuple] = []
            spark_cols = duck_cols
            if files:
                source = f"read_parquet({files!r}, hive_partitioning = true)"
                spark_cols = [
                    r[0] for r in con.execute(f"describe select * from {source}").fetchall()
                ]
                if sorted(spark_cols) == sorted(duck_cols):
                    listed = ", ".join(f'"{c}"' for c in duck_cols)
                    spark_rows = sorted_rows(con, f"select {listed} from {source}")
            if sorted(spark_cols) != sorted(duck_cols):
                differences.append(f"{table}: columns {spark_cols} on Spark, {duck_cols} on DuckDB")
                continue
            duck_rows = sorted_rows(con, f"select * from marts.{table}")
            if len(spark_rows) != len(duck_rows):
                differences.append(
                    f"{table}: {len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB"
                )
                continue
            for d_row, s_row in zip(duck_rows, spark_rows, strict=True):
                bad = [
                    f"{col}: duckdb={d!r} spark={s!r}"
                    for col, d, s in zip(duck_cols, d_row, s_row, strict=True)
                    if not same_value(d, s)
                ]
                if bad:
                    differences.append(f"{table}: first differing row: " + "; ".join(bad[:6]))
                    break
            compared_rows += len(duck_rows)
    finally:
        con.close()
    return differences, compared_rows
