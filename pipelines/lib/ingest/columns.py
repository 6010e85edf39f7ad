"""The column plan and typed SQL of an ingest: how a file's header is matched to the mapped
columns (`_column_plan`), the DuckDB expression that types each value and names the reason a bad
one is quarantined (`_typed_expr`, with the mapping key a user changes), and loading the prepared
file into DuckDB as all-text columns (`_load_into_duckdb`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lib.ingest.identity import duck_path
from pipelines.lib.ingest.options import IngestError, Prepared
from pipelines.lib.ingest.readers import _formats
from pipelines.lib.mappings import Column, Entity
from pipelines.lib.settings import PROJECT_ROOT
from pipelines.lib.warehouse import sql_str

NBSP = "\u00a0"
NNBSP = "\u202f"


def _norm_header(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("\ufeff", "").replace(NBSP, " ")).strip().casefold()


def _read_header(prep: Prepared) -> list[str]:
    enc = "utf-8-sig" if prep.encoding == "utf-8" else "latin-1"
    with prep.path.open("r", encoding=enc, errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=prep.delimiter, quotechar='"')
        return next(reader, [])


def definition_shown(entity: Entity) -> str:
    """The mapping file of an entity as messages show it: relative to the project (shipped
    mappings) or to the working directory when possible, else in full."""
    path = entity.definition_file
    if path is None:
        return "its mapping"
    for base in (PROJECT_ROOT, Path.cwd()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _hint(entity: Entity, col: Column, key: str, verb: str = "set") -> str:
    """The mapping key a user changes for a row error of `col`, as a message suffix:
    ` (set `format:` of salesforce.lead.created_date in sources/salesforce/source.yml)`."""
    where = f"{entity.system}.{entity.name}.{col.name}"
    return f" ({verb} `{key}` of {where} in {definition_shown(entity)})"


def _col_formats(col: Column, entity: Entity) -> list[str]:
    """A column's date/timestamp formats, tried in order: its own `format:`, else the
    entity's `date_format`/`timestamp_format` (a date column also tries timestamp formats)."""
    if col.formats:
        return list(col.formats)
    fmts = _formats(entity, col.type)
    if col.type == "date" and entity.options.get("timestamp_format"):
        fmts = fmts + [f for f in _formats(entity, "timestamp") if f not in fmts]
    return fmts


def _typed_expr(col: Column, src: str, entity: Entity) -> tuple[str, str]:
    """SQL for (typed value, error message or NULL) of one canonical column.

    Every message starts with the column and the value and ends with the mapping key to
    change: `CreatedDate: '2023-02-07 20:47:49' does not match %Y-%m-%d (set `format:` of
    salesforce.opportunity.created_date in sources/salesforce/source.yml)`.
    """
    v = f"nullif(trim({src}), '')"
    label = col.label
    shown = f"'{label.replace(chr(39), chr(39) * 2)}: '"
    bad = f"{shown} || '''' || {v} || ''''"
    dsep = entity.options.get("decimal_separator", ".")

    def tail(key: str, verb: str = "set") -> str:
        return sql_str(_hint(entity, col, key, verb))

    if col.type == "string":
        if col.values:
            cases = " ".join(
                f"when {sql_str(str(k).lower())} then {sql_str(str(t))}"
                for k, t in col.values.items()
            )
            val = f"case lower({v}) {cases} end"
            allowed = sql_str(", ".join(str(k) for k in col.values))
            err = (
                f"case when {v} is not null and {val} is null then {bad} || ' is not one of: ' "
                f"|| {allowed} || {tail('values:', 'add it to')} end"
            )
            return val, err
        return v, "null"
    if col.type in {"int", "number", "decimal"}:
        num = f"replace(replace(replace(replace({v}, ' ', ''), '{NBSP}', ''), '{NNBSP}', ''), '''', '')"
        if dsep == ",":
            num = f"replace(replace({num}, '.', ''), ',', '.')"
        val = f"try_cast({num} as {col.duckdb_type})"
        what = "an integer" if col.type == "int" else "a number"
        err = (
            f"case when {v} is not null and {val} is null then {bad} || ' is not {what}' "
            f"|| {tail('null_values:', 'fix the file, or set')} end"
        )
    elif col.type in {"date", "timestamp"}:
        fmts = _col_formats(col, entity)
        lst = "[" + ", ".join(sql_str(f) for f in fmts) + "]"
        val = f"try_strptime({v}, {lst})"
        if col.type == "date":
            val = f"cast({val} as date)"
        shown_fmt = sql_str(" or ".join(fmts))
        err = (
            f"case when {v} is not null and {val} is null then {bad} || ' does not match ' "
            f"|| {shown_fmt} || {tail('format:')} end"
        )
        lo, hi = "1990-01-01", "2100-01-01"
        err = (
            f"coalesce({err}, case when {val} < date '{lo}' or {val} >= date '{hi}' "
            f"then {bad} || ' is outside {lo}..{hi}' || {tail('format:', 'check')} end)"
        )
    elif col.type == "bool":
        t = ", ".join(sql_str(x) for x in entity.options.get("true_values", ["true", "1", "yes"]))
        f = ", ".join(sql_str(x) for x in entity.options.get("false_values", ["false", "0", "no"]))
        val = f"case when lower({v}) in ({t}) then true when lower({v}) in ({f}) then false end"
        err = (
            f"case when {v} is not null and {val} is null then {bad} || ' is not a boolean' "
            f"|| {tail('null_values:', 'set options.true_values/false_values or')} end"
        )
    else:  # pragma: no cover - mappings.py validates types
        raise IngestError(f"unknown type {col.type}")
    if col.min is not None:
        err = (
            f"coalesce({err}, case when {val} < {col.min} then {bad} || ' is below {col.min}' "
            f"|| {tail('min:', 'fix the file, or change')} end)"
        )
    return val, err


