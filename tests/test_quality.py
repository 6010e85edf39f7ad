"""Data-quality suites: GX on real DuckDB, no mocks.

Every raw suite passes on clean data and fails on injected bad data, and GX (through the
SQL path) agrees with the same rules in plain SQL check by check. Realistic exports go
through the real ingestion. In real Dagster runs, a blocking failure keeps downstream
assets (dbt, publish) from running and the served warehouse unchanged; a warning does not.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
)

from pipelines.lib.ingest import ingest_file, new_load_id
from pipelines.lib.mappings import Entity, load_entities
from pipelines.lib.quality import run_suite
from pipelines.lib.quality.duck import raw_connection, warehouse_connection
from pipelines.lib.quality.rules import (
    BLOCKING,
    Suite,
    load_config,
    pipeline_stages,
    raw_suite,
    staging_suite,
)
from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import CHECK_RESULT_COLUMNS, create_raw_views, raw_dir

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = {e.table: e for e in load_entities(ROOT / "sources")}
CONFIG = load_config(ROOT / "quality" / "suites.yml")
STAGES = pipeline_stages(ROOT / "dbt_project" / "seeds")
LOADED_AT = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0) - dt.timedelta(minutes=5)
GOOD_INN, BAD_INN = "7707083893", "7707083894"
GOOD_PHONE, BAD_PHONE = "8 (916) 123-45-67", "12"
GOOD_EMAIL, BAD_EMAIL = "ivan.petrov@mail.ru", "ivan.petrov mail.ru"


@pytest.fixture(scope="module")
def gx_module():  # imported once: GX's import alone takes seconds
    from pipelines.lib.quality import gx

    return gx


# --------------------------------------------------------------------------- raw data


def suite_of(table: str) -> Suite:
    return raw_suite(ENTITIES[table], CONFIG, STAGES)


def _columns_of(suite: Suite, kind: str) -> set[str]:
    return {r.column for r in suite.rules if r.kind == kind}


def clean_rows(entity: Entity, n: int = 10) -> list[dict[str, object]]:
    """Rows every rule accepts: distinct values per row (so every key is unique)."""
    suite = suite_of(entity.table)
    inn, phone = _columns_of(suite, "inn"), _columns_of(suite, "phone")
    email = _columns_of(suite, "email")
    stage = {r.column: r.params["pipeline"] for r in suite.rules if r.kind == "known_values"}
    rows = []
    for i in range(n):
        row: dict[str, object] = {}
        for col in entity.columns:
            if col.name in inn:
                row[col.name] = GOOD_INN
            elif col.name in phone:
                row[col.name] = GOOD_PHONE
            elif col.name in email:
                row[col.name] = GOOD_EMAIL
            elif col.name in stage:
                row[col.name] = STAGES[stage[col.name]][i % 3]
            elif col.type == "string":
                row[col.name] = f"{col.name}-{i}"
            elif col.type in {"int", "number"}:
                row[col.name] = 10 + i
            elif col.type == "decimal":
                row[col.name] = Decimal(100 + i)
            elif col.type == "date":
                row[col.name] = LOADED_AT.date() - dt.timedelta(days=1 + i)
            elif col.type == "timestamp":
                row[col.name] = LOADED_AT - dt.timedelta(hours=1 + i)
            elif col.type == "bool":
                row[col.name] = i % 2 == 0
        for name in entity.filename_fields:
            row[name] = LOADED_AT.date()
        rows.append(row)
    return rows


def bad_rows(entity: Entity) -> tuple[list[dict[str, object]], set[str]]:
    """Clean rows with one fault per rule kind injected; returns them and the rules that
    must fail (volume and freshness are tested on their own)."""
    suite = suite_of(entity.table)
    rows = clean_rows(entity)
    failing: set[str] = set()
    for r in suite.rules:
        c = r.column if r.columns else None
        if r.kind == "not_null" and r.blocking:
            rows[1][c] = None
        elif r.kind == "not_null":  # completeness with a `mostly` threshold: 3 of 11 missing
            for i in (7, 8, 9):
                rows[i][c] = None
        elif r.kind == "min":
            rows[2][c] = Decimal(-1)
        elif r.kind == "date_range":
            year_2099 = dt.datetime(2099, 1, 1)
            rows[3][c] = year_2099.date() if r.params["type"] == "date" else year_2099
        elif r.kind == "inn":
            rows[4][c] = BAD_INN
        elif r.kind == "phone":
            for i in (4, 5, 6):
                rows[i][c] = BAD_PHONE
        elif r.kind == "email":
            rows[6][c] = BAD_EMAIL
        elif r.kind == "known_values" and not r.blocking:
            rows[5][c] = "Переговоры с юристом"  # one unknown stage: warned, not blocked
        else:
            continue
        if not r.name.endswith("__block"):
            failing.add(r.name)
    if any(r.kind == "unique" for r in suite.rules):
        rows.append(dict(rows[0]))  # the same record twice in one file
        failing |= {r.name for r in suite.rules if r.kind == "unique"}
    return rows, failing


def write_raw(
    data: Path,
    entity: Entity,
    rows: list[dict[str, object]],
    load_id: str = "L1",
    loaded_at: dt.datetime = LOADED_AT,
    sha: str = "a" * 64,
) -> Path:
    """A raw Parquet file exactly as ingestion writes it (raw schema and lineage columns)."""
    schema = entity.raw_schema()
    con = duckdb.connect()
    con.execute("create table t (" + ", ".join(f'"{n}" {t}' for n, t in schema.items()) + ")")
    lineage = {"_source_file": f"{entity.name}.csv", "_file_sha256": sha, "_load_id": load_id,
               "_loaded_at": loaded_at}  # fmt: skip
    values = [[{**r, **lineage, "_line": i + 2}.get(n) for n in schema] for i, r in enumerate(rows)]
    con.executemany(f"insert into t values ({', '.join('?' for _ in schema)})", values)
    target = raw_dir(data, entity) / f"{sha[:16]}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"copy t to '{target}' (format parquet)")
    con.close()
    return target


def outcomes_by_name(outcomes: list) -> dict[str, object]:
    return {o.rule.name: o for o in outcomes}


def failing(outcomes: list) -> set[str]:
    return {o.rule.name for o in outcomes if not o.passed}


def check_both(con: duckdb.DuckDBPyConnection, suite: Suite, gx_module: object) -> list:
    """Run the suite with GX and with plain SQL; they must agree rule by rule."""
    checker = gx_module.GxChecks(con)
    try:
        _, by_gx = run_suite(con, suite, checker=checker)
    finally:
        checker.close()
    _, by_sql = run_suite(con, suite, engine="sql")
    gx_, sql_ = outcomes_by_name(by_gx), outcomes_by_name(by_sql)
    assert set(gx_) == set(sql_) == {r.name for r in suite.rules}
    for name, g in gx_.items():
        s = sql_[name]
        assert not (g.details and "Error" in g.details), g.details  # GX computed it
        assert (name, g.passed, g.unexpected_count) == (name, s.passed, s.unexpected_count)
    return by_gx


# --------------------------------------------------------------------------- every suite


@pytest.mark.parametrize("table", sorted(ENTITIES))
def test_every_raw_suite_passes_clean_data_and_fails_bad_data(
    table: str, tmp_path: Path, gx_module: object
) -> None:
    entity, suite = ENTITIES[table], suite_of(table)
    clean = tmp_path / "clean"
    write_raw(clean, entity, clean_rows(entity))
    con = raw_connection(clean, list(ENTITIES.values()))
    assert failing(check_both(con, suite, gx_module)) == set()
    con.close()

    rows, expected = bad_rows(entity)
    bad = tmp_path / "bad"
    write_raw(bad, entity, rows)
    con = raw_connection(bad, list(ENTITIES.values()))
    got = check_both(con, suite, gx_module)
    con.close()
    assert failing(got) == expected
    assert any(o.rule.severity == BLOCKING and not o.passed for o in got)  # every suite blocks


def test_suites_are_derived_from_the_source_definitions() -> None:
    suite = suite_of("onec__invoice")
    names = {r.name: r for r in suite.rules}
    assert names["not_null__invoice_number"].severity == "blocking"  # required: true
    assert names["min__amount"].params == {"min": 0}  # min: 0
    assert names["unique__invoice_number__issued_on"].columns == (
        "invoice_number", "issued_on", "_file_sha256",
    )  # fmt: skip
    assert names["unique__invoice_number__issued_on"].severity == "warning"  # raw keeps dups
    assert names["plausible__due_on"].params["future_days"] == 400
    assert names["freshness__issued_on"].params["max_age_days"] == 7  # freshness_field
    assert names["volume__block"].severity == "blocking"
    stg = staging_suite("stg_onec__invoice", CONFIG["staging"]["stg_onec__invoice"])
    assert [(r.name, r.severity) for r in stg.rules] == [
        ("unique__invoice_number__extract_year_from_issued_on", "blocking")
    ]


# --------------------------------------------------------------------------- realistic exports

BITRIX_HEADER = (
    "ID;Название;Стадия;Сумма;Валюта;Ответственный;Дата создания;Дата изменения;Источник;"
    "Компания;ИНН;Телефон;E-mail;Причина отказа"
)


def bx_deal(
    i: int, stage: str = "Новая", inn: str = GOOD_INN, phone: str = GOOD_PHONE, tag: str = ""
) -> str:
    when = (LOADED_AT - dt.timedelta(days=1)).strftime("%d.%m.%Y %H:%M:%S")
    return (
        f"{i};Сделка {i}{tag};{stage};125 000,50;RUB;Иван Петров;{when};{when};Сайт;"
        f"ООО Ромашка;{inn};{phone};a@b.ru;"
    )


def land(tmp_path: Path, name: str, lines: list[str], load_id: str | None = None) -> Path:
    entity = ENTITIES["bitrix__deal_snapshot"]
    folder = tmp_path / "landing" / entity.folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(("\r\n".join([BITRIX_HEADER, *lines]) + "\r\n").encode("cp1251"))
    ingest_file(path, entity, tmp_path / "data", load_id or new_load_id(), display_path=name)
    return tmp_path / "data"


def test_ingested_bitrix_snapshot_reports_invalid_inn_phone_stage_and_duplicates(
    tmp_path: Path, gx_module: object
) -> None:
    data = land(
        tmp_path,
        "deals_2026-11-20.csv",
        [
            bx_deal(1),
            bx_deal(1),  # exported twice
            bx_deal(2, stage="сделка  УСПЕШНА"),  # known: case and spaces do not matter
            bx_deal(3, stage="Переговоры"),  # not in the configured pipeline
            bx_deal(4, inn="7707 083 893"),  # spaces in a valid INN are tolerated
            bx_deal(5, inn="1234567890", phone="101"),  # bad checksum; an extension, not E.164
            bx_deal(6, phone="+44 20 7946 0958 доб. 12"),
        ],
    )
    con = raw_connection(data, list(ENTITIES.values()))
    got = outcomes_by_name(check_both(con, suite_of("bitrix__deal_snapshot"), gx_module))
    con.close()
    assert failing(got.values()) == {
        "unique__deal_id", "inn__inn", "e164__phone", "known_stage__stage",
    }  # fmt: skip
    # samples of INN and phone columns are reported masked (a short number is an extension)
    assert (got["unique__deal_id"].unexpected_count, got["inn__inn"].observed) == (
        2,
        ["12******90"],
    )
    assert got["e164__phone"].observed == ["101"]
    assert got["known_stage__stage"].observed == ["Переговоры"]
    assert got["known_stage__stage"].rule.severity == "warning"
    # unknown stages never block: a CRM with its own stages publishes, and the funnel shows them
    assert "known_stage__stage__block" not in got


def test_volume_band_comes_from_the_trailing_files_in_the_manifest(
    tmp_path: Path, gx_module: object
) -> None:
    for day in (16, 17, 18, 19):
        data = land(
            tmp_path, f"deals_2026-11-{day}.csv", [bx_deal(i, tag=str(day)) for i in range(20)]
        )
    suite = suite_of("bitrix__deal_snapshot")
    con = raw_connection(data, list(ENTITIES.values()))
    got = outcomes_by_name(check_both(con, suite, gx_module))
    assert got["volume"].passed and got["volume"].element_count == 20
    assert "median 20 rows/file x 1 file(s)" in got["volume"].details
    con.close()

    data = land(tmp_path, "deals_2026-11-20.csv", [bx_deal(1)])  # a cut-off export
    con = raw_connection(data, list(ENTITIES.values()))
    got = outcomes_by_name(check_both(con, suite, gx_module))
    con.close()
    assert not got["volume"].passed and not got["volume__block"].passed
    assert got["volume"].observed == 1
    assert got["volume__block"].rule.severity == "blocking"

    # a backfill of several files in one load is judged per file: 2 files x 20 rows
    load = new_load_id()
    land(tmp_path, "deals_2026-11-21.csv", [bx_deal(i, tag="21") for i in range(20)], load)
    data = land(tmp_path, "deals_2026-11-22.csv", [bx_deal(i, tag="22") for i in range(20)], load)
    con = raw_connection(data, list(ENTITIES.values()))
    got = outcomes_by_name(check_both(con, suite, gx_module))
    con.close()
    assert got["volume"].passed and got["volume"].observed == 40


def test_freshness_fails_when_the_newest_record_is_old(tmp_path: Path, gx_module: object) -> None:
    entity = ENTITIES["cloud_pbx__call"]
    rows = clean_rows(entity)
    for r in rows:
        r["started_at"] = LOADED_AT - dt.timedelta(days=30)
    write_raw(tmp_path, entity, rows)
    con = raw_connection(tmp_path, list(ENTITIES.values()))
    got = outcomes_by_name(check_both(con, suite_of("cloud_pbx__call"), gx_module))
    con.close()
    assert failing(got.values()) == {"freshness__started_at"}
    assert got["freshness__started_at"].observed == LOADED_AT - dt.timedelta(days=30)


def test_only_the_latest_load_is_checked(tmp_path: Path, gx_module: object) -> None:
    entity = ENTITIES["salesforce__user"]
    bad, _ = bad_rows(entity)
    write_raw(tmp_path, entity, bad, "L1", LOADED_AT - dt.timedelta(days=7), sha="b" * 64)
    write_raw(tmp_path, entity, clean_rows(entity), "L2", LOADED_AT, sha="c" * 64)
    con = raw_connection(tmp_path, list(ENTITIES.values()))
    batch, got = run_suite(con, suite_of("salesforce__user"), engine="sql")
    con.close()
    assert batch.load_id == "L2" and failing(got) == set()


def test_exported_opportunity_stages_replace_the_seed(tmp_path: Path, gx_module: object) -> None:
    stages = ENTITIES["salesforce__opportunity_stage"]
    write_raw(
        tmp_path, stages, [{"master_label": "Discovery"}, {"master_label": "Won"}], sha="d" * 64
    )
    opp = ENTITIES["salesforce__opportunity"]
    rows = clean_rows(opp)
    for r in rows:
        r["stage_name"] = "discovery"
    write_raw(tmp_path, opp, rows, sha="e" * 64)
    con = raw_connection(tmp_path, list(ENTITIES.values()))
    got = outcomes_by_name(check_both(con, suite_of("salesforce__opportunity"), gx_module))
    con.close()
    assert got["known_stage__stage_name"].passed  # Prospecting... would now be unknown


def test_data_docs_pages_per_suite_and_the_index_once(tmp_path: Path, gx_module: object) -> None:
    # As `crmwh run` does: each check op renders its own pages, the index is built at the end.
    docs = tmp_path / "data_docs"
    tables = ["salesforce__user", "cloud_pbx__call"]
    for table in tables:
        write_raw(tmp_path, ENTITIES[table], clean_rows(ENTITIES[table]))
    con = raw_connection(tmp_path, list(ENTITIES.values()))
    for table in tables:
        checker = gx_module.GxChecks(con, docs_dir=docs, run_name="r1", build_index=False)
        try:
            run_suite(con, suite_of(table), checker=checker)
        finally:
            checker.close()
    con.close()
    pages = sorted(  # validations/<layer>/<table>/<run>/<time>/<batch>.html
        ".".join(p.relative_to(docs).parts[1:3]) for p in docs.glob("validations/**/*.html")
    )
    assert pages == sorted(f"raw.{t}" for t in tables)
    assert not (docs / "index.html").exists()
    index = gx_module.build_docs_index(docs)
    assert index == docs / "index.html"
    html = index.read_text(encoding="utf-8")
    assert all(f"raw.{t}" in html for t in tables)
    assert "__index_only__" not in html


def test_a_load_checked_once_keeps_its_outcomes_and_freshness_is_judged_again(
    tmp_path: Path, gx_module: object
) -> None:
    from pipelines.lib.quality.memo import memo_path

    entity = ENTITIES["cloud_pbx__call"]
    suite = suite_of("cloud_pbx__call")
    rows = clean_rows(entity)
    rows[2]["talk_seconds"] = -5  # one failing rule, so a stored failure is reused too
    write_raw(tmp_path, entity, rows, "L1", LOADED_AT, sha="d" * 64)
    memo = memo_path(tmp_path, suite)
    con = raw_connection(tmp_path, list(ENTITIES.values()))

    def check(now: dt.datetime, run_id: str) -> dict[str, object]:
        checker = gx_module.GxChecks(con)
        try:
            _, outs = run_suite(con, suite, checker=checker, now=now, memo_file=memo, run_id=run_id)
        finally:
            checker.close()
        return outcomes_by_name(outs)

    first = check(LOADED_AT, "run-1")
    assert not any("reused" in (o.details or "") for o in first.values())
    assert failing(first.values()) == {"min__talk_seconds"}
    assert json.loads(memo.read_text(encoding="utf-8"))["load_id"] == "L1"

    # the same load a day later: every outcome reused, freshness judged against the new bound
    second = check(LOADED_AT + dt.timedelta(days=1), "run-2")
    assert all("reused: load L1 was checked by run run-1" in o.details for o in second.values())
    assert {n: (o.passed, o.unexpected_count) for n, o in second.items()} == {
        n: (o.passed, o.unexpected_count) for n, o in first.items()
    }
    # a month later the same newest call is too old: freshness fails without a new query
    late = check(LOADED_AT + dt.timedelta(days=30), "run-3")
    assert failing(late.values()) == {"min__talk_seconds", "freshness__started_at"}
    assert "judged again" in late["freshness__started_at"].details

    # a new load is evaluated in full, and a broken memo file only costs an evaluation
    later = LOADED_AT + dt.timedelta(minutes=1)
    write_raw(tmp_path, entity, clean_rows(entity), "L2", later, sha="e" * 64)
    con.close()
    con = raw_connection(tmp_path, list(ENTITIES.values()))
    fresh = check(LOADED_AT, "run-4")
    assert failing(fresh.values()) == set()
    assert not any("reused" in (o.details or "") for o in fresh.values())
    memo.write_text("{not json", encoding="utf-8")
    assert failing(check(LOADED_AT, "run-5").values()) == set()
    assert json.loads(memo.read_text(encoding="utf-8"))["load_id"] == "L2"
    con.close()


def test_a_table_with_nothing_loaded_passes_vacuously(tmp_path: Path) -> None:
    con = raw_connection(tmp_path, list(ENTITIES.values()))
    batch, got = run_suite(con, suite_of("onec__expense"))
    con.close()
    assert batch.empty and all(o.passed and o.expectation == "skipped" for o in got)


# --------------------------------------------------------------------------- staging


def staging_warehouse(path: Path, duplicate: bool) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema staging")
    con.execute(
        "create table staging.stg_salesforce__account as "
        "select 'A' || range as account_id from range(3)"
    )
    con.execute(
        "create table staging.stg_salesforce__opportunity as "
        "select 'O' || range as opportunity_id, 'A' || range as account_id from range(4)"
    )  # A3 does not exist: a dangling reference (warning)
    if duplicate:
        con.execute("insert into staging.stg_salesforce__opportunity values ('O1', 'A1')")
    con.close()
    return path


def test_staging_uniqueness_blocks_and_references_warn(tmp_path: Path, gx_module: object) -> None:
    suite = staging_suite(
        "stg_salesforce__opportunity", CONFIG["staging"]["stg_salesforce__opportunity"]
    )
    for duplicate in (False, True):
        db = staging_warehouse(tmp_path / f"w{duplicate}.duckdb", duplicate)
        con = warehouse_connection(db)
        got = outcomes_by_name(check_both(con, suite, gx_module))
        con.close()
        assert got["references__account_id"].unexpected_count == 1
        assert not got["references__account_id"].passed
        assert got["unique__opportunity_id"].passed is not duplicate
        assert got["unique__opportunity_id"].rule.severity == "blocking"


def test_deal_to_account_reference_passes_when_every_account_exists(
    tmp_path: Path, gx_module: object
) -> None:
    db = staging_warehouse(tmp_path / "w.duckdb", duplicate=False)
    con = duckdb.connect(str(db))
    con.execute("insert into staging.stg_salesforce__account values ('A3')")
    con.close()
    suite = staging_suite(
        "stg_salesforce__opportunity", CONFIG["staging"]["stg_salesforce__opportunity"]
    )
    con = warehouse_connection(db)
    got = outcomes_by_name(check_both(con, suite, gx_module))
    con.close()
    ref = got["references__account_id"]
    assert (ref.passed, ref.unexpected_count, ref.rule.severity) == (True, 0, "warning")


def payments_warehouse(path: Path, unknown_payer: bool) -> Path:
    """Incoming payments from customers known by an invoice, a Salesforce account and a
    Bitrix deal; an outgoing payment to a supplier and a transfer between our own accounts
    (neither is a customer payment). `unknown_payer` adds an incoming payment from an INN
    no system knows."""
    ours, our_inn = "40702810000000000001", "7700000000"
    con = duckdb.connect(str(path))
    con.execute("create schema staging")
    con.execute("create table staging.stg_onec__invoice as select * from (values "
                "('1', '7707083893'), ('2', null)) t(invoice_number, counterparty_inn)")  # fmt: skip
    con.execute("create table staging.stg_salesforce__account as select * from (values "
                "('A1', '7728168971')) t(account_id, inn)")  # fmt: skip
    con.execute("create table staging.stg_bitrix__deal_snapshot as select * from (values "
                "('10', date '2026-03-01', '500100732259')) t(deal_id, snapshot_date, inn)")  # fmt: skip
    rows = [
        # doc, payer_inn, payer_account, recipient_inn, recipient_account, received_on
        ("1", "7707083893", "40702810900000000009", our_inn, ours, "2026-03-02"),  # invoiced
        ("2", "7728168971", "40702810900000000008", our_inn, ours, "2026-03-02"),  # SF account
        ("3", "500100732259", "40702810900000000007", our_inn, ours, "2026-03-02"),  # Bitrix
        ("4", our_inn, ours, "7702070139", "40702810900000000006", None),  # we pay a supplier
        ("5", our_inn, "40702810000000000002", our_inn, ours, "2026-03-03"),  # own transfer
        ("6", None, "40702810900000000005", our_inn, ours, "2026-03-03"),  # payer INN empty
    ]
    if unknown_payer:
        rows.append(("7", "7736050003", "40702810900000000004", our_inn, ours, "2026-03-04"))
    con.execute(
        "create table staging.stg_onec__bank_payment (section_type varchar, doc_number varchar, "
        "doc_date date, amount decimal(18, 2), payer_inn varchar, payer_account varchar, "
        "recipient_inn varchar, recipient_account varchar, received_on date, "
        "statement_account varchar)"
    )
    for doc, p_inn, p_acc, r_inn, r_acc, received in rows:
        con.execute(
            "insert into staging.stg_onec__bank_payment values "
            "('Платежное поручение', ?, date '2026-03-01', 100, ?, ?, ?, ?, ?, ?)",
            [doc, p_inn, p_acc, r_inn, r_acc, received, ours],
        )
    con.close()
    return path


def test_payment_to_customer_reference_fails_on_an_unknown_payer_only(
    tmp_path: Path, gx_module: object
) -> None:
    suite = staging_suite("stg_onec__bank_payment", CONFIG["staging"]["stg_onec__bank_payment"])
    assert {r.name: r.severity for r in suite.rules} == {
        "unique__section_type__doc_number__doc_date__amount__payer_account__recipient_account": (
            "blocking"
        ),
        "references__payer_inn": "warning",
    }
    for unknown in (False, True):
        db = payments_warehouse(tmp_path / f"p{unknown}.duckdb", unknown)
        con = warehouse_connection(db)
        got = outcomes_by_name(check_both(con, suite, gx_module))
        con.close()
        ref = got["references__payer_inn"]
        # the supplier payment (4), the own transfer (5) and the empty INN (6) are not judged
        assert (ref.passed, ref.unexpected_count) == ((False, 1) if unknown else (True, 0))


def test_staging_key_with_an_expression(tmp_path: Path, gx_module: object) -> None:
    # 1C invoice numbers restart every year: the key is (number, year of the date).
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema staging")
    con.execute(
        "create table staging.stg_onec__invoice as select * from (values "
        "('1', date '2025-03-01'), ('1', date '2026-03-01'), ('2', date '2026-03-01'), "
        "('2', date '2026-05-01')) as t(invoice_number, issued_on)"
    )
    con.close()
    suite = staging_suite("stg_onec__invoice", CONFIG["staging"]["stg_onec__invoice"])
    con = warehouse_connection(db)
    got = check_both(con, suite, gx_module)
    con.close()
    assert [(o.passed, o.unexpected_count) for o in got] == [(False, 2)]  # both rows of '2'


# --------------------------------------------------------------------------- Dagster


def _run_pipeline(rows: list[dict[str, object]], staging_duplicate: bool = False) -> object:
    """Raw asset -> its quality checks -> a stand-in for the dbt build -> publish.

    The stand-ins do what dbt and publish do to files: dbt writes the build file (here with
    one staging model), publish swaps it in for the served warehouse.
    """
    from pipelines.defs.quality import build_checks
    from pipelines.lib.dbt import build_path

    entity = ENTITIES["salesforce__account"]
    raw_key = AssetKey(["raw", entity.table])
    stg_key = AssetKey(["staging", "stg_salesforce__account"])

    @asset(key=raw_key)
    def raw_account() -> MaterializeResult:
        write_raw(load_settings().data_dir, entity, rows, load_id=new_load_id())
        return MaterializeResult()

    @asset(key=stg_key, deps=[raw_key])
    def dbt_build() -> MaterializeResult:
        build = build_path(load_settings())
        con = duckdb.connect(str(build))
        con.execute("create schema staging")
        sql = "create table staging.stg_salesforce__account as select 'A' || range as account_id"
        con.execute(
            sql + " from range(3)" + (" union all select 'A0'" if staging_duplicate else "")
        )
        con.close()
        return MaterializeResult()

    @asset(key=AssetKey(["warehouse", "published"]), deps=[stg_key])
    def publish() -> MaterializeResult:
        s = load_settings()
        os.replace(build_path(s), s.warehouse_path)
        return MaterializeResult()

    raw_suite_ = suite_of(entity.table)
    stg_suite = staging_suite(
        "stg_salesforce__account", CONFIG["staging"]["stg_salesforce__account"]
    )
    defs = Definitions(
        assets=[raw_account, dbt_build, publish],
        asset_checks=[
            build_checks(load_settings(), raw_suite_, raw_key),
            build_checks(load_settings(), stg_suite, stg_key),
        ],
        jobs=[define_asset_job("full_refresh", selection="*")],
    )
    return defs.resolve_job_def("full_refresh").execute_in_process(raise_on_error=False)


def _materialized(result: object) -> set[str]:
    return {
        ev.asset_key.to_user_string()
        for ev in result.all_events
        if ev.event_type_value == "ASSET_MATERIALIZATION"
    }


def _checks(result: object) -> dict[str, tuple[bool, str]]:
    out = {}
    for ev in result.all_events:
        if ev.event_type_value == "ASSET_CHECK_EVALUATION":
            d = ev.event_specific_data
            out[f"{d.asset_key.to_user_string()}:{d.check_name}"] = (d.passed, d.severity.value)
    return out


def test_every_raw_table_gets_one_asset_check_per_rule_without_importing_gx() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pipelines.defs.quality import quality_checks; "
        "from pipelines.lib.settings import load_settings; "
        "checks = quality_checks(load_settings()); "
        "print(len(checks), sum(len(list(c.check_specs)) for c in checks), "
        "'great_expectations' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    n_ops, n_checks, gx_imported = done.stdout.split()
    assert int(n_ops) == len(ENTITIES) and gx_imported == "False"
    assert int(n_checks) == sum(len(suite_of(t).rules) for t in ENTITIES)

    from pipelines.defs.quality import quality_checks

    staging = {AssetKey(["staging", m]) for m in CONFIG["staging"]}
    for checks in quality_checks(load_settings(), staging):
        for spec in checks.check_specs:
            assert spec.blocking is (spec.metadata["severity"] == "blocking")
    assert any(
        spec.asset_key == AssetKey(["staging", "stg_bitrix__deal_snapshot"]) and spec.blocking
        for checks in quality_checks(load_settings(), staging)
        for spec in checks.check_specs
    )


def test_dagster_blocking_failure_stops_dbt_and_publish(settings_env: Path) -> None:
    served = settings_env / "warehouse.duckdb"
    served.write_bytes(b"last good warehouse")
    rows, _ = bad_rows(ENTITIES["salesforce__account"])  # a required Id is missing
    result = _run_pipeline(rows)
    checks = _checks(result)
    assert checks["raw/salesforce__account:not_null__id"] == (False, "ERROR")
    assert checks["raw/salesforce__account:unique__id"] == (False, "WARN")
    assert _materialized(result) == {"raw/salesforce__account"}  # no dbt, no publish
    assert served.read_bytes() == b"last good warehouse"  # served warehouse unchanged

    con = duckdb.connect()
    create_raw_views(con, settings_env / "data", list(ENTITIES.values()))
    cols = [r[0] for r in con.execute("describe raw.check_results").fetchall()]
    assert cols == list(CHECK_RESULT_COLUMNS)
    stored = dict(
        con.execute(
            "select check_name, passed from raw.check_results "
            "where table_name = 'salesforce__account' and severity = 'blocking'"
        ).fetchall()
    )
    con.close()
    assert stored["not_null__id"] is False and stored["volume__block"] is True


def test_dagster_warning_does_not_block(settings_env: Path) -> None:
    rows = clean_rows(ENTITIES["salesforce__account"])
    rows[3]["inn"] = BAD_INN  # warning: invalid INN
    rows.append(dict(rows[0]))  # warning: duplicate in raw
    result = _run_pipeline(rows)
    assert result.success
    checks = _checks(result)
    assert checks["raw/salesforce__account:inn__inn"] == (False, "WARN")
    assert checks["raw/salesforce__account:unique__id"] == (False, "WARN")
    assert checks["staging/stg_salesforce__account:unique__account_id"] == (True, "ERROR")
    assert _materialized(result) == {
        "raw/salesforce__account", "staging/stg_salesforce__account", "warehouse/published",
    }  # fmt: skip
    index = settings_env / "data" / "data_docs" / "index.html"
    assert index.exists() and "salesforce__account" in index.read_text(encoding="utf-8")


def test_dagster_staging_duplicate_blocks_publish(settings_env: Path) -> None:
    served = settings_env / "warehouse.duckdb"
    served.write_bytes(b"last good warehouse")
    result = _run_pipeline(clean_rows(ENTITIES["salesforce__account"]), staging_duplicate=True)
    checks = _checks(result)
    assert checks["staging/stg_salesforce__account:unique__account_id"] == (False, "ERROR")
    assert _materialized(result) == {"raw/salesforce__account", "staging/stg_salesforce__account"}
    assert served.read_bytes() == b"last good warehouse"


def test_dagster_a_check_that_cannot_run_blocks_too(settings_env: Path) -> None:
    # A raw file GX cannot read (not Parquet) must not let the build proceed unchecked.
    served = settings_env / "warehouse.duckdb"
    served.write_bytes(b"last good warehouse")
    entity = ENTITIES["salesforce__account"]
    junk = raw_dir(settings_env / "data", entity) / "0000000000000000.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not parquet")
    result = _run_pipeline(clean_rows(entity))
    failed = {ev.step_key for ev in result.all_events if ev.is_step_failure}
    assert failed == {"quality__raw__salesforce__account"}
    assert _materialized(result) == {"raw/salesforce__account"}
    assert served.read_bytes() == b"last good warehouse"


def test_check_results_json_is_readable(settings_env: Path) -> None:
    rows = clean_rows(ENTITIES["salesforce__account"])
    rows[3]["inn"] = BAD_INN
    _run_pipeline(rows)
    con = duckdb.connect()
    create_raw_views(con, settings_env / "data", list(ENTITIES.values()))
    observed, n = con.execute(
        "select observed, unexpected_count from raw.check_results where check_name = 'inn__inn'"
    ).fetchone()
    con.close()
    assert (json.loads(observed), n) == ([BAD_INN[:2] + "******" + BAD_INN[-2:]], 1)
