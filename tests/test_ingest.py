"""Parser tests: one small export per fault of docs/sources.md, "What arrives broken".

Each case lands one file, ingests it, and checks the exact outcome: rows loaded, the
quarantined lines with their reasons, and the row-accounting invariant.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.ingest import (
    ingest_file,
    new_load_id,
    parse_1c_bank_exchange,
    quarantine_unrecognised,
)
from pipelines.lib.mappings import Entity, load_entities
from pipelines.lib.warehouse import create_raw_views, raw_dir

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = {e.table: e for e in load_entities(ROOT / "sources")}

SF_OPP_HEADER = (
    '"Id","AccountId","Name","StageName","Amount","Probability","CloseDate","Type","LeadSource",'
    '"CampaignId","IsClosed","IsWon","ForecastCategory","OwnerId","CreatedDate","LastModifiedDate",'
    '"IsDeleted","CurrencyIsoCode","Loss_Reason__c"'
)


def sf_opp(i: int, stage: str = "Prospecting", amount: str = "1000.00", close: str = "2026-03-01",
           deleted: str = "false") -> str:  # fmt: skip
    return (
        f'"0065g0000000{i:03d}AAA","0015g00000BBBBB","Deal {i}","{stage}","{amount}","10",'
        f'"{close}","New","Web","","false","false","Pipeline","0055g00000CCCCC",'
        f'"2026-01-01T09:00:00.000Z","2026-01-02T09:00:00.000Z","{deleted}","RUB",""'
    )


BITRIX_HEADER = (
    "ID;Название;Стадия;Сумма;Валюта;Ответственный;Дата создания;Дата изменения;Источник;"
    "Компания;ИНН;Телефон;E-mail;Причина отказа"
)


def bx_deal(i: int, amount: str = "125 000,50", created: str = "01.03.2026 10:00:00",
            stage: str = "Новая") -> str:  # fmt: skip
    return (
        f"{i};Сделка {i};{stage};{amount};RUB;Иван Петров;{created};02.03.2026 11:00:00;Сайт;"
        f"ООО Ромашка;7707083893;8 (916) 123-45-67;A@B.RU;"
    )


INVOICE_HEADER = "Номер;Дата;Контрагент;ИНН;Сумма;НДС;Валюта;Срок оплаты;Ответственный;Сделка"


def cdr(uid: str, fields: int = 21) -> str:
    base = (
        f'"","89161234567","101","from-trunk","""89161234567"" <89161234567>","SIP/trunk-1",'
        f'"SIP/101-2","Dial","SIP/101","2026-03-02 10:00:00","2026-03-02 10:00:05",'
        f'"2026-03-02 10:01:00",60,55,"ANSWERED","DOCUMENTATION","{uid}",""'
    )
    if fields == 21:
        return base + f',"","{uid}",1'
    return base + "".join(',""' for _ in range(fields - 18))


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def run_case(tmp_path: Path, table: str, name: str, content: bytes) -> tuple[object, list, Path]:
    entity: Entity = ENTITIES[table]
    landing = tmp_path / "landing" / entity.folder
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / name
    path.write_bytes(content)
    assert entity.matches(path), f"{name} should be claimed by {table}"
    data = tmp_path / "data"
    result = ingest_file(path, entity, data, new_load_id(), display_path=name)
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    quarantined = con.execute(
        "select line, reason from raw.quarantine where source_file = ? order by line", [name]
    ).fetchall()
    loaded = con.execute(
        f"select count(*) from raw.{table} where _source_file = ?", [name]
    ).fetchone()[0]
    assert loaded == result.rows_loaded
    assert (
        result.rows_read
        == result.rows_loaded + result.rows_quarantined
        == loaded + len(quarantined)
    )
    return result, quarantined, data


def test_clean_salesforce_file_loads_every_row(tmp_path: Path) -> None:
    body = crlf(SF_OPP_HEADER, sf_opp(1), sf_opp(2)).encode()
    result, quarantined, _ = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    assert (result.rows_read, result.rows_loaded, quarantined) == (2, 2, [])
    assert result.status == "loaded"


def test_duplicated_rows_are_kept_in_raw_with_their_lines(tmp_path: Path) -> None:
    # Exact duplicates are deduplicated in staging; the raw layer keeps both with lineage.
    body = crlf(SF_OPP_HEADER, sf_opp(1), sf_opp(1)).encode()
    result, _, data = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    assert result.rows_loaded == 2
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    assert con.execute(
        "select list(_line order by _line) from raw.salesforce__opportunity"
    ).fetchone()[0] == [2, 3]