@dataclass
class _ColSQL:
    """One canonical column of a file: its typed value and row error (SQL), and the
    source columns it reads that the file lacks."""

    column: Column
    value: str  # typed value; a typed NULL when the file has nothing for it
    error: str  # row error message (SQL, NULL when fine) or "null"
    missing: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    columns: list[_ColSQL]
    missing_required: list[str]  # required source columns absent (no default): file reason
    warnings: list[str]
    used: set[str]  # normalised names of the source columns the mapping reads

    @property
    def by_name(self) -> dict[str, _ColSQL]:
        return {c.column.name: c for c in self.columns}


def _is_literal(part: object) -> bool:
    """In `concat:`, literal text is `{text: ...}` or an item without letters or digits
    (`" "`, `", "`, `" - "`); any other item names a source column."""
    if isinstance(part, dict):
        return True
    return isinstance(part, str) and not any(ch.isalnum() for ch in part)


class _Refs:
    """Source column references of one canonical column over `src` (c0..cN)."""

    def __init__(self, by_norm: dict[str, int], nulls: list[str], used: set[str]) -> None:
        self.by_norm, self.nulls, self.used = by_norm, nulls, used
        self.missing: list[str] = []

    def column(self, source: str) -> str | None:
        """A source column's text with null sentinels read as NULL; None when absent."""
        norm = _norm_header(source)
        self.used.add(norm)
        idx = self.by_norm.get(norm)
        if idx is None:
            self.missing.append(source)
            return None
        sql = f"c{idx}"
        if self.nulls:
            listed = ", ".join(sql_str(n) for n in self.nulls)
            sql = f"(case when trim({sql}) in ({listed}) then null else {sql} end)"
        return sql

    def derived(self, spec: dict[str, Any]) -> str:
        """The text of a derived value: constant, source, regex extract or concat."""
        if "constant" in spec:
            return sql_str(str(spec["constant"]))
        if "source" in spec:
            return self.column(str(spec["source"])) or "null"
        if "regex" in spec:
            rx = spec["regex"]
            src = self.column(str(rx["source"]))
            if src is None:
                return "null"
            pattern = str(rx["pattern"])
            group = 1 if re.compile(pattern).groups else 0
            return f"nullif(regexp_extract({src}, {sql_str(pattern)}, {group}), '')"
        parts = []
        for part in spec["concat"]:
            if _is_literal(part):
                text = part["text"] if isinstance(part, dict) else part
                parts.append(sql_str(str(text)))
            else:
                parts.append(f"coalesce({self.column(str(part)) or 'null'}, '')")
        sep = spec.get("separator")
        if sep is None:
            return f"nullif(trim(concat({', '.join(parts)})), '')"
        trimmed = ", ".join(f"nullif(trim({p}), '')" for p in parts)
        return f"nullif(concat_ws({sql_str(str(sep))}, {trimmed}), '')"


