"""Incremental facts (dbt_project/macros/incremental.sql) equal a full refresh.

Sample exports are ingested and dbt builds a warehouse; then files arrive — a late day of
Asterisk CDR and a late invoice register for dates long past, plus the next day's
Bitrix snapshot, CDR and invoices — are ingested as a new load, and a second `dbt build`
builds the large facts incrementally (the pipeline's runs do the same on a copy of the
served file; dbt is driven directly here to keep the test short). The same warehouse rebuilt with
`dbt build --full-refresh` must hold exactly the same rows in the incremental facts, and
the same rows up to floating-point summation order in every other mart.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crmwh_tools import bench
from crmwh_tools.demo_data import generate
from pipelines.lib.ingest import ingest_file, landed_files, new_load_id, quarantine_unrecognised
from pipelines.lib.mappings import load_entities
from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import create_raw_views

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "dbt_project"
DBT = str(Path(sys.executable).with_name("dbt"))
AS_OF = "2026-11-21 12:00:00"  # fixed, so that open visits' ages are comparable
LATE_DAYS = 40
INCREMENTAL = ("fct_call", "fct_payment", "fct_stage_visit", "mart_receivables_aging")

_TS = re.compile(r'"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})"')
_UID = re.compile(r'"(\d{9,11})\.(\d+)"')


def write_late_files(landing: Path, days_back: int) -> dict[str, int]:
    """A late CDR day and a late invoice register, dated `days_back` days before the end
    of the data (rows taken from the middle of the big files, moved and renumbered)."""
    written: dict[str, int] = {}
    master = landing / "telephony_asterisk" / "Master.csv"
    lines = master.read_text(encoding="utf-8").splitlines()
    chunk = lines[len(lines) // 2 : len(lines) // 2 + 150]
    first = dt.datetime.strptime(_TS.search(chunk[0]).group(1), "%Y-%m-%d %H:%M:%S")
    shift = dt.timedelta(days=days_back)

    def ts(m: re.Match[str]) -> str:
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") - shift
        return f'"{t:%Y-%m-%d %H:%M:%S}"'

    def uid(m: re.Match[str]) -> str:  # a new, unique id of the moved leg
        return f'"{int(m.group(1)) - int(shift.total_seconds())}.{m.group(2)}7"'

    rel = f"telephony_asterisk/Master_{(first - shift):%Y-%m-%d}.csv"
    (landing / rel).write_text(
        "".join(_UID.sub(uid, _TS.sub(ts, ln)) + "\n" for ln in chunk), encoding="utf-8"
    )
    written[rel] = len(chunk)

    from crmwh_tools.demo_data.accounting import INVOICES

    invoices = landing / "accounting_1c" / "invoices.csv"
    with invoices.open(encoding="cp1251", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter=";")][1:]
    rows = [r for r in rows[len(rows) // 2 : len(rows) // 2 + 25] if len(r) == len(INVOICES)]
    day = dt.datetime.strptime(rows[0][1], "%d.%m.%Y").date()
    rel = f"accounting_1c/invoices_{day:%Y-%m-%d}.csv"
    with (landing / rel).open("w", encoding="cp1251", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(INVOICES)
        for i, row in enumerate(rows, start=1):
            row[0] = str(80_000_000 + i)
            writer.writerow(row)
    written[rel] = len(rows)
    return written


def marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
    ]


def differing_rows(path_a: Path, path_b: Path, table: str, exact: bool) -> tuple[int, int, int]:
    """(rows in a, rows of a not in b, rows of b not in a) as multisets. Not `exact`:
    doubles rounded to 6 places and decimals to 0.1 — marts that sum doubles over an
    incremental table see its rows in another physical order than after a full rebuild,
    and floating-point sums differ in the last bits (a cent once cast to decimal)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path_a}' as a (read_only)")
        con.execute(f"attach '{path_b}' as b (read_only)")
        cols = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = 'a' and table_schema = 'marts' and table_name = ? "
            "order by ordinal_position",
            [table],
        ).fetchall()
        exprs = []
        for name, dtype in cols:
            if not exact and dtype in ("DOUBLE", "FLOAT"):
                exprs.append(f'round("{name}", 6)')
            elif not exact and dtype.startswith("DECIMAL"):
                exprs.append(f'round("{name}", 1)')
            else:
                exprs.append(f'"{name}"')
        sel = ", ".join(exprs)
        (n,) = con.execute(f"select count(*) from a.marts.{table}").fetchone()
        (only_a,) = con.execute(
            f"select count(*) from (select {sel} from a.marts.{table} "
            f"except all select {sel} from b.marts.{table})"
        ).fetchone()
        (only_b,) = con.execute(
            f"select count(*) from (select {sel} from b.marts.{table} "
            f"except all select {sel} from a.marts.{table})"
        ).fetchone()
    finally:
        con.close()
    return n, only_a, only_b