def test_same_file_twice_even_renamed_loads_nothing_new(tmp_path: Path) -> None:
    body = crlf(SF_OPP_HEADER, sf_opp(1)).encode()
    first, _, data = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    entity = ENTITIES["salesforce__opportunity"]
    copy = tmp_path / "landing" / entity.folder / "opportunity.CSV"
    copy.write_bytes(body)
    second = ingest_file(copy, entity, data, new_load_id(), display_path="opportunity.CSV")
    assert second.status == "duplicate" and second.duplicate_of == "Opportunity.csv"
    again = ingest_file(copy, entity, data, new_load_id(), display_path="opportunity.CSV")
    assert again.status == "duplicate"
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    assert con.execute("select count(*) from raw.salesforce__opportunity").fetchone()[0] == 1
    # one redelivery, recorded by the load that first saw it (a rerun changes nothing)
    assert con.execute(
        "select source_file, duplicate_of, load_id from raw.file_delivery"
    ).fetchall() == [("opportunity.CSV", "Opportunity.csv", second.load_id)]


def test_file_cut_off_mid_row_quarantines_the_last_line(tmp_path: Path) -> None:
    body = (crlf(SF_OPP_HEADER, sf_opp(1), sf_opp(2)) + sf_opp(3)[:40]).encode()
    result, quarantined, _ = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    assert result.rows_loaded == 2
    assert [line for line, _ in quarantined] == [4]
    assert "unterminated quote" in quarantined[0][1]


def test_wrong_encoding_bytes_are_quarantined_with_reason(tmp_path: Path) -> None:
    # 0x98 is undefined in Windows-1251 and invalid in UTF-8: neither allowed encoding fits.
    good = crlf(BITRIX_HEADER, bx_deal(1)).encode("cp1251")
    bad = (
        bx_deal(2).replace("Сделка 2", "Сделка\x002").encode("cp1251").replace(b"\x00", b"\x98")
        + b"\r\n"
    )
    result, quarantined, _ = run_case(
        tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", good + bad
    )
    assert result.rows_loaded == 1
    assert quarantined == [
        (
            3,
            "invalid byte sequence for encoding utf-8, cp1251 (tried in order; add the file's "
            "encoding to options `encoding:` in sources/bitrix/source.yml)",
        )
    ]


def test_cp1251_with_decimal_comma_and_nbsp_thousands(tmp_path: Path) -> None:
    body = crlf(BITRIX_HEADER, bx_deal(1, amount="1\u00a0250\u00a0000,75")).encode("cp1251")
    result, quarantined, data = run_case(
        tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", body
    )
    assert (result.encoding, quarantined) == ("cp1251", [])
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    amount, snap, created = con.execute(
        "select amount, snapshot_date, created_at from raw.bitrix__deal_snapshot"
    ).fetchone()
    assert (amount, str(snap), str(created)) == (
        Decimal("1250000.75"),
        "2026-03-02",
        "2026-03-01 10:00:00",
    )


def test_decimal_amounts_keep_source_precision(tmp_path: Path) -> None:
    """An amount with 3 or 4 decimals loads as written (not rounded to the cent)."""
    body = crlf(
        BITRIX_HEADER,
        bx_deal(1, amount="1\u00a0250,1255"),
        bx_deal(2, amount="0,005"),
        bx_deal(3, amount="99,99"),
    ).encode("cp1251")
    result, quarantined, data = run_case(
        tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", body
    )
    assert (result.rows_loaded, quarantined) == (3, [])
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    rows = con.execute("select amount from raw.bitrix__deal_snapshot order by _line").fetchall()
    assert [r[0] for r in rows] == [Decimal("1250.1255"), Decimal("0.005"), Decimal("99.99")]
    assert con.execute("select sum(amount) from raw.bitrix__deal_snapshot").fetchone()[0] == (
        Decimal("1350.1205")
    )


