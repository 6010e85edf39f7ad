"""The export dates a landed file covers, its partition for daily runs and backfills: from
its name (YYYY-MM-DD or YYYY-MM), from the latest value of a date column (read with the ingest's
own typing, remembered per file version), a declared default, or its modification day.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

import duckdb

from pipelines.lib.ingest.columns import _column_plan, _load_into_duckdb
from pipelines.lib.ingest.options import IngestError
from pipelines.lib.ingest.readers import prepare
from pipelines.lib.mappings import Entity


def export_dates(
    path: Path, timezone: str = "Europe/Moscow", entity: Entity | None = None
) -> tuple[dt.date, dt.date]:
    """The export dates a file covers: the file's partition for daily runs and backfills.

    By default (and without an entity): its name's YYYY-MM-DD (one day) or YYYY-MM (the
    month), else the day it was last modified. An entity's `export_date:` may instead take
    the latest value of a column, a declared default day, or the modification day only,
    tried in the declared order.
    """
    spec = entity.export_date if entity is not None else {"from": ("name", "mtime")}
    for source in spec["from"]:
        if source == "name":
            span = _name_dates(path.name)
        elif source == "column" and entity is not None:
            span = _column_dates(path, entity, spec["column"])
        elif source == "default":
            span = (spec["default"], spec["default"])
        else:
            span = _mtime_dates(path, timezone)
        if span is not None:
            return span
    return _mtime_dates(path, timezone)


def _name_dates(name: str) -> tuple[dt.date, dt.date] | None:
    m = re.search(r"(\d{4})-(\d{2})-(\d{2})", name)
    if m:
        try:
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
        return day, day
    m = re.search(r"(\d{4})-(\d{2})(?!\d)", name)
    if m and 1 <= int(m[2]) <= 12:
        first = dt.date(int(m[1]), int(m[2]), 1)
        nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, nxt - dt.timedelta(days=1)
    return None


def _mtime_dates(path: Path, timezone: str) -> tuple[dt.date, dt.date]:
    from zoneinfo import ZoneInfo

    day = dt.datetime.fromtimestamp(path.stat().st_mtime, ZoneInfo(timezone)).date()
    return day, day


_COLUMN_DATES: dict[tuple[object, ...], tuple[dt.date, dt.date] | None] = {}


def _column_dates(path: Path, entity: Entity, column: str) -> tuple[dt.date, dt.date] | None:
    """The latest valid value of a date/timestamp column of the file (None when it has none).

    Read with the same typing as the ingest (so a run's partitions and the manifest agree);
    remembered per file version, since partitions are asked for more than once per run.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, entity.table, column)
    if key in _COLUMN_DATES:
        return _COLUMN_DATES[key]
    day = None
    workdir = Path(tempfile.mkdtemp(prefix="export-date-"))
    con = duckdb.connect()
    try:
        prep = prepare(path, entity, workdir)
        names, _ = _load_into_duckdb(con, prep, entity, path)
        plan = _column_plan(entity, names, prep)
        col = plan.by_name[column]
        if col.value != "null":
            cond = f"({col.error}) is null" if col.error != "null" else "true"
            day = con.execute(
                f"select cast(max(case when {cond} then {col.value} end) as date) from src"
            ).fetchone()[0]
    except (IngestError, duckdb.Error, UnicodeError, OSError):
        day = None
    finally:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
    span = (day, day) if day is not None else None
    _COLUMN_DATES[key] = span
    return span
