"""Check results hold no personal data: samples of sensitive columns leave masked.

A Bitrix deal snapshot with a malformed phone, a bad e-mail and an invalid INN is landed and
ingested for real, and its raw suite runs as a Dagster asset check (Great Expectations on
DuckDB, the Data Docs site, `raw.check_results`, the memo), followed by the run summary the
CLI prints. The raw values appear nowhere: not in `raw.check_results`, not in any file of the
Data Docs folder (the GX validation JSON under `.gx/` and the HTML pages), not in the memo,
not in what was printed; their masked forms and counts do. Samples of columns that are not
sensitive (an unknown stage, the key of duplicated rows) keep their values, so the masking
is not a matter of dropping every sample.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, Definitions, MaterializeResult, asset, define_asset_job

from pipelines.lib.ingest import ingest_file, new_load_id
from pipelines.lib.mappings import load_entities
from pipelines.lib.quality import docs_dir, run_suite
from pipelines.lib.quality.duck import warehouse_connection
from pipelines.lib.quality.mask import KINDS, mask_value
from pipelines.lib.quality.rules import load_config, raw_suite, staging_suites
from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import CHECK_RESULT_COLUMNS, checks_dir, create_raw_views
from tests.test_quality import BITRIX_HEADER, LOADED_AT, STAGES

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = {e.table: e for e in load_entities(ROOT / "sources")}
CONFIG = load_config(ROOT / "quality" / "suites.yml")
TABLE = "bitrix__deal_snapshot"

GOOD_INN, GOOD_PHONE, GOOD_EMAIL = "7707083893", "+7 916 123-45-67", "ivan.petrov@mail.ru"
BAD_PHONE = "8999123456789x"  # 13 digits and a letter: no E.164 number
BAD_EMAIL = "petrov.secret@mailru"  # no dot in the domain
BAD_INN = "7707083894"  # wrong check digit
UNKNOWN_STAGE = "Переговоры с юристом"  # not sensitive: reported as it is
PLANTED = (BAD_PHONE, BAD_EMAIL, BAD_INN)
MASKED = {"e164__phone": "899*********9x", "email__email": "p***@mailru", "inn__inn": "77******94"}


def deal(i: int, *, inn: str = GOOD_INN, phone: str = GOOD_PHONE, email: str = GOOD_EMAIL,
         stage: str = "Новая") -> str:  # fmt: skip
    when = (LOADED_AT - dt.timedelta(days=1)).strftime("%d.%m.%Y %H:%M:%S")
    return (
        f"{i};Сделка {i};{stage};125 000,50;RUB;Иван Петров;{when};{when};Сайт;"
        f"ООО Ромашка;{inn};{phone};{email};"
    )


ROWS = [
    deal(1),
    deal(2, phone=BAD_PHONE),
    deal(3, email=BAD_EMAIL),
    deal(4, inn=BAD_INN),
    deal(5, stage=UNKNOWN_STAGE),
    deal(6),
    deal(6),  # the same deal twice in one file: the key's sample is not sensitive
]


def land(tmp_path: Path) -> Path:
    entity = ENTITIES[TABLE]
    folder = tmp_path / "landing" / entity.folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deals_2026-11-20.csv"
    path.write_bytes(("\r\n".join([BITRIX_HEADER, *ROWS]) + "\r\n").encode("cp1251"))
    return path


def run_checks(path: Path) -> tuple[bool, list[str]]:
    """The raw asset (the real ingestion of `path`) and its quality checks, in Dagster;
    returns whether the run succeeded and the failed checks as the CLI lists them."""
    from pipelines.defs.quality import build_checks

    entity = ENTITIES[TABLE]
    key = AssetKey(["raw", entity.table])

    @asset(key=key)
    def raw_deals() -> MaterializeResult:
        ingest_file(path, entity, load_settings().data_dir, new_load_id(), display_path=path.name)
        return MaterializeResult()

    defs = Definitions(
        assets=[raw_deals],
        asset_checks=[build_checks(load_settings(), raw_suite(entity, CONFIG, STAGES), key)],
        jobs=[define_asset_job("full_refresh", selection="*")],
    )
    result = defs.resolve_job_def("full_refresh").execute_in_process(raise_on_error=False)
    failures = [
        f"check {ev.event_specific_data.asset_key.to_user_string()}:"
        f"{ev.event_specific_data.check_name} failed"
        for ev in result.all_events
        if ev.event_type_value == "ASSET_CHECK_EVALUATION" and not ev.event_specific_data.passed
    ]
    return result.success, failures


def check_results(data: Path) -> list[dict[str, object]]:
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    rel = con.execute("select * from raw.check_results order by check_name")
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    con.close()
    return rows


def files_holding(folder: Path, text: str) -> list[str]:
    """Files under `folder` (recursively, hidden ones included) whose bytes contain `text`,
    as UTF-8 or as JSON writes it with non-ASCII escaped."""
    needles = {text.encode(), json.dumps(text).strip('"').encode()}
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and any(n in p.read_bytes() for n in needles)
    )


def test_check_results_data_docs_and_summary_hold_only_masked_samples(
    settings_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from pipelines.run import _summary

    data = settings_env / "data"
    success, failures = run_checks(land(settings_env))
    _summary(load_settings(), "adhoc", 0.0, success, failures)
    printed = "".join(capfd.readouterr())

    rows = {r["check_name"]: r for r in check_results(data)}
    # the planted values were found: each check failed on exactly its one row, reported masked
    for check, masked in MASKED.items():
        got = rows[check]
        assert (got["passed"], got["unexpected_count"], got["element_count"]) == (False, 1, 7)
        assert json.loads(got["observed"]) == [masked]
    # columns that are not sensitive keep their samples
    assert json.loads(rows["known_stage__stage"]["observed"]) == [UNKNOWN_STAGE]
    duplicated = json.loads(rows["unique__deal_id"]["observed"])
    assert [d["deal_id"] for d in duplicated] == ["6", "6"]
    assert rows["unique__deal_id"]["unexpected_count"] == 2

    docs = docs_dir(data)
    validations = sorted((docs / ".gx" / "validations").rglob("*.json"))
    pages = sorted((docs / "validations").rglob("*.html"))
    assert len(validations) == 1 and len(pages) == 1
    for planted in PLANTED:  # the whole site (JSON, HTML), the results and the memo
        assert files_holding(docs, planted) == []
        assert files_holding(checks_dir(data), planted) == []
    for masked in MASKED.values():
        assert files_holding(docs, masked) == sorted(
            str(p.relative_to(docs)) for p in (*validations, *pages)
        )
    assert len(files_holding(docs, UNKNOWN_STAGE)) == 2  # the same JSON and HTML page

    table = json.dumps([list(r.values()) for r in rows.values()], default=str, ensure_ascii=False)
    assert "check raw/bitrix__deal_snapshot:e164__phone failed" in printed
    for planted in PLANTED:
        assert planted not in table
        assert planted not in printed


def test_results_and_data_docs_kept_before_masking_are_masked_or_dropped(
    settings_env: Path,
) -> None:
    """A data folder written by a version that stored samples in full: the next check of
    the table masks its earlier results, and the Data Docs drop the validations kept then."""
    data = settings_env / "data"
    docs = docs_dir(data)
    old_json = docs / ".gx" / "validations" / "raw" / TABLE / "old" / "old.json"
    old_page = docs / "validations" / "raw" / TABLE / "old" / "old.html"
    for path in (old_json, old_page):
        path.parent.mkdir(parents=True)
        path.write_text(f"<td>{BAD_INN}</td>", encoding="utf-8")
    old_results = checks_dir(data) / "2026-11-01" / f"raw__{TABLE}__old.parquet"
    old_results.parent.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(
        "create table r (" + ", ".join(f'"{n}" {t}' for n, t in CHECK_RESULT_COLUMNS.items()) + ")"
    )
    con.execute(
        "insert into r (run_id, layer, table_name, check_name, passed, observed) values "
        f"('old', 'raw', '{TABLE}', 'inn__inn', false, '[\"{BAD_INN}\"]'), "
        f"('old', 'raw', '{TABLE}', 'known_stage__stage', false, '[\"{UNKNOWN_STAGE}\"]')"
    )
    con.execute(f"copy r to '{old_results}' (format parquet)")
    con.close()
    assert files_holding(data, BAD_INN) == sorted(
        str(p.relative_to(data)) for p in (old_json, old_page, old_results)
    )

    run_checks(land(settings_env))
    for planted in PLANTED:
        assert files_holding(docs, planted) == []
    assert not old_json.exists() and not old_page.exists()
    old = {r["check_name"]: r["observed"] for r in check_results(data) if r["run_id"] == "old"}
    assert old == {"inn__inn": '["77******94"]', "known_stage__stage": f'["{UNKNOWN_STAGE}"]'}


def test_staging_keys_with_bank_accounts_are_masked_in_gx_results(tmp_path: Path) -> None:
    """Staging models take the marks of their raw table: a duplicated key of bank account
    sections is reported with the account masked, in the outcome and in the Data Docs."""
    from pipelines.lib.quality.gx import GxChecks

    account = "40702810900000012345"
    built = tmp_path / "build.duckdb"
    con = duckdb.connect(str(built))
    con.execute("create schema staging")
    con.execute(
        "create table staging.stg_onec__bank_account_section as select * from (values "
        f"('{account}', date '2026-11-01', date '2026-11-30'), "
        f"('{account}', date '2026-11-01', date '2026-11-30')) t(account, period_start, period_end)"
    )
    con.close()
    suite = next(s for s in staging_suites(CONFIG) if s.table == "stg_onec__bank_account_section")
    assert suite.masks == {"account": "account"}
    docs = tmp_path / "docs"
    con = warehouse_connection(built)
    checker = GxChecks(con, docs_dir=docs)
    try:
        _, outcomes = run_suite(con, suite, checker=checker)
    finally:
        checker.close()
        con.close()
    (got,) = outcomes
    assert not got.passed and got.unexpected_count == 2
    assert [d["account"] for d in got.observed] == ["****************2345"] * 2
    assert [str(d["period_start"])[:10] for d in got.observed] == ["2026-11-01"] * 2
    assert files_holding(docs, account) == []
    assert len(files_holding(docs, "****************2345")) == 2  # validation JSON and page


# Columns of the shipped mappings whose names say they hold personal or banking data.
PERSONAL = re.compile(r"phone|mail|inn$|kpp$|(^|_)account$|first_name|last_name|caller|callee|"
                      r"^src$|^dst$|^clid$|^payer_name$|^recipient_name$")  # fmt: skip


def test_every_personal_column_of_the_shipped_mappings_is_declared_sensitive() -> None:
    undeclared = []
    for entity in ENTITIES.values():
        masks = raw_suite(entity, CONFIG, STAGES).masks
        assert set(masks.values()) <= set(KINDS)
        undeclared += [
            f"{entity.table}.{c.name}"
            for c in entity.columns
            if PERSONAL.search(c.name) and c.name not in masks
        ]
    assert undeclared == []


def test_masks_have_the_formats_of_the_masked_marts() -> None:
    # dbt_project/macros/masked_marts.sql: +79*******67, i***@mail.ru; extensions kept
    assert mask_value("+79161234567", "phone") == "+79*******67"
    assert mask_value("101", "phone") == "101"
    assert mask_value("ivan@mail.ru", "email") == "i***@mail.ru"
    assert mask_value("no address", "email") == "**********"
    assert mask_value("7707083893", "inn") == "77******93"
    assert mask_value("770701001", "inn") == "77*****01"
    assert mask_value("40702810900000012345", "account") == "****************2345"
    assert mask_value("Иван Петров", "name") == "И*** П***"
    assert mask_value(None, "phone") is None
    for kind in KINDS:  # masking a masked value gives it back: safe to apply at every step
        for value in ("+7 (916) 123-45-67", "a.b@c.ru", "7707083893", "Анна-Мария Ли"):
            once = mask_value(value, kind)
            assert mask_value(once, kind) == once