def _column_plan(entity: Entity, names: list[str], prep: Prepared) -> _Plan:
    """The SQL of every canonical column over `src` (c0..cN): the source column (null
    sentinels read as NULL) or a derived value (concat, regex, constant), then the
    `default:` where that is missing or empty; typed and checked by `_typed_expr`."""
    by_norm: dict[str, int] = {}
    for i, name in enumerate(names):
        by_norm.setdefault(_norm_header(name), i)
    base_nulls = [str(v) for v in entity.options.get("null_values") or []]
    plan = _Plan([], [], [], set())
    for col in entity.columns:
        refs = _Refs(by_norm, base_nulls + list(col.null_values), plan.used)
        source = col.source or col.name
        if col.derived is not None:
            raw: str | None = refs.derived(col.derived)
            absent = False
        else:
            raw = refs.column(source)
            absent = raw is None
        if col.default is not None:
            before = len(refs.missing)
            dflt = (
                refs.derived(col.default)
                if isinstance(col.default, dict)
                else sql_str(str(col.default))
            )
            raw = f"coalesce(nullif(trim({raw}), ''), {dflt})" if raw else dflt
            absent = absent and len(refs.missing) > before  # the default stands in
        if absent and col.required:
            plan.missing_required.append(source)
        elif prep.header:  # a headerless file lacks what its declared layout lacks
            for m in refs.missing:
                if m == source and col.derived is None and col.default is None:
                    plan.warnings.append(f"column {m!r} is missing; loaded as empty")
                elif absent or col.default is None:
                    plan.warnings.append(f"column {m!r} is missing; read as empty in {col.name}")
        if raw is None:
            plan.columns.append(
                _ColSQL(col, f"cast(null as {col.duckdb_type})", "null", refs.missing)
            )
            continue
        val, err = _typed_expr(col, raw, entity)
        errs = [err] if err != "null" else []
        if col.required:
            hint = _hint(entity, col, "default:", "fix the file, or set")
            errs.append(
                f"case when nullif(trim({raw}), '') is null then "
                f"{sql_str(col.label + ': required value is empty' + hint)} end"
            )
        error = f"coalesce({', '.join(errs)})" if len(errs) > 1 else (errs[0] if errs else "null")
        plan.columns.append(_ColSQL(col, val, error, refs.missing))
    return plan


def _load_into_duckdb(
    con: duckdb.DuckDBPyConnection, prep: Prepared, entity: Entity, path: Path
) -> tuple[list[str], str | None]:
    """Scan the prepared file into temp table `src` (c0..cN VARCHAR) and `rej` (rejects).

    Returns the source column names in file order and a file-level reason when the file's
    columns do not fit the mapping at all.
    """
    if prep.header:
        header = _read_header(prep)
        names = [h.replace("\ufeff", "") for h in header]
    else:
        first = _read_first_record(prep)
        layouts = [list(lay) for lay in entity.layouts] or [[c.name for c in entity.columns]]
        fitting = [lay for lay in layouts if len(lay) == len(first)]
        names = fitting[0] if fitting else max(layouts, key=len)
    ncols = max(len(names), 1)
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols)) + "}"
    con.execute(
        f"""
        create or replace temp table src as
        select * from read_csv({sql_str(duck_path(prep.path))},
            columns = {cols}, header = {str(prep.header).lower()},
            delim = {sql_str(prep.delimiter)}, quote = '"', escape = '"',
            encoding = {sql_str(prep.encoding)}, auto_detect = false,
            store_rejects = true, rejects_table = 'rej_t', rejects_scan = 'rej_s',
            max_line_size = 33554432)
        """
    )
    con.execute(
        "create or replace temp table rej as "
        "select line, min(error_type) as error_type, any_value(csv_line) as csv_line, "
        "string_agg(distinct error_message, '; ') as error_message from rej_t group by line"
    )
    con.execute("drop table if exists rej_t; drop table if exists rej_s")
    reason = None
    if not prep.header and not any(len(lay) == len(names) for lay in entity.layouts or ()):
        if entity.layouts:
            reason = f"{len(_read_first_record(prep))} fields per row fit no declared layout"
    return names, reason


def _read_first_record(prep: Prepared) -> list[str]:
    with prep.path.open("r", encoding=prep.encoding, errors="replace", newline="") as fh:
        return next(csv.reader(fh, delimiter=prep.delimiter, quotechar='"'), [])
