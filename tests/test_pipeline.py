"""End to end: `crmwh run` on generated sample exports, checked against the files themselves.

Every expected figure here is computed from the landed CSV/1C/XLSX files with Python's own
csv module, not from the warehouse, so a mistake in the pipeline cannot hide in both.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import Built, crmwh, query
from tests.test_demo_data import documented_demo_warnings

MOSCOW = dt.timezone(dt.timedelta(hours=3))


def decode(path: Path, encodings: tuple[str, ...]) -> str:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    for enc in encodings:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"{path} decodes in none of {encodings}")


def csv_records(path: Path, delimiter: str, encodings: tuple[str, ...], header: bool) -> int:
    text = decode(path, encodings)
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    return len(rows) - (1 if header else 0)


def expected_records(path: Path) -> int:
    """Records in a landed file, counted by Python independently of DuckDB."""
    folder, name = path.parent.name, path.name.lower()
    if name.endswith(".xlsx"):
        ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        return sum(1 for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)) - 1
    if folder == "accounting_1c" and name.endswith(".txt"):
        text = decode(path, ("cp1251",))
        return sum(
            1
            for line in text.splitlines()
            if line.startswith(("СекцияДокумент=", "СекцияРасчСчет"))
        )
    if folder == "crm_salesforce":
        return csv_records(path, ",", ("utf-8", "latin-1"), True)
    if folder == "telephony_asterisk":
        return csv_records(path, ",", ("utf-8", "latin-1"), name.startswith("extensions"))
    if folder == "telephony_cloud":
        return csv_records(path, ",", ("utf-8", "cp1251"), True)
    return csv_records(path, ";", ("utf-8", "cp1251"), True)


def test_run_publishes_and_prints_a_summary(demo_build: Built) -> None:
    out = demo_build.first_run.stdout
    assert "== ingested in this run" in out
    assert "\npublished in " in out and "FAILED, served warehouse left unchanged" not in out
    # every warning is one the demo's table in docs/data-quality.md explains, its reason
    # printed once; freshness too, as the session's exports end on a pinned past date
    section = out.split("\n== warnings (", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    reasons = [line.strip().rsplit(": ", 1)[0] for line in section]
    assert len(reasons) == len(set(reasons)) >= 4
    table = documented_demo_warnings()
    for line, reason in zip(section, reasons, strict=True):
        places = {p.split(" (")[0] for p in line.strip().rsplit(": ", 1)[1].split(", ")}
        if reason.startswith("newest record older than max_age_days"):
            continue
        assert places <= table.get(reason, set()), f"not in docs/data-quality.md: {line}"
    assert "dbt warn: test.crm_warehouse.accepted_values_fct_deal_is_stage_configured" not in out
    tables = {
        r[0]
        for r in query(
            demo_build.warehouse,
            "select table_name from duckdb_tables() where schema_name = 'marts'",
        )
    }
    assert {"fct_deal", "fct_stage_visit", "mart_funnel_velocity", "mart_data_quality"} <= tables


def test_every_input_line_is_loaded_or_quarantined(demo_build: Built) -> None:
    manifest = query(
        demo_build.warehouse,
        "select source_file, sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
        "from raw.load_manifest group by 1",
    )
    by_file = {f: (read, loaded, quarantined) for f, read, loaded, quarantined in manifest}
    skipped = {
        f for (f,) in query(demo_build.warehouse, "select source_file from raw.file_delivery")
    }
    landed = [p for p in sorted(demo_build.landing.rglob("*")) if p.is_file()]
    assert landed
    for path in landed:
        rel = str(path.relative_to(demo_build.landing))
        if rel in skipped:
            continue  # same bytes as a file already loaded: skipped, listed in raw.file_delivery
        assert rel in by_file, f"{rel} was neither loaded nor skipped as a duplicate"
        read, loaded, quarantined = by_file[rel]
        assert read == loaded + quarantined, rel
        assert read == expected_records(path), f"{rel}: DuckDB read {read} records"
    # and the raw layer really holds them, table by table
    per_table = query(
        demo_build.warehouse,
        "select table_name, source_file, rows_loaded, rows_quarantined from raw.load_manifest",
    )
    for table, rel, loaded, quarantined in per_table:
        n_raw = query(
            demo_build.warehouse, f"select count(*) from raw.{table} where _source_file = ?", [rel]
        )[0][0]
        n_q = query(
            demo_build.warehouse,
            "select count(*) from raw.quarantine where source_file = ? and source_system || '__' || entity = ?",
            [rel, table],
        )[0][0]
        assert (n_raw, n_q) == (loaded, quarantined), f"{table} {rel}"


def test_faults_of_the_demo_are_quarantined_with_reasons(demo_build: Built) -> None:
    rows = query(demo_build.warehouse, "select source_file, line, reason from raw.quarantine")
    assert rows, "the demo exports carry injected faults"
    for source_file, line, reason in rows:
        assert source_file and reason
        assert line >= 0
    # the redelivered copies are skipped by checksum, not loaded twice
    assert query(demo_build.warehouse, "select count(*) from raw.file_delivery")[0][0] >= 1


def test_second_run_over_the_same_files_loads_nothing(demo_build: Built) -> None:
    before = query(
        demo_build.warehouse,
        "select count(*), sum(hash(deal_id, amount, status)) from marts.fct_deal",
    )
    raw_before = query(
        demo_build.warehouse, "select count(*) from raw.salesforce__opportunity_history"
    )
    again = crmwh(["run", "--landing", str(demo_build.landing), "--warehouse", str(demo_build.warehouse)],
                  demo_build.env)  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "no new files" in again.stdout
    assert (
        query(demo_build.warehouse, "select count(*) from raw.salesforce__opportunity_history")
        == raw_before
    )
    assert (
        query(
            demo_build.warehouse,
            "select count(*), sum(hash(deal_id, amount, status)) from marts.fct_deal",
        )
        == before
    )


# ---------------------------------------------------------------- independent figures


def _sf_rows(landing: Path, name: str) -> list[dict[str, str]]:
    text = decode(landing / "crm_salesforce" / name, ("utf-8", "latin-1"))
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _num(value: str, comma: bool = False) -> float | None:
    v = value.strip().replace(" ", "").replace("\u00a0", "")
    if comma:
        v = v.replace(".", "").replace(",", ".")
    try:
        f = float(v)
    except ValueError:
        return None
    return f


def _sf_ts(value: str) -> dt.datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    return None


def salesforce_deals(landing: Path) -> dict[str, dict]:
    rates = {
        r["IsoCode"]: float(r["ConversionRate"]) for r in _sf_rows(landing, "CurrencyType.csv")
    }
    deals: dict[str, dict] = {}
    for r in _sf_rows(landing, "Opportunity.csv"):
        amount = _num(r["Amount"]) if r["Amount"].strip() else 0.0
        created = _sf_ts(r["CreatedDate"])
        if amount is None or amount < 0 or created is None or r["IsDeleted"] == "true":
            continue  # the ingestion quarantines these, or staging drops deleted records
        try:
            dt.date.fromisoformat(r["CloseDate"]) if r["CloseDate"] else None
        except ValueError:
            continue
        rate = rates.get(r["CurrencyIsoCode"] or "RUB", 1.0)
        status = (
            "won"
            if r["StageName"] == "Closed Won"
            else "lost"
            if r["StageName"] == "Closed Lost"
            else "open"
        )
        deals[r["Id"][:15]] = {"status": status, "amount": amount / rate, "created": created}
    return deals


def bitrix_deals(landing: Path) -> dict[str, dict]:
    latest: dict[str, tuple[str, dict]] = {}
    for path in sorted((landing / "crm_bitrix").glob("deals_*.csv")):
        snap = re.search(r"deals_(\d{4}-\d{2}-\d{2})", path.name).group(1)
        text = decode(path, ("utf-8", "cp1251"))
        for r in csv.DictReader(io.StringIO(text, newline=""), delimiter=";"):
            amount = _num(r["Сумма"], comma=True) if r["Сумма"].strip() else 0.0
            try:
                dt.datetime.strptime(r["Дата создания"], "%d.%m.%Y %H:%M:%S")
                if r["Дата изменения"]:
                    dt.datetime.strptime(r["Дата изменения"], "%d.%m.%Y %H:%M:%S")
            except ValueError:
                continue
            if amount is None or amount < 0 or not r["ID"]:
                continue
            if r["ID"] not in latest or latest[r["ID"]][0] <= snap:
                latest[r["ID"]] = (snap, r | {"_amount": amount})
    out = {}
    for deal_id, (_, r) in latest.items():
        stage = r["Стадия"]
        status = (
            "won"
            if stage == "Сделка успешна"
            else "lost"
            if stage == "Сделка провалена"
            else "open"
        )
        out[deal_id] = {"status": status, "amount": r["_amount"]}
    return out


@pytest.mark.parametrize("pipeline", ["salesforce", "bitrix"])
def test_won_and_lost_counts_and_amounts_match_the_exports(
    demo_build: Built, pipeline: str
) -> None:
    deals = (
        salesforce_deals(demo_build.landing)
        if pipeline == "salesforce"
        else bitrix_deals(demo_build.landing)
    )
    expected: dict[str, list[float]] = defaultdict(list)
    for d in deals.values():
        expected[d["status"]].append(d["amount"])
    got = dict(
        (status, (n, float(total)))
        for status, n, total in query(
            demo_build.warehouse,
            "select status, count(*), sum(amount) from marts.fct_deal where pipeline = ? group by 1",
            [pipeline],
        )
    )
    for status in ("won", "lost", "open"):
        n, total = got.get(status, (0, 0.0))
        assert n == len(expected[status]), f"{pipeline} {status} deals"
        assert total == pytest.approx(sum(expected[status]), rel=0.005), (
            f"{pipeline} {status} amount"
        )


def test_stage_visits_follow_the_opportunity_history(demo_build: Built) -> None:
    """Visits to each stage = history rows with consecutive repeats collapsed."""
    deals = salesforce_deals(demo_build.landing)
    history: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for r in _sf_rows(demo_build.landing, "OpportunityHistory.csv"):
        ts = _sf_ts(r["CreatedDate"])
        if r["IsDeleted"] == "true" or ts is None or r["OpportunityId"][:15] not in deals:
            continue
        history[r["OpportunityId"][:15]].append((ts, r["StageName"]))
    expected: dict[str, int] = defaultdict(int)
    for rows in history.values():
        previous = None
        for _, stage in sorted(set(rows)):
            if stage != previous:
                expected[stage] += 1
            previous = stage
    got = dict(
        query(
            demo_build.warehouse,
            "select v.stage, count(*) from marts.fct_stage_visit v join marts.fct_deal d using (deal_id) "
            "where d.pipeline = 'salesforce' group by 1",
        )
    )
    for stage in ("Prospecting", "Qualification", "Closed Won", "Closed Lost"):
        assert got.get(stage, 0) == pytest.approx(expected[stage], rel=0.005), stage


def test_funnel_first_stage_entries_match_the_history(demo_build: Built) -> None:
    visits = query(
        demo_build.warehouse,
        "select count(distinct (deal_id, date_trunc('month', entered_at))) from marts.fct_stage_visit v "
        "join marts.fct_deal d using (deal_id) where d.pipeline = 'salesforce' and v.stage = 'Prospecting' "
        "and coalesce(v.is_entry_observed, true)",
    )[0][0]
    entered = query(
        demo_build.warehouse,
        "select sum(deals_entered) from marts.mart_funnel_velocity "
        "where pipeline = 'salesforce' and stage = 'Prospecting'",
    )[0][0]
    assert entered == visits > 0


# ---------------------------------------------------------------- backfills


def test_backfill_of_unchanged_days_changes_nothing_and_a_replaced_day_changes_only_itself(
    demo_build: Built, tmp_path: Path
) -> None:
    import shutil

    landing, data, warehouse = (
        tmp_path / "landing",
        tmp_path / "data",
        tmp_path / "warehouse.duckdb",
    )
    shutil.copytree(demo_build.landing, landing)
    shutil.copytree(demo_build.data, data)
    shutil.copyfile(demo_build.warehouse, warehouse)
    env = dict(
        demo_build.env, CRMWH_PATHS__DATA=str(data), CRMWH_PATHS__STATE=str(tmp_path / "state")
    )
    args = ["--landing", str(landing), "--warehouse", str(warehouse)]
    deal_sql = "select deal_id, amount, status from marts.fct_deal order by 1"
    raw_sql = "select _source_file, _load_id, count(*) from raw.bitrix__deal_snapshot group by 1, 2 order by 1"
    deals_before, raw_before = query(warehouse, deal_sql), query(warehouse, raw_sql)

    week = crmwh(["backfill", "--start", "2026-11-10", "--end", "2026-11-16", *args], env)
    assert week.returncode == 0, week.stdout[-3000:] + week.stderr[-3000:]
    assert "backfill 2026-11-10..2026-11-16: " in week.stdout
    assert query(warehouse, deal_sql) == deals_before
    raw_after = query(warehouse, raw_sql)
    assert [(f, n) for f, _, n in raw_after] == [(f, n) for f, _, n in raw_before]
    rebuilt = {f for f, load, _ in raw_after if (f, load) not in {(a, b) for a, b, _ in raw_before}}
    assert rebuilt == {f"crm_bitrix/deals_2026-11-{d:02d}.csv" for d in range(10, 17)}

    # A corrected export replaces the last day's snapshot: one deal's amount changes.
    last = landing / "crm_bitrix" / "deals_2026-11-20.csv"
    raw = last.read_bytes()
    enc = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "cp1251"
    lines = raw.decode(enc).split("\r\n")
    header = lines[0].split(";")
    i_id, i_amount = header.index("ID"), header.index("Сумма")
    ids = [line.split(";")[i_id] for line in lines[1:] if line]
    pick = next(
        k
        for k, line in enumerate(lines[1:], start=1)
        if line and ids.count(line.split(";")[i_id]) == 1
    )
    row = lines[pick].split(";")
    changed_id, row[i_amount] = row[i_id], "777 777,77"
    lines[pick] = ";".join(row)
    last.write_bytes("\r\n".join(lines).encode(enc))
    day = crmwh(["backfill", "--start", "2026-11-20", "--end", "2026-11-20", *args], env)
    assert day.returncode == 0, day.stdout[-3000:] + day.stderr[-3000:]
    deals_after = {d: (a, s) for d, a, s in query(warehouse, deal_sql)}
    changed = {d for d, a, s in deals_before if deals_after.get(d) != (a, s)}
    assert changed == {f"bx:{changed_id}"}
    assert float(deals_after[f"bx:{changed_id}"][0]) == 777777.77
    untouched = [
        (f, load)
        for f, load, _ in query(warehouse, raw_sql)
        if f != "crm_bitrix/deals_2026-11-20.csv"
    ]
    assert untouched == [
        (f, load) for f, load, _ in raw_after if f != "crm_bitrix/deals_2026-11-20.csv"
    ]
