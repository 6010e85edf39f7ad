"""The DuckDB side of the raw layer: views over the append-only Parquet files.

The raw layer is Parquet on disk (engine-neutral: Spark reads the same files); the
warehouse exposes it as `raw.*` views so dbt sources are ordinary relations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from pipelines.lib.mappings import QUARANTINE_COLUMNS, Entity, empty_select, load_entities

MANIFEST_COLUMNS = {
    "load_id": "VARCHAR",
    "loaded_at": "TIMESTAMP",
    "source_system": "VARCHAR",
    "entity": "VARCHAR",
    "table_name": "VARCHAR",
    "source_file": "VARCHAR",
    "file_name": "VARCHAR",
    "file_sha256": "VARCHAR",
    "file_bytes": "BIGINT",
    "encoding": "VARCHAR",
    "status": "VARCHAR",
    "rows_read": "BIGINT",
    "rows_loaded": "BIGINT",
    "rows_quarantined": "BIGINT",
    "freshness_at": "TIMESTAMP",
    "partition_start": "DATE",
    "partition_end": "DATE",
    "file_key": "VARCHAR",
}

DELIVERY_COLUMNS = {
    "load_id": "VARCHAR",
    "seen_at": "TIMESTAMP",
    "source_system": "VARCHAR",
    "source_file": "VARCHAR",
    "file_sha256": "VARCHAR",
    "duplicate_of": "VARCHAR",
}


# --- data-quality check results (written by pipelines.lib.quality) -----------------------
CHECK_RESULT_COLUMNS = {
    "run_id": "VARCHAR",
    "checked_at": "TIMESTAMP",
    "layer": "VARCHAR",
    "source_system": "VARCHAR",
    "table_name": "VARCHAR",
    "load_id": "VARCHAR",
    "check_name": "VARCHAR",
    "expectation": "VARCHAR",
    "severity": "VARCHAR",
    "passed": "BOOLEAN",
    "element_count": "BIGINT",
    "unexpected_count": "BIGINT",
    "unexpected_percent": "DOUBLE",
    "observed": "VARCHAR",
    "details": "VARCHAR",
}


def checks_dir(data_dir: Path) -> Path:
    return data_dir / "checks"


# --- end data-quality check results -------------------------------------------------------


def raw_dir(data_dir: Path, entity: Entity) -> Path:
    return data_dir / "raw" / entity.system / entity.name


def quarantine_dir(data_dir: Path) -> Path:
    return data_dir / "quarantine"


def manifest_dir(data_dir: Path) -> Path:
    return data_dir / "manifest"


def deliveries_dir(data_dir: Path) -> Path:
    return data_dir / "deliveries"


def sql_str(value: str) -> str:
    """`value` as a SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """`name` as a quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _parquet_view(files_glob: Path, columns: dict[str, str], has_files: bool) -> str:
    if not has_files:
        return empty_select(columns)
    cols = ", ".join(f'cast("{n}" as {t}) as "{n}"' for n, t in columns.items())
    return f"select {cols} from read_parquet({sql_str(str(files_glob))}, union_by_name = true)"


def create_raw_views(
    con: duckdb.DuckDBPyConnection, data_dir: Path, entities: list[Entity]
) -> None:
    """(Re)create `raw.<system>__<entity>`, `raw.quarantine`, `raw.load_manifest`,
    `raw.file_delivery` and `raw.check_results`."""
    con.execute("create schema if not exists raw")
    for ent in entities:
        d = raw_dir(data_dir, ent)
        has = d.is_dir() and any(d.glob("*.parquet"))
        con.execute(
            f'create or replace view raw."{ent.table}" as '
            + _parquet_view(d / "*.parquet", ent.raw_schema(), has)
        )
    q = quarantine_dir(data_dir)
    has_q = q.is_dir() and any(q.rglob("*.parquet"))
    con.execute(
        "create or replace view raw.quarantine as "
        + _parquet_view(q / "**" / "*.parquet", QUARANTINE_COLUMNS, has_q)
    )
    # --- data-quality check results ---
    c = checks_dir(data_dir)
    has_c = c.is_dir() and any(c.rglob("*.parquet"))
    con.execute(
        "create or replace view raw.check_results as "
        + _parquet_view(c / "**" / "*.parquet", CHECK_RESULT_COLUMNS, has_c)
    )
    # --- end data-quality check results ---
    for view, folder, columns in (
        ("load_manifest", manifest_dir(data_dir), MANIFEST_COLUMNS),
        ("file_delivery", deliveries_dir(data_dir), DELIVERY_COLUMNS),
    ):
        has_m = folder.is_dir() and any(folder.glob("*.json"))
        if has_m:
            cols = ", ".join(f'cast("{n}" as {t}) as "{n}"' for n, t in columns.items())
            type_map = "{" + ", ".join(f"'{n}': '{t}'" for n, t in columns.items()) + "}"
            sql = (
                f"select {cols} from read_json({sql_str(str(folder / '*.json'))}, "
                f"columns = {type_map}, format = 'newline_delimited')"
            )
        else:
            sql = empty_select(columns)
        con.execute(f"create or replace view raw.{view} as {sql}")


def main() -> None:
    """`python -m pipelines.lib.warehouse FILE`: create the raw views in a warehouse file."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--sources", type=Path, default=Path("sources"))
    parser.add_argument("--config", type=Path, help="configuration folder (its sources/)")
    args = parser.parse_args()
    con = duckdb.connect(str(args.warehouse))
    create_raw_views(con, args.data.resolve(), load_entities(args.sources, args.config))
    con.close()


if __name__ == "__main__":
    main()
