"""Mapping features for onboarding real exports (docs/onboarding.md): fast, no Dagster, no dbt.

Each test loads small files with the real ingestion, through a shipped mapping or a small
mapping written by the test, and checks what is loaded, what is quarantined and why.
Fixtures of real exports' shapes are in tests/corpus/onboarding/.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines import cli
from pipelines.lib.ingest import (
    _join_parts,
    export_dates,
    ingest_file,
    landed_files,
    quarantine_unrecognised,
    unrecognised_files,
    unrecognised_summary,
)
from pipelines.lib.mappings import Entity, MappingError, load_entities
from pipelines.lib.warehouse import raw_dir

ROOT = Path(__file__).resolve().parents[1]
ONBOARDING = ROOT / "tests" / "corpus" / "onboarding"
SHIPPED = {e.table: e for e in load_entities(ROOT / "sources")}


def mapping(tmp_path: Path, text: str) -> dict[str, Entity]:
    """Entities of one mapping written to `tmp_path/sources/<system>/source.yml`."""
    folder = tmp_path / "sources" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    return {e.name: e for e in load_entities(tmp_path / "sources")}


def land(tmp_path: Path, rel: str, content: bytes) -> Path:
    path = tmp_path / "landing" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def ingest(path: Path, entity: Entity, data: Path) -> tuple[object, list[dict], list[tuple]]:
    """Ingest one file; return the result, the raw rows (dicts) and (line, reason) quarantined."""
    landing = data.parent / "landing"
    shown = str(path.relative_to(landing)) if path.is_relative_to(landing) else path.name
    res = ingest_file(path, entity, data, "test-load", display_path=shown)
    assert res.rows_read == res.rows_loaded + res.rows_quarantined
    con = duckdb.connect()
    rdir = raw_dir(data, entity)
    rows: list[dict] = []
    if any(rdir.glob("*.parquet")):
        cur = con.execute(
            f"select * from read_parquet('{rdir}/*.parquet') where _source_file = ? order by _line",
            [shown],
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    qdir = data / "quarantine" / entity.system / entity.name
    quarantined = (
        con.execute(
            f"select line, reason from read_parquet('{qdir}/*.parquet') "
            "where source_file = ? order by line",
            [shown],
        ).fetchall()
        if qdir.is_dir() and any(qdir.glob("*.parquet"))
        else []
    )
    con.close()
    return res, rows, quarantined


CSV_MAPPING = """
system: acme
folder: acme
options:
  encoding: [utf-8]
  delimiter: ","
  timestamp_format: "%Y-%m-%dT%H:%M:%S"
  date_format: "%Y-%m-%d"
