"""Incremental facts (dbt_project/macros/incremental.sql) equal a full refresh.

A warehouse is built by `crmwh run` from sample exports; then files arrive — a late day of
Asterisk CDR and a late invoice register for dates long past, plus the next day's
Bitrix snapshot, CDR and invoices — and a second `crmwh run` builds the large facts
incrementally on a copy of the served file. The same warehouse rebuilt with
`dbt build --full-refresh` must hold exactly the same rows, table by table, in every mart.
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

from pipelines.lib import bench
from pipelines.lib.demo_data import generate
from pipelines.lib.settings import load_settings
from tests.conftest import crmwh

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

    from pipelines.lib.demo_data.accounting import INVOICES

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


def differing_rows(path_a: Path, path_b: Path, table: str) -> tuple[int, int, int]:
    """(rows in a, rows of a not in b, rows of b not in a) as multisets."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path_a}' as a (read_only)")
        con.execute(f"attach '{path_b}' as b (read_only)")
        (n,) = con.execute(f"select count(*) from a.marts.{table}").fetchone()
        (only_a,) = con.execute(
            f"select count(*) from (select * from a.marts.{table} "
            f"except all select * from b.marts.{table})"
        ).fetchone()
        (only_b,) = con.execute(
            f"select count(*) from (select * from b.marts.{table} "
            f"except all select * from a.marts.{table})"
        ).fetchone()
    finally:
        con.close()
    return n, only_a, only_b


@pytest.mark.slow
def test_incremental_build_with_late_files_equals_full_refresh(tmp_path: Path) -> None:
    landing, data, state = tmp_path / "landing", tmp_path / "data", tmp_path / "state"
    warehouse = tmp_path / "warehouse.duckdb"
    generate(landing, seed=11, scale="small")
    env = dict(
        os.environ,
        CRMWH_PATHS__STATE=str(state),
        CRMWH_PATHS__DATA=str(data),
        CRMWH_METRICS__AS_OF=AS_OF,
    )
    args = ["run", "--landing", str(landing), "--warehouse", str(warehouse)]
    first = crmwh(args, env, timeout=3600)
    assert first.returncode == 0, f"{first.stdout[-3000:]}\n{first.stderr[-6000:]}"
    con = duckdb.connect(str(warehouse), read_only=True)
    before = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in INCREMENTAL}
    con.close()

    late = write_late_files(landing, LATE_DAYS)
    nxt = bench.write_next_day(landing)
    assert all(n > 0 for n in {**late, **nxt}.values())

    second = crmwh(args, env, timeout=3600)
    assert second.returncode == 0, f"{second.stdout[-3000:]}\n{second.stderr[-6000:]}"

    con = duckdb.connect(str(warehouse), read_only=True)
    after = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in INCREMENTAL}
    # the state of the date-window models: every load of the manifest has been processed
    loads = {r[0] for r in con.execute("select load_id from raw.load_manifest").fetchall()}
    seen = dict(
        con.execute(
            "select model_name, list(load_id) from main.incremental_load_state group by 1"
        ).fetchall()
    )
    late_day = con.execute(
        "select count(*) from marts.fct_call where source_call_id like '%7'"
        " and call_date < (select max(call_date) - 30 from marts.fct_call)"
    ).fetchone()[0]
    con.close()
    assert after["fct_call"] > before["fct_call"]
    assert after["mart_receivables_aging"] > before["mart_receivables_aging"]
    assert late_day > 0, "the late CDR day is in fct_call"
    assert set(seen) == {"fct_call", "mart_receivables_aging"}
    assert all(set(v) == loads for v in seen.values())

    # the second build really was incremental
    compiled = sorted((PROJECT / "target").glob("dbt_models-*/run/crm_warehouse/models/marts/telephony/fct_call.sql"),
                      key=lambda p: p.stat().st_mtime)  # fmt: skip
    assert compiled, "no compiled run SQL of fct_call"
    run_sql = compiled[-1].read_text(encoding="utf-8")
    # a table build inserts into `fct_call__dbt_tmp` and renames; an incremental one
    # inserts the batch into the stored table itself
    assert re.search(r'insert into "[^"]+"\."marts"\."fct_call" \(', run_sql), run_sql[:500]

    # reference: the same warehouse rebuilt from scratch
    full = tmp_path / "full.duckdb"
    shutil.copyfile(warehouse, full)
    settings = load_settings(environ=env)
    dbt_env = dict(env, CRMWH_DBT_WAREHOUSE=str(full), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    done = subprocess.run(
        [DBT, "build", "--full-refresh", "--exclude", "resource_type:test", "resource_type:unit_test",
         "--vars", json.dumps(settings.dbt_vars(), ensure_ascii=False),
         "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        cwd=ROOT, env=dbt_env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]

    con = duckdb.connect(str(full), read_only=True)
    tables = marts(con)
    con.close()
    assert set(INCREMENTAL) <= set(tables)
    diffs = {}
    for table in tables:
        n, only_inc, only_full = differing_rows(warehouse, full, table)
        if table in INCREMENTAL:
            assert n > 0, table
        if only_inc or only_full:
            diffs[table] = (n, only_inc, only_full)
    assert not diffs, f"incremental != full refresh (rows, only incremental, only full): {diffs}"
