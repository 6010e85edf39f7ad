"""What a run summary says about a failed dbt node, and about values that did not convert.

A model that fails on a value (a bug: every conversion of source text is a `try_cast`)
is reported in a few lines: the model, the error's first line, and — when the error
quotes a value — the raw tables, columns, files and lines where that value came from,
found by looking the value up in the raw tables upstream of the model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from pipelines.lib.warehouse import sql_ident

# the value a DuckDB or Spark error quotes: Could not convert string 'x' to INT64,
# [CAST_INVALID_INPUT] The value 'x' of the type "STRING" cannot be cast to "BIGINT"
_QUOTED = re.compile(r"(?:string|value) '([^']{1,200})'", re.IGNORECASE)


def quoted_value(message: str) -> str | None:
    """The offending value an error message quotes, if any."""
    m = _QUOTED.search(message)
    return m.group(1) if m else None


def upstream_raw_tables(manifest: dict, unique_id: str) -> list[str]:
    """Names of the raw tables (dbt sources of schema raw) the node reads, directly or not."""
    parents = manifest.get("parent_map") or {}
    seen: set[str] = set()
    todo = [unique_id]
    raw: set[str] = set()
    while todo:
        node = todo.pop()
        for parent in parents.get(node, []):
            if parent in seen:
                continue
            seen.add(parent)
            if parent.startswith("source."):
                raw.add(parent.rsplit(".", 1)[-1])
            else:
                todo.append(parent)
    return sorted(raw)


def find_value(con: duckdb.DuckDBPyConnection, tables: list[str], value: str) -> list[str]:
    """Where `value` stands in the text columns of `raw.<table>`: one line per column,
    with the first file and line."""
    found: list[str] = []
    for table in tables:
        cols = con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' "
            "and table_name = ? and data_type = 'VARCHAR' and column_name not like '\\_%' "
            "escape '\\'",
            [table],
        ).fetchall()
        for (col,) in cols:
            row = con.execute(
                f"select count(*), min(_source_file), arg_min(_line, (_source_file, _line)) "
                f"from raw.{sql_ident(table)} where {sql_ident(col)} = ? or {sql_ident(col)} like ?",
                [value, f"%{value}%"],
            ).fetchone()
            if row and row[0]:
                found.append(f"raw.{table}.{col}: {row[0]} row(s), first in {row[1]} line {row[2]}")
    return found


def explain_failed_node(
    unique_id: str, message: str, manifest_file: Path | None, warehouse: Path | None
) -> list[str]:
    """A few lines naming the model, the error and the source of the value it quotes."""
    first = " ".join(message.split())
    lines = [f"{unique_id.split('.')[-1]}: {first[:300]}"]
    value = quoted_value(message)
    if value is None or manifest_file is None or warehouse is None or not warehouse.exists():
        return lines
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        tables = upstream_raw_tables(manifest, unique_id)
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            where = find_value(con, tables, value)
        finally:
            con.close()
    except (OSError, ValueError, duckdb.Error) as exc:  # a diagnosis must not hide the error
        return [*lines, f"  (could not look the value up: {exc})"]
    lines.append(f"  value {value!r} comes from:" if where else f"  value {value!r}: not found "
                 f"in the raw tables upstream ({', '.join(tables) or 'none'})")  # fmt: skip
    lines += [f"    {w}" for w in where[:5]]
    return lines


def unparsed_value_lines(warehouse: Path) -> list[str]:
    """One line per table and column with values that did not convert (null where used)."""
    if not warehouse.exists():
        return []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'intermediate' and table_name = 'int_unparsed_values'"
        ).fetchone()[0]
        if not exists:
            return []
        rows = con.execute(
            "select table_name, column_name, sum(unparsed_count), "
            "arg_min(example_value, (coalesce(example_source_file, ''), coalesce(example_line, 0))), "
            "min(example_source_file), "
            "arg_min(example_line, (coalesce(example_source_file, ''), coalesce(example_line, 0))) "
            "from intermediate.int_unparsed_values group by 1, 2 order by 3 desc, 1, 2"
        ).fetchall()
    finally:
        con.close()
    out = []
    for table, column, n, example, source_file, line in rows:
        where = f" ({source_file}" + (f", line {line})" if line is not None else ")")
        out.append(f"{table}.{column}: {n:,} value(s), e.g. {example!r}{where}")
    return out