def test_a_raw_layer_written_with_two_decimals_still_reads(tmp_path: Path) -> None:
    """Raw files of an earlier version (amounts as DECIMAL(18,2)) read beside new ones."""
    entity = ENTITIES["bitrix__deal_snapshot"]
    body = crlf(BITRIX_HEADER, bx_deal(1, amount="10,1234")).encode("cp1251")
    _, _, data = run_case(tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", body)
    folder = raw_dir(data, entity)
    (new,) = folder.glob("*.parquet")
    old = folder / "0000000000000000.parquet"
    con = duckdb.connect()
    con.execute(
        f"copy (select * replace (cast(20.5 as decimal(18, 2)) as amount, 'old.csv' as "
        f"_source_file) from read_parquet('{new}')) to '{old}' (format parquet)"
    )
    assert con.execute(f"select typeof(amount) from read_parquet('{old}')").fetchone()[0] == (
        "DECIMAL(18,2)"
    )
    create_raw_views(con, data, list(ENTITIES.values()))
    rows = con.execute(
        "select _source_file, amount, typeof(amount) from raw.bitrix__deal_snapshot order by 1"
    ).fetchall()
    assert rows == [
        ("deals_2026-03-02.csv", Decimal("10.1234"), "DECIMAL(38,10)"),
        ("old.csv", Decimal("20.5"), "DECIMAL(38,10)"),
    ]


def test_utf8_with_bom_and_multiline_quoted_value(tmp_path: Path) -> None:
    row = bx_deal(1).replace("Сделка 1", '"Сделка\r\nв две строки"')
    body = b"\xef\xbb\xbf" + crlf(BITRIX_HEADER, row, bx_deal(2)).encode()
    result, quarantined, _ = run_case(
        tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", body
    )
    assert (result.encoding, result.rows_loaded, quarantined) == ("utf-8", 2, [])


def test_unknown_extra_columns_are_tolerated(tmp_path: Path) -> None:
    header = SF_OPP_HEADER + ',"SystemModstamp","Description"'
    body = crlf(header, sf_opp(1) + ',"2026-01-01T00:00:00.000Z","x"').encode()
    result, quarantined, _ = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    assert (result.rows_loaded, quarantined) == (1, [])


def test_missing_required_column_quarantines_every_row_naming_the_column(tmp_path: Path) -> None:
    header = INVOICE_HEADER.replace("Сумма;", "")
    body = crlf(
        header, "123;05.03.2026;ООО Ромашка;7707083893;200,00;RUB;20.03.2026;Иван Петров;"
    ).encode("cp1251")
    result, quarantined, _ = run_case(tmp_path, "onec__invoice", "invoices.csv", body)
    assert result.rows_loaded == 0 and result.status == "rejected"
    assert quarantined == [
        (
            2,
            "missing required column(s) 'Сумма' (set `source:` of the column in "
            "sources/onec/source.yml to the file's header)",
        )
    ]


def test_renamed_optional_column_is_loaded_empty_with_a_warning(tmp_path: Path) -> None:
    header = INVOICE_HEADER.replace("Ответственный", "Менеджер")
    body = crlf(
        header, "123;05.03.2026;ООО Ромашка;7707083893;1 200,00;200,00;RUB;20.03.2026;Иван Петров;"
    ).encode("cp1251")
    result, quarantined, _ = run_case(tmp_path, "onec__invoice", "invoices.csv", body)
    assert (result.rows_loaded, quarantined) == (1, [])
    assert result.warnings == ["column 'Ответственный' is missing; loaded as empty"]


def test_dates_in_another_format_are_quarantined(tmp_path: Path) -> None:
    body = crlf(BITRIX_HEADER, bx_deal(1), bx_deal(2, created="2026/03/01 10:00")).encode("cp1251")
    result, quarantined, _ = run_case(
        tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", body
    )
    assert result.rows_loaded == 1
    assert quarantined == [
        (
            3,
            "Дата создания: '2026/03/01 10:00' does not match %d.%m.%Y %H:%M:%S (set `format:` "
            "of bitrix.deal_snapshot.created_at in sources/bitrix/source.yml)",
        )
    ]


def test_negative_and_non_numeric_amounts_are_quarantined(tmp_path: Path) -> None:
    body = crlf(
        BITRIX_HEADER, bx_deal(1, amount="-500,00"), bx_deal(2, amount="н/д"), bx_deal(3)
    ).encode("cp1251")
    result, quarantined, _ = run_case(
        tmp_path, "bitrix__deal_snapshot", "deals_2026-03-02.csv", body
    )
    assert result.rows_loaded == 1
    assert quarantined == [
        (
            2,
            "Сумма: '-500,00' is below 0 (fix the file, or change `min:` of "
            "bitrix.deal_snapshot.amount in sources/bitrix/source.yml)",
        ),
        (
            3,
            "Сумма: 'н/д' is not a number (fix the file, or set `null_values:` of "
            "bitrix.deal_snapshot.amount in sources/bitrix/source.yml)",
        ),
    ]


def test_deleted_records_and_unknown_stages_reach_raw_for_staging_to_judge(tmp_path: Path) -> None:
    body = crlf(SF_OPP_HEADER, sf_opp(1, deleted="true"), sf_opp(2, stage="Legal Review")).encode()
    result, quarantined, _ = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    assert (result.rows_loaded, quarantined) == (2, [])


def test_asterisk_layout_is_chosen_per_file_and_odd_rows_are_quarantined(tmp_path: Path) -> None:
    old = (cdr("1.1", 18) + "\n" + cdr("1.2", 18) + "\n").encode()
    result, quarantined, data = run_case(tmp_path, "asterisk__cdr", "Master_old.csv", old)
    assert (result.rows_loaded, quarantined) == (2, [])
    assert result.warnings == []  # the 18-field layout has no linkedid: nothing to warn about
    new = (cdr("2.1") + "\n" + cdr("2.2", 19) + "\n" + cdr("2.3") + "\n").encode()
    result, quarantined, data = run_case(tmp_path, "asterisk__cdr", "Master.csv", new)
    assert result.rows_loaded == 2
    assert [(line, reason.split(":")[0]) for line, reason in quarantined] == [
        (2, "MISSING COLUMNS")
    ]
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    assert con.execute(
        "select count(*) filter (where linkedid is null), count(*) filter (where linkedid is not null) "
        "from raw.asterisk__cdr"
    ).fetchone() == (2, 2)


STATEMENT = [
    "1CClientBankExchange",
    "ВерсияФормата=1.03",
    "Кодировка=Windows",
    "РасчСчет=40702810000000000001",
    "СекцияРасчСчет",
    "ДатаНачала=01.03.2026",
    "РасчСчет=40702810000000000001",
    "НачальныйОстаток=0.00",
    "ВсегоПоступило=1500.00",
    "КонечныйОстаток=1500.00",
    "КонецРасчСчет",
    "СекцияДокумент=Платежное поручение",
    "Номер=15",
    "Дата=05.03.2026",
    "Сумма=1000.00",
    "ПлательщикИНН=7707083893",
    'Плательщик=7707083893, ООО "Ромашка"',
    'Плательщик1=ООО "Ромашка"',
    "ПолучательСчет=40702810000000000001",
    "ДатаПоступило=05.03.2026",
    "НазначениеПлатежа=Оплата по счету № 123 от 01.03.2026,",
    "НазначениеПлатежа1=в т.ч. НДС 20%",
    "КонецДокумента",
    "СекцияДокумент=Банковский ордер",
    "Номер=16",
    "Дата=06.03.2026",
    "Сумма=500.00",
    "КонецДокумента",
    "КонецФайла",
]


def test_1c_statement_documents_and_account_sections(tmp_path: Path) -> None:
    body = crlf(*STATEMENT).encode("cp1251")
    result, quarantined, data = run_case(
        tmp_path, "onec__bank_payment", "statement_2026-03.txt", body
    )
    assert (result.rows_loaded, quarantined) == (2, [])
    acc, _, _ = run_case(tmp_path, "onec__bank_account_section", "statement_2026-03.txt", body)
    assert acc.rows_loaded == 1
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    first = con.execute(
        "select section_type, amount, payer_inn, payer_name, purpose, _line from raw.onec__bank_payment order by _line"
    ).fetchall()
    assert first[0] == (
        "Платежное поручение", 1000, "7707083893", 'ООО "Ромашка"',
        "Оплата по счету № 123 от 01.03.2026, в т.ч. НДС 20%", 12,
    )  # fmt: skip
    assert first[1][0] == "Банковский ордер"


def test_1c_statement_cut_off_inside_a_document(tmp_path: Path) -> None:
    body = crlf(*STATEMENT[:26]).encode("cp1251")
    result, quarantined, _ = run_case(tmp_path, "onec__bank_payment", "statement_2026-03.txt", body)
    assert result.rows_loaded == 1
    assert quarantined == [(24, "file ends inside the section opened at line 24 (cut off?)")]


def test_1c_parser_rejects_a_file_that_is_not_a_statement() -> None:
    assert list(parse_1c_bank_exchange(iter(["hello\n"]))) == [
        ("error", 1, "first line is not 1CClientBankExchange")
    ]


def test_xlsx_invoice_register(tmp_path: Path) -> None:
    import datetime as dt

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(INVOICE_HEADER.split(";"))
    ws.append(["123", dt.datetime(2026, 3, 5), "ООО Ромашка", "7707083893", 1200.5, 200.08, "RUB",
               dt.datetime(2026, 3, 20), "Иван Петров", None])  # fmt: skip
    ws.append(["124", "bad date", "ООО Ромашка", "7707083893", 10, 0, "RUB", None, None, None])
    path = tmp_path / "x.xlsx"
    wb.save(path)
    result, quarantined, data = run_case(
        tmp_path, "onec__invoice", "invoices_2026-Q1.xlsx", path.read_bytes()
    )
    assert result.rows_loaded == 1
    assert quarantined == [
        (
            3,
            "Дата: 'bad date' does not match %d.%m.%Y (set `format:` of onec.invoice.issued_on "
            "in sources/onec/source.yml)",
        )
    ]
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    assert con.execute("select amount, issued_on::varchar from raw.onec__invoice").fetchone() == (
        pytest.approx(1200.5),
        "2026-03-05",
    )


def test_unrecognised_file_is_quarantined_not_ignored(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "accounting_1c"
    landing.mkdir(parents=True)
    (landing / "notes.docx").write_bytes(b"PK\x03\x04")
    found = quarantine_unrecognised(
        tmp_path / "landing", tmp_path / "data", list(ENTITIES.values()), "L1"
    )
    assert found == ["accounting_1c/notes.docx"]
    con = duckdb.connect()
    create_raw_views(con, tmp_path / "data", list(ENTITIES.values()))
    assert con.execute("select source_file, line, reason from raw.quarantine").fetchall() == [
        ("accounting_1c/notes.docx", 0, "no source definition in sources/ matches this file")
    ]


def test_reingesting_after_a_crash_does_not_duplicate(tmp_path: Path) -> None:
    # A crash after the Parquet write but before the manifest: the rerun overwrites the
    # same content-addressed file instead of adding a second copy.
    body = crlf(SF_OPP_HEADER, sf_opp(1), sf_opp(2)).encode()
    _, _, data = run_case(tmp_path, "salesforce__opportunity", "Opportunity.csv", body)
    for manifest in (data / "manifest").glob("*.json"):
        manifest.unlink()
    entity = ENTITIES["salesforce__opportunity"]
    again = ingest_file(tmp_path / "landing" / entity.folder / "Opportunity.csv", entity, data, new_load_id(),
                        display_path="Opportunity.csv")  # fmt: skip
    assert again.status == "loaded"
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    assert con.execute("select count(*) from raw.salesforce__opportunity").fetchone()[0] == 2
    shutil.rmtree(data)


def test_identical_snapshots_of_two_days_are_both_loaded(tmp_path: Path) -> None:
    # A quiet weekend: Saturday's deal list equals Friday's byte for byte. Both are
    # snapshots (their dates differ); only a copy of the same day is a redelivery.
    body = crlf(BITRIX_HEADER, bx_deal(1)).encode("cp1251")
    fri, _, data = run_case(tmp_path, "bitrix__deal_snapshot", "deals_2026-03-06.csv", body)
    sat, _, _ = run_case(tmp_path, "bitrix__deal_snapshot", "deals_2026-03-07.csv", body)
    assert (fri.status, sat.status) == ("loaded", "loaded")
    entity = ENTITIES["bitrix__deal_snapshot"]
    copy = tmp_path / "landing" / entity.folder / "deals_2026-03-07 (1).csv"
    copy.write_bytes(body)
    again = ingest_file(copy, entity, data, new_load_id(), display_path=copy.name)
    assert again.status == "duplicate"
    con = duckdb.connect()
    create_raw_views(con, data, list(ENTITIES.values()))
    assert con.execute(
        "select list(snapshot_date::varchar order by snapshot_date) from raw.bitrix__deal_snapshot"
    ).fetchone()[0] == ["2026-03-06", "2026-03-07"]