def ingest(landing: Path, data: Path, warehouse: Path) -> None:
    """The ingestion (new files only: a new load), then the raw views in `warehouse`."""
    entities = load_entities(ROOT / "sources")
    load_id = new_load_id()
    for entity in entities:
        for path in landed_files(landing, entity):
            ingest_file(path, entity, data, load_id, display_path=str(path.relative_to(landing)))
    quarantine_unrecognised(landing, data, entities, load_id)
    con = duckdb.connect(str(warehouse))
    try:
        create_raw_views(con, data, entities)
    finally:
        con.close()


def dbt_build(warehouse: Path, target: Path, *extra: str) -> str:
    """`dbt build` of seeds and models (tests are not what is compared here)."""
    settings = load_settings(environ={"CRMWH_METRICS__AS_OF": AS_OF})
    env = dict(os.environ, CRMWH_DBT_WAREHOUSE=str(warehouse),
               DBT_SEND_ANONYMOUS_USAGE_STATS="false")  # fmt: skip
    done = subprocess.run(
        [DBT, "build", *extra, "--exclude", "resource_type:test", "resource_type:unit_test",
         "--vars", json.dumps(settings.dbt_vars(), ensure_ascii=False),
         "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
         "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


@pytest.mark.slow
def test_incremental_build_with_late_files_equals_full_refresh(tmp_path: Path) -> None:
    landing, data = tmp_path / "landing", tmp_path / "data"
    warehouse = tmp_path / "warehouse.duckdb"
    generate(landing, seed=11, scale="small")
    ingest(landing, data, warehouse)
    dbt_build(warehouse, tmp_path / "t1")
    con = duckdb.connect(str(warehouse), read_only=True)
    before = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in INCREMENTAL}
    con.close()

    late = write_late_files(landing, LATE_DAYS)
    nxt = bench.write_next_day(landing)
    assert all(n > 0 for n in {**late, **nxt}.values())
    ingest(landing, data, warehouse)
    dbt_build(warehouse, tmp_path / "t2")

    con = duckdb.connect(str(warehouse), read_only=True)
    after = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in INCREMENTAL}
    # the state of the date-window models: every load of the manifest has been processed
    loads = {r[0] for r in con.execute("select load_id from raw.load_manifest").fetchall()}
    seen = dict(
        con.execute(
            "select model_name, list(load_id) from main.incremental_load_state group by 1"
        ).fetchall()
    )
    late_calls = con.execute(
        "select count(*) from marts.fct_call where source_call_id like '%7'"
        " and call_date < (select max(call_date) - 30 from marts.fct_call)"
    ).fetchone()[0]
    con.close()
    assert len(loads) == 2
    assert after["fct_call"] > before["fct_call"]
    assert after["mart_receivables_aging"] > before["mart_receivables_aging"]
    assert late_calls > 0, "the late CDR day is in fct_call"
    assert set(seen) == {"fct_call", "mart_receivables_aging"}
    assert all(set(v) == loads for v in seen.values())

    # the second build really was incremental: a table build inserts into
    # `<model>__dbt_tmp` and renames it, an incremental one inserts into the stored table
    for model, folder in (("fct_call", "telephony"), ("fct_payment", "finance"),
                          ("fct_stage_visit", "sales"), ("mart_receivables_aging", "finance")):  # fmt: skip
        run_sql = (
            tmp_path / "t2" / "run" / "crm_warehouse" / "models" / "marts" / folder / f"{model}.sql"
        ).read_text(encoding="utf-8")
        assert re.search(rf'insert into "[^"]+"\."marts"\."{model}" \(', run_sql), model

    # reference: the same warehouse rebuilt from scratch
    full = tmp_path / "full.duckdb"
    shutil.copyfile(warehouse, full)
    dbt_build(full, tmp_path / "t3", "--full-refresh")

    con = duckdb.connect(str(full), read_only=True)
    tables = marts(con)
    con.close()
    assert set(INCREMENTAL) <= set(tables)
    diffs = {}
    for table in tables:
        # the incremental facts exactly; the marts built on them up to summation order
        n, only_inc, only_full = differing_rows(warehouse, full, table, table in INCREMENTAL)
        if table in INCREMENTAL:
            assert n > 0, table
        if only_inc or only_full:
            diffs[table] = (n, only_inc, only_full)
    assert not diffs, f"incremental != full refresh (rows, only incremental, only full): {diffs}"