entities:
  thing:
    files: ["things*.csv"]
    columns:
{columns}
"""


def csv_entity(tmp_path: Path, columns: str, **top: str) -> Entity:
    text = CSV_MAPPING.replace("{columns}", textwrap.indent(textwrap.dedent(columns), " " * 6))
    for key, value in top.items():
        text = text.replace("entities:\n", f"{key}: {value}\nentities:\n")
    return mapping(tmp_path, text)["thing"]


# --------------------------------------------------------------------------- 1. formats


def test_several_formats_per_column_tried_in_order(tmp_path: Path) -> None:
    entity = csv_entity(
        tmp_path,
        """
        id: {source: Id, required: true}
        created: {source: Created, type: timestamp, format: ["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M"]}
        closed: {source: Closed, type: date, format: "%d/%m/%Y"}
        """,
    )
    path = land(
        tmp_path,
        "acme/things.csv",
        b"Id,Created,Closed\n"
        b"1,2023-02-07 20:47:49,11/05/2023\n"
        b"2,07.02.2023 20:47,12/05/2023\n"
        b"3,2023-02-07T20:47:49,2023-05-13\n",
    )
    res, rows, quarantined = ingest(path, entity, tmp_path / "data")
    assert [r["created"] for r in rows] == [
        dt.datetime(2023, 2, 7, 20, 47, 49),
        dt.datetime(2023, 2, 7, 20, 47),
    ]
    assert [r["closed"] for r in rows] == [dt.date(2023, 5, 11), dt.date(2023, 5, 12)]
    # the column's formats replace the entity's: the entity's ISO format is not tried
    assert [line for line, _ in quarantined] == [4]
    reason = quarantined[0][1]
    assert reason.startswith(
        "Created: '2023-02-07T20:47:49' does not match %Y-%m-%d %H:%M:%S or %d.%m.%Y %H:%M (set "
        "`format:` of acme.thing.created in "
    )
    assert reason.endswith("acme/source.yml)")


def test_salesforce_timestamps_without_t_and_dates_with_a_time_load(tmp_path: Path) -> None:
    src = ONBOARDING / "crm_salesforce" / "Opportunity.csv"
    path = land(tmp_path, "crm_salesforce/Opportunity.csv", src.read_bytes())
    res, rows, quarantined = ingest(path, SHIPPED["salesforce__opportunity"], tmp_path / "data")
    assert quarantined == [] and res.rows_loaded == 2
    assert rows[0]["created_date"] == dt.datetime(2023, 2, 7, 20, 47, 49)
    assert rows[0]["close_date"] == dt.date(2023, 5, 11)
    assert rows[1]["created_date"] == dt.datetime(2023, 3, 1, 10, 0)
    assert rows[1]["last_modified_date"] == dt.datetime(2023, 3, 2, 11, 0)


# --------------------------------------------------------------------------- 2. encodings


def test_mixed_utf8_and_latin1_rows_with_c1_bytes_all_load(tmp_path: Path) -> None:
    src = ONBOARDING / "crm_salesforce" / "Account.csv"
    assert b"\x81" in src.read_bytes() and b"\x8d" in src.read_bytes()
    path = land(tmp_path, "crm_salesforce/Account.csv", src.read_bytes())
    res, rows, quarantined = ingest(path, SHIPPED["salesforce__account"], tmp_path / "data")
    assert quarantined == [] and res.status == "loaded"
    assert [r["name"] for r in rows] == ["Müller GmbH", "Café René", "Ørsted A/S"]
    assert res.encoding == "utf-8, latin-1"


def test_latin1_file_with_c1_bytes_is_not_lost(tmp_path: Path) -> None:
    """A file that is Latin-1 throughout, with 0x81/0x8D: DuckDB's own latin-1 reader
    rejects it whole; it is transcoded instead."""
    entity = csv_entity(tmp_path, "id: {source: Id}\nname: {source: Name}\n")
    entity = Entity(**{**entity.__dict__, "options": {**entity.options, "encoding": ["latin-1"]}})
    path = land(tmp_path, "acme/things.csv", b"Id,Name\n1,Caf\xe9\x81\n2,Ren\xe9\x8d\n")
    res, rows, quarantined = ingest(path, entity, tmp_path / "data")
    assert (res.rows_loaded, quarantined) == (2, [])
    assert rows[0]["name"] == "Café\x81"


def test_only_lines_no_declared_encoding_decodes_are_quarantined(tmp_path: Path) -> None:
    entity = csv_entity(tmp_path, "id: {source: Id}\nname: {source: Name}\n")
    entity = Entity(
        **{**entity.__dict__, "options": {**entity.options, "encoding": ["utf-8", "cp1251"]}}
    )
    body = (
        b"Id,Name\n"
        + "1,Сделка\n".encode()
        + "2,Сделка\n".encode("cp1251")
        + b"3,bad\x98byte\n"
        + "4,Ромашка\n".encode()
    )
    path = land(tmp_path, "acme/things.csv", body)
    res, rows, quarantined = ingest(path, entity, tmp_path / "data")
    assert [r["name"] for r in rows] == ["Сделка", "Сделка", "Ромашка"]
    assert [line for line, _ in quarantined] == [4]
    assert quarantined[0][1].startswith(
        "invalid byte sequence for encoding utf-8, cp1251 (tried in order; add the file's "
        "encoding to options `encoding:` in "
    )


# --------------------------------------------------------------------------- 3. derived


def test_derived_columns_concat_regex_constant_default(tmp_path: Path) -> None:
    entity = csv_entity(
        tmp_path,
        """
        id: {source: Id, required: true}
        full_name: {concat: [First, " ", Last]}
        label: {concat: [Last, {text: "Inc"}], separator: ", "}
        uniqueid: {regex: {source: Uid, pattern: '(\\d+\\.\\d+)$'}}
        currency: {constant: RUB}
        region: {source: Region, default: Moscow}
        title: {source: Title, default: {concat: [First, Last], separator: " "}}
        amount: {source: Amount, type: decimal, default: "0"}
        """,
    )
    path = land(
        tmp_path,
        "acme/things.csv",
        b"Id,First,Last,Uid,Region,Amount\n"
        b"1,Anna,Smith,mainserverdss-1706421930.5,,10.5\n"
        b"2,,Petrov,1706421931.6,Kazan,\n",
    )
    res, rows, quarantined = ingest(path, entity, tmp_path / "data")
    assert quarantined == []
    assert [r["full_name"] for r in rows] == ["Anna Smith", "Petrov"]
    assert [r["label"] for r in rows] == ["Smith, Inc", "Petrov, Inc"]
    assert [r["uniqueid"] for r in rows] == ["1706421930.5", "1706421931.6"]
    assert [r["currency"] for r in rows] == ["RUB", "RUB"]
    assert [r["region"] for r in rows] == ["Moscow", "Kazan"]
    assert [r["title"] for r in rows] == ["Anna Smith", "Petrov"]  # no Title column at all
    assert [r["amount"] for r in rows] == [Decimal("10.50"), Decimal("0.00")]
    assert res.warnings == []  # the default stands in for the missing Title
    assert res.columns_missing == ["Title"]


def test_salesforce_user_without_name_gets_first_and_last_name(tmp_path: Path) -> None:
    src = ONBOARDING / "crm_salesforce" / "User.csv"
    path = land(tmp_path, "crm_salesforce/User.csv", src.read_bytes())
    res, rows, quarantined = ingest(path, SHIPPED["salesforce__user"], tmp_path / "data")
    assert quarantined == [] and res.warnings == []
    assert [r["name"] for r in rows] == ["Anna Smith", "Petrov"]


def test_invalid_derived_mappings_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"thing\.x: write one of source:, concat:"):
        csv_entity(tmp_path, "x: {source: A, constant: B}\n")
    with pytest.raises(MappingError, match="regex pattern"):
        csv_entity(tmp_path, "x: {regex: {source: A, pattern: '(unclosed'}}\n")


# --------------------------------------------------------------------------- 4. null sentinels


def test_null_sentinels_per_system_and_per_column_become_null(tmp_path: Path) -> None:
    entity = csv_entity(
        tmp_path,
        """
        id: {source: Id, required: true}
        account_id: {source: AccountId}
        amount: {source: Amount, type: number, null_values: ["n/a"]}
        """,
    )
    entity = Entity(
        **{**entity.__dict__, "options": {**entity.options, "null_values": ["000000000000000AAA"]}}
    )
    path = land(
        tmp_path,
        "acme/things.csv",
        b"Id,AccountId,Amount\n1,000000000000000AAA,n/a\n2,0015g00000B001AAA,5\n"
        b"000000000000000AAA,x,1\n",
    )
    res, rows, quarantined = ingest(path, entity, tmp_path / "data")
    assert [(r["account_id"], r["amount"]) for r in rows] == [
        (None, None),
        ("0015g00000B001AAA", 5.0),
    ]
    # a sentinel in a required column is an empty required value
    assert [line for line, _ in quarantined] == [4]
    assert quarantined[0][1].startswith("Id: required value is empty (fix the file, or set ")


def test_salesforce_null_id_is_null_in_the_shipped_mapping(tmp_path: Path) -> None:
    src = ONBOARDING / "crm_salesforce" / "Opportunity.csv"
    path = land(tmp_path, "crm_salesforce/Opportunity.csv", src.read_bytes())
    _, rows, _ = ingest(path, SHIPPED["salesforce__opportunity"], tmp_path / "data")
    assert rows[0]["campaign_id"] is None and rows[1]["account_id"] is None


# --------------------------------------------------------------------------- 5. names, dates


def test_same_file_name_in_two_sub_folders_both_load(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(ONBOARDING / "telephony_asterisk", landing / "telephony_asterisk")
    entity = SHIPPED["asterisk__cdr"]
    files = landed_files(landing, entity)
    assert [str(p.relative_to(landing)) for p in files] == [
        "telephony_asterisk/pbx1/Master.csv",
        "telephony_asterisk/pbx2/Master.csv",
    ]
    data = tmp_path / "data"
    results = [ingest(p, entity, data)[0] for p in files]
    assert [r.status for r in results] == ["loaded", "loaded"]
    assert len({r.file_key[:16] for r in results}) == 2  # two raw Parquet files
    con = duckdb.connect()
    got = con.execute(
        f"select _source_file, count(*) from read_parquet('{raw_dir(data, entity)}/*.parquet') "
        "group by 1 order by 1"
    ).fetchall()
    assert got == [
        ("telephony_asterisk/pbx1/Master.csv", 2),
        ("telephony_asterisk/pbx2/Master.csv", 1),
    ]
    assert unrecognised_files(landing, list(SHIPPED.values())) == []


def test_file_names_match_case_insensitively_and_bitrix_own_names_are_claimed(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(ONBOARDING / "crm_bitrix", landing / "crm_bitrix")
    (landing / "crm_bitrix" / "DEAL.csv").write_bytes(
        (ROOT / "tests/corpus/changed_amount/crm_bitrix/deals_2026-03-01.csv").read_bytes()
    )
    assert landed_files(landing, SHIPPED["bitrix__lead"]) == [landing / "crm_bitrix/LEAD.csv"]
    assert landed_files(landing, SHIPPED["bitrix__deal_snapshot"]) == [
        landing / "crm_bitrix/DEAL.csv"
    ]
    # a name without a date: the snapshot date is the export date (here: the file's mtime)
    os.utime(landing / "crm_bitrix/DEAL.csv", (1772400000, 1772400000))  # 2026-03-01/02
    res, rows, quarantined = ingest(
        landing / "crm_bitrix/DEAL.csv", SHIPPED["bitrix__deal_snapshot"], tmp_path / "data"
    )
    assert quarantined == [] and res.rows_loaded == 1
    assert str(rows[0]["snapshot_date"]) == res.partition_start


def test_export_date_from_a_column_mtime_or_a_default(tmp_path: Path) -> None:
    entity = csv_entity(
        tmp_path,
        "id: {source: Id}\ncreated: {source: Created, type: timestamp}\n",
    )
    path = land(
        tmp_path,
        "acme/things.csv",
        b"Id,Created\n1,2026-03-01T10:00:00\n2,2026-03-04T09:00:00\n3,bad\n",
    )
    os.utime(path, (1772400000, 1772400000))
    mtime_day = dt.datetime.fromtimestamp(1772400000, dt.UTC).date()
    tz = "UTC"
    assert export_dates(path, tz, entity) == (mtime_day, mtime_day)  # today's behaviour
    by = {
        "{column: created}": (dt.date(2026, 3, 4), dt.date(2026, 3, 4)),
        "mtime": (mtime_day, mtime_day),
        "{default: 2024-01-31}": (dt.date(2024, 1, 31), dt.date(2024, 1, 31)),
    }
    for spec, expected in by.items():
        e = csv_entity(
            tmp_path,
            "id: {source: Id}\ncreated: {source: Created, type: timestamp}\n",
        )
        text = (tmp_path / "sources/acme/source.yml").read_text()
        (tmp_path / "sources/acme/source.yml").write_text(
            text.replace("    files:", f"    export_date: {spec}\n    files:")
        )
        e = load_entities(tmp_path / "sources")[0]
        assert export_dates(path, tz, e) == expected, spec
    # a dated name wins over a default, a column wins over the name
    dated = land(tmp_path, "acme/things_2026-02-02.csv", path.read_bytes())
    assert export_dates(dated, tz, e) == (dt.date(2026, 2, 2), dt.date(2026, 2, 2))
    res = ingest_file(dated, e, tmp_path / "data", "x")
    assert res.partition_start == "2026-02-02"
    with pytest.raises(MappingError, match="is not a date or timestamp column"):
        (tmp_path / "sources/acme/source.yml").write_text(
            text.replace("    files:", "    export_date: {column: id}\n    files:")
        )
        load_entities(tmp_path / "sources")


# --------------------------------------------------------------------------- 6. ignore


def test_ignored_files_are_neither_ingested_nor_quarantined(tmp_path: Path) -> None:
    entity = csv_entity(tmp_path, "id: {source: Id}\n", ignore='["*.log", "archive/*"]')
    landing = tmp_path / "landing"
    land(tmp_path, "acme/things.csv", b"Id\n1\n")
    land(tmp_path, "acme/export.LOG", b"x")
    land(tmp_path, "acme/archive/things_old.csv", b"Id\n2\n")
    for i in range(12):
        land(tmp_path, f"acme/Object{i}.csv", b"A\n1\n")
    assert landed_files(landing, entity) == [landing / "acme/things.csv"]
    found = quarantine_unrecognised(landing, tmp_path / "data", [entity], "x")
    assert found == sorted(f"acme/Object{i}.csv" for i in range(12))
    line = unrecognised_summary(found)
    assert "\n" not in line and line.startswith("12 file(s) in the landing folder match no mapping")
    assert "(7 more)" in line and "`ignore:`" in line


def test_a_user_mappings_ignore_globs_apply_to_the_whole_system_folder(tmp_path: Path) -> None:
    """`ignore:` in a configuration folder's mapping of one entity also keeps the shipped
    entities of that system from claiming the ignored files."""
    config = tmp_path / "config"
    (config / "sources").mkdir(parents=True)
    (config / "sources" / "salesforce.yml").write_text(
        textwrap.dedent(
            """\
            system: salesforce
            folder: crm_salesforce
            ignore: ["*History.csv", "Attachments/*"]
            entities:
              user:
                files: ["User.csv"]
                columns:
                  id: {source: Id, required: true}
            """
        ),
        encoding="utf-8",
    )
    entities = load_entities(ROOT / "sources", config)
    landing = tmp_path / "landing"
    land(tmp_path, "crm_salesforce/OpportunityHistory.csv", b"Id\n1\n")
    land(tmp_path, "crm_salesforce/AccountHistory.csv", b"Id\n1\n")
    land(tmp_path, "crm_salesforce/Attachments/a.csv", b"Id\n1\n")
    land(tmp_path, "crm_salesforce/Opportunity.csv", b"Id\n1\n")
    by_table = {e.table: e for e in entities}
    assert landed_files(landing, by_table["salesforce__opportunity_history"]) == []
    assert landed_files(landing, by_table["salesforce__opportunity"]) == [
        landing / "crm_salesforce/Opportunity.csv"
    ]
    assert unrecognised_files(landing, entities) == []
    # other systems keep their own (here: no) globs
    assert by_table["bitrix__lead"].ignore == ()
    # a file of globs only: every shipped entity stays, the globs apply to them
    (config / "sources" / "salesforce.yml").write_text(
        'system: salesforce\nfolder: crm_salesforce\nignore: ["*History.csv", "Attachments/*"]\n',
        encoding="utf-8",
    )
    entities = load_entities(ROOT / "sources", config)
    assert {e.table for e in entities} == set(SHIPPED)
    assert unrecognised_files(landing, entities) == []
    by_table = {e.table: e for e in entities}
    assert landed_files(landing, by_table["salesforce__opportunity_history"]) == []


# --------------------------------------------------------------------------- 7. 1C names


def test_1c_party_name_is_the_first_part_not_account_and_bank() -> None:
    values = {
        "Плательщик": 'ИНН 7701234567 ООО "Вектор" р/с 40702810000000074935',
        "Плательщик1": 'ООО "Вектор"',
        "Плательщик2": "40702810000000074935",
        "Плательщик3": 'ФИЛИАЛ "ЦЕНТРАЛЬНЫЙ" БАНКА ВТБ (ПАО)',
        "Плательщик4": "г. Москва",
        "Получатель": '7707083893, ООО "Ромашка"',
    }
    assert _join_parts(values, "Плательщик", strip_inn=True) == 'ООО "Вектор"'
    assert _join_parts(values, "Получатель", strip_inn=True) == 'ООО "Ромашка"'
    parts = {"НазначениеПлатежа": "Оплата по счету № 1,", "НазначениеПлатежа1": "НДС 20%"}
    assert _join_parts(parts, "НазначениеПлатежа") == "Оплата по счету № 1, НДС 20%"


def test_1c_statement_names_in_the_raw_layer(tmp_path: Path) -> None:
    src = ONBOARDING / "accounting_1c" / "statement_2026-03.txt"
    path = land(tmp_path, "accounting_1c/statement_2026-03.txt", src.read_bytes())
    _, rows, quarantined = ingest(path, SHIPPED["onec__bank_payment"], tmp_path / "data")
    assert quarantined == []
    assert (rows[0]["payer_name"], rows[0]["recipient_name"]) == ('ООО "Вектор"', 'ООО "Ромашка"')


# --------------------------------------------------------------------------- 8, 9. commands


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI writes its path flags into the environment: restore it afterwards."""
    for key in ("LANDING", "DATA", "WAREHOUSE", "CONFIG"):
        monkeypatch.setenv(f"CRMWH_PATHS__{key}", os.environ.get(f"CRMWH_PATHS__{key}", ""))
        if not os.environ[f"CRMWH_PATHS__{key}"]:
            monkeypatch.delenv(f"CRMWH_PATHS__{key}")
    yield


