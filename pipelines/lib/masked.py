"""The masked warehouse: a second DuckDB file holding only the masked marts, as tables.

SQL Lab users other than Admin are connected to this file whatever database they pick
(``DB_CONNECTION_MUTATOR`` in ``dashboards/server/superset_config.py``), so no SQL they
can write - PIVOT, UNPIVOT, SUMMARIZE, SHOW, table functions - reaches a raw phone or
e-mail: the file has no unmasked table to reach. It is written beside the served
warehouse as ``<stem>.masked.duckdb`` from the ``marts_masked`` views that dbt creates
(``dbt_project/macros/masked_marts.sql``): built under a temporary name, checkpointed,
closed, then ``os.replace``d over the served copy, like the warehouse itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

MASKED_SCHEMA = "marts_masked"
MASKED_SUFFIX = ".masked.duckdb"


def masked_path(warehouse: Path) -> Path:
    """Where the masked copy of ``warehouse`` lives: ``warehouse.duckdb`` ->
    ``warehouse.masked.duckdb`` (same folder, so the swap is an atomic rename)."""
    warehouse = Path(warehouse)
    if warehouse.name.endswith(MASKED_SUFFIX):
        return warehouse
    return warehouse.with_name(warehouse.stem + MASKED_SUFFIX)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_masked(source: Path, dest: Path) -> Path:
    """Write the masked marts of ``source`` to a temporary file next to ``dest``; return it.

    Every relation of schema ``marts_masked`` in ``source`` (views over the marts) becomes
    a table of the same name and schema in the new file; nothing else is copied. The
    caller ``os.replace``s the returned file over ``dest``. ``source`` is only read.
    """
    source, dest = Path(source).resolve(), Path(dest).resolve()
    tmp = dest.with_name(f"{dest.name}.build{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        quoted = str(source).replace("'", "''")
        con.execute(f"attach '{quoted}' as src (read_only)")
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables"
                " where table_catalog = 'src' and table_schema = ? order by 1",
                [MASKED_SCHEMA],
            ).fetchall()
        ]
        con.execute(f"create schema {MASKED_SCHEMA}")
        for name in names:
            con.execute(
                f"create table {MASKED_SCHEMA}.{_quote(name)} as"
                f" select * from src.{MASKED_SCHEMA}.{_quote(name)}"
            )
        con.execute("detach src")
        con.execute("checkpoint")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    return tmp


def write_masked(source: Path, dest: Path | None = None) -> Path:
    """Build the masked copy of ``source`` and swap it in at ``dest`` (default: beside
    ``source``, see ``masked_path``). Returns ``dest``."""
    dest = Path(dest) if dest is not None else masked_path(source)
    os.replace(build_masked(source, dest), dest)
    return dest


def ensure_masked(warehouse: Path) -> Path:
    """The masked copy of ``warehouse``, (re)built when missing or older than it, so a
    warehouse published before masked copies existed, or copied in by hand, still gets
    one."""
    warehouse = Path(warehouse).resolve()
    dest = masked_path(warehouse)
    if not dest.exists() or dest.stat().st_mtime < warehouse.stat().st_mtime:
        write_masked(warehouse, dest)
    return dest