def test_mapping_check_reports_a_clean_landing_folder(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["mapping", "check", "--landing", str(ONBOARDING)]) == 0
    out = capsys.readouterr().out
    assert "crm_salesforce/User.csv\n  claimed by salesforce.user" in out
    assert "rows read 2, would load 2, would quarantine 0" in out
    assert "columns missing (read as empty): Name" in out
    assert "name=Anna Smith" in out
    assert out.rstrip().endswith("OK: 8 file(s), every one claimed, nothing to quarantine")


def test_mapping_check_reports_reasons_columns_and_unclaimed_files(
    tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(ROOT / "tests/corpus/date_other_format", landing)
    shutil.copytree(ROOT / "tests/corpus/unrecognised_file", landing, dirs_exist_ok=True)
    (landing / "crm_bitrix/extra.csv").write_text("x\n")
    assert cli.main(["mapping", "check", "--landing", str(landing)]) == 1
    out = capsys.readouterr().out
    assert "rows read 2, would load 1, would quarantine 1" in out
    assert "1 row(s): Дата создания: '…' does not match %d.%m.%Y %H:%M:%S (set `format:`" in out
    assert "e.g. line 3: 2;Сделка 2;" in out
    assert "2 file(s) no mapping claims" in out and "accounting_1c/notes.docx" in out
    assert list(tmp_path.iterdir()) == [landing]  # nothing written beside the landing folder


def test_quarantine_command_lists_filters_and_writes_csv(
    tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for case in ("date_other_format", "negative_or_non_numeric_amount"):
        for entity in SHIPPED.values():
            for p in landed_files(ROOT / "tests/corpus" / case, entity):
                ingest_file(p, entity, data, "x", display_path=f"{case}/{p.name}")
    assert cli.main(["quarantine", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("3 quarantined row(s) in 2 file(s)")
    assert cli.main(["quarantine", "--data", str(data), "--reason", "BELOW 0"]) == 0
    out = capsys.readouterr().out
    assert "negative_or_non_numeric_amount/deals_2026-03-02.csv:2  Сумма: '-500,00'" in out
    assert out.rstrip().endswith("1 quarantined row(s) in 1 file(s)")
    out_csv = tmp_path / "q.csv"
    argv = ["quarantine", "--data", str(data), "--file", "date_other*/*.csv", "--csv", str(out_csv)]
    assert cli.main(argv) == 0
    with out_csv.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["source_file"], r["line"]) for r in rows] == [
        ("date_other_format/deals_2026-03-02.csv", "3")
    ]
    assert rows[0]["raw_text"].startswith("2;Сделка 2;Новая;")


# --------------------------------------------------------------------------- 10, invariants


def test_every_row_reason_names_the_column_and_the_mapping_key(tmp_path: Path) -> None:
    entity = csv_entity(
        tmp_path,
        """
        id: {source: Id, required: true}
        n: {source: N, type: int, min: 0}
        kind: {source: Kind, values: {a: alpha}}
        flag: {source: Flag, type: bool}
        """,
    )
    path = land(
        tmp_path,
        "acme/things.csv",
        b"Id,N,Kind,Flag\n,1,a,1\n2,x,a,1\n3,-1,a,1\n4,1,b,1\n5,1,a,maybe\n",
    )
    _, _, q = ingest(path, entity, tmp_path / "data")
    keys = ["`default:` of acme.thing.id", "`null_values:` of acme.thing.n",
            "`min:` of acme.thing.n", "`values:` of acme.thing.kind",
            "`null_values:` of acme.thing.flag"]  # fmt: skip
    columns = ["Id:", "N:", "N:", "Kind:", "Flag:"]
    assert [line for line, _ in q] == [2, 3, 4, 5, 6]
    for (_, reason), key, column in zip(q, keys, columns, strict=True):
        assert reason.startswith(column) and key in reason and "source.yml)" in reason, reason


def test_onboarding_files_rerun_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    entities = list(SHIPPED.values())

    def run() -> list[tuple[str, str, int, int]]:
        out = []
        for e in entities:
            for p in landed_files(ONBOARDING, e):
                r = ingest_file(p, e, data, "x", display_path=str(p.relative_to(ONBOARDING)))
                assert r.rows_read == r.rows_loaded + r.rows_quarantined
                out.append((r.source_file, r.status, r.rows_read, r.rows_quarantined))
        return out

    first = run()
    files = sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*.parquet"))
    assert {s for _, s, _, _ in first} == {"loaded"} and sum(n for *_, n, _ in first) == 13
    second = run()
    assert {s for _, s, _, _ in second} == {"duplicate"}
    assert sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*.parquet")) == files


def test_dbt_source_declarations_are_generated_from_the_mappings(tmp_path: Path) -> None:
    """dbt's `_<system>__sources.yml` are the mappings' raw tables, generated, never hand-kept:
    the committed files equal what the script writes, and a mapping change shows as stale."""
    script = ROOT / "scripts" / "generate_dbt_sources.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    spec = importlib.util.spec_from_file_location("generate_dbt_sources", script)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rendered = gen.render(ROOT / "sources")
    assert {p.parent.name for p in rendered} == {e.system for e in SHIPPED.values()}
    for text in rendered.values():
        (table,) = yaml.safe_load(text)["sources"]
        for t in table["tables"]:
            entity = SHIPPED[t["name"]]
            names = [c["name"] for c in t["columns"]]
            assert names == list(entity.raw_schema()), t["name"]
            assert all(c["description"].strip() for c in t["columns"]), t["name"]

    # a column added to a mapping makes the committed declaration stale
    copy = tmp_path / "sources"
    shutil.copytree(ROOT / "sources", copy)
    path = copy / "cloud_pbx" / "source.yml"
    text = path.read_text(encoding="utf-8")
    assert "    columns:\n" in text
    path.write_text(text.replace("    columns:\n", "    columns:\n      region: {}\n", 1), "utf-8")
    changed = gen.render(copy)
    stale = [rel for rel, body in changed.items() if body != rendered[rel]]
    assert [r.parent.name for r in stale] == ["cloud_pbx"]
    assert "- name: region" in changed[stale[0]]
