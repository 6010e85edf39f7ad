"""The sample-export generator: deterministic, complete, and true to the export formats."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from crmwh_tools.demo_data import REFERENCE_END, generate, generate_with_faults, previous_end
from crmwh_tools.demo_data.config import today_in_company
from crmwh_tools.demo_data.ids import inn_valid, sf_checksum, sf_id
from crmwh_tools.demo_data.people import World
from pipelines.lib.ingest import ingest_file, new_load_id
from pipelines.lib.ingest.discovery import claiming_entity
from pipelines.lib.mappings import load_entities
from pipelines.lib.quality import run_suite
from pipelines.lib.quality.duck import raw_connection
from pipelines.lib.quality.rules import load_config, pipeline_stages, raw_suite
from pipelines.run import warning_lines, warning_place, warning_reason

ROOT = Path(__file__).resolve().parents[1]
#: A demo generated in the first days of January may show freshness warnings: the
#: simulated company, like a Russian one, does no business over the New Year holidays.
JANUARY_HOLIDAY_DAYS = 14

SF_OBJECTS = [
    "User", "Account", "Contact", "Lead", "Opportunity", "OpportunityHistory",
    "OpportunityLineItem", "Product2", "Task", "Campaign", "CurrencyType", "OpportunityStage",
]  # fmt: skip


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], list[str]]:
    out = tmp_path_factory.mktemp("demo") / "landing"
    counts, notes = generate_with_faults(out, seed=42, scale="small")
    return out, counts, notes


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(landing, tmp_path) -> None:
    out, counts, _ = landing
    again = generate(tmp_path / "again", seed=42, scale="small")
    assert again == counts
    assert _digest(tmp_path / "again") == _digest(out)


def test_other_seed_gives_other_data() -> None:
    a, b = World(42, 100), World(7, 100)
    assert [a.customer(i).inn for i in range(10)] != [b.customer(i).inn for i in range(10)]
    assert [m.name for m in a.managers] != [m.name for m in b.managers]


def test_every_expected_file_exists_and_is_counted(landing) -> None:
    out, counts, _ = landing
    for obj in SF_OBJECTS:
        assert (out / f"crm_salesforce/{obj}.csv").is_file(), obj
    snapshots = sorted((out / "crm_bitrix").glob("deals_*.csv"))
    assert len(snapshots) == 45
    assert snapshots[-1].name == "deals_2026-11-20.csv"
    assert len(list((out / "crm_bitrix").glob("leads_*.csv"))) >= 3
    for name in ("Master.csv", "Master_2025.csv", "extensions.csv"):
        assert (out / "telephony_asterisk" / name).is_file()
    assert list((out / "telephony_cloud").glob("calls_2026-*.csv"))
    acc = out / "accounting_1c"
    for name in ("invoices.csv", "invoices_2026-Q4.xlsx", "expenses.csv", "product_costs.csv"):
        assert (acc / name).is_file(), name
    assert len(list(acc.glob("statement_*.txt"))) >= 12
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(counts)
    assert 1_500 <= sum(v for k, v in counts.items() if k.endswith("Opportunity.csv")) <= 2_000
    cdr = counts["telephony_asterisk/Master.csv"] + counts["telephony_asterisk/Master_2025.csv"]
    assert 15_000 <= cdr <= 25_000


def test_salesforce_format(landing) -> None:
    out, _, _ = landing
    text = (out / "crm_salesforce/Opportunity.csv").read_text(encoding="utf-8")
    header, first = text.splitlines()[:2]
    assert header.startswith('"Id","IsDeleted","AccountId","Name"')
    assert first.startswith('"') and first.endswith('"')  # every value quoted
    assert first.count('","') == header.count('","')
    assert re.search(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z"', first)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["CurrencyIsoCode"] for r in rows} >= {"RUB", "USD", "EUR"}
    assert any(r["StageName"] == "Legal Review" for r in rows)
    assert any(r["IsDeleted"] == "true" for r in rows)
    for r in rows[:200]:
        assert len(r["Id"]) == 18 and sf_checksum(r["Id"][:15]) == r["Id"][15:]
    account = (out / "crm_salesforce/Account.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        account.decode("utf-8")
    assert "ü" in account.decode("latin-1")


def test_cp1251_files_decode(landing) -> None:
    out, _, _ = landing
    files = [*sorted((out / "crm_bitrix").glob("*.csv")), *(out / "accounting_1c").glob("*.csv"),
             *(out / "accounting_1c").glob("*.txt")]  # fmt: skip
    bom = 0
    for path in files:
        raw = path.read_bytes()
        if raw.startswith(b"\xef\xbb\xbf"):
            bom += 1
            raw.decode("utf-8-sig")
            continue
        text = raw.decode("cp1251")
        assert "\r\n" in text, path.name
    assert bom == 2


def test_bitrix_snapshot_values(landing) -> None:
    out, _, _ = landing
    text = (out / "crm_bitrix/deals_2026-11-20.csv").read_text(encoding="cp1251")
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows and re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d", rows[0]["Дата создания"])
    assert all(re.fullmatch(r"-?\d{1,3}([ \u00a0]\d{3})*,\d\d", r["Сумма"]) for r in rows)
    assert "Согласование" in {r["Стадия"] for r in rows}


def _statement(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    text = path.read_bytes().decode("cp1251")
    assert text.startswith("1CClientBankExchange\r\n")
    assert text.endswith("КонецФайла\r\n")
    assert "\n" not in text.replace("\r\n", "")
    account: dict[str, str] = {}
    docs: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.split("\r\n"):
        key, _, value = line.partition("=")
        if key == "СекцияРасчСчет":
            current = account
        elif key == "СекцияДокумент":
            current = {"type": value}
            docs.append(current)
        elif key in ("КонецРасчСчет", "КонецДокумента"):
            current = None
        elif current is not None:
            current[key] = value
    return account, docs


def test_bank_statements_reconcile(landing) -> None:
    out, _, _ = landing
    ours = "40702810938000012345"
    previous_closing = None
    types: set[str] = set()
    for path in sorted((out / "accounting_1c").glob("statement_20??-??.txt")):
        acc, docs = _statement(path)
        got = sum(Decimal(d["Сумма"]) for d in docs if d["ПолучательСчет"] == ours)
        paid = sum(Decimal(d["Сумма"]) for d in docs if d["ПлательщикСчет"] == ours)
        assert Decimal(acc["ВсегоПоступило"]) == got, path.name
        assert Decimal(acc["ВсегоСписано"]) == paid, path.name
        opening, closing = Decimal(acc["НачальныйОстаток"]), Decimal(acc["КонечныйОстаток"])
        assert opening + got - paid == closing, path.name
        if previous_closing is not None:
            assert opening == previous_closing, path.name
        previous_closing = closing
        types |= {d["type"] for d in docs}
        for d in docs:
            assert bool(d["ДатаПоступило"]) == (d["ПолучательСчет"] == ours)
    assert {"Платежное поручение", "Банковский ордер", "Инкассовое поручение"} <= types


def test_asterisk_rows_have_18_or_21_fields(landing) -> None:
    out, _, _ = landing
    for name, width in (("Master.csv", 21), ("Master_2025.csv", 18)):
        with (out / "telephony_asterisk" / name).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows and all(len(r) == width for r in rows), name
        assert {r[14] for r in rows} <= {"ANSWERED", "NO ANSWER", "BUSY", "FAILED"}
        assert all((r[10] == "") == (r[14] != "ANSWERED") for r in rows)
    line = (out / "telephony_asterisk/Master_2025.csv").read_text(encoding="utf-8").splitlines()[0]
    assert re.search(r',"""[^"]+"" <[^>]+>",', line)  # clid with its own quotes
    assert re.search(r",\d+,\d+,\"", line)  # duration and billsec bare


def test_most_inns_are_checksum_valid(landing) -> None:
    out, _, _ = landing
    with (out / "accounting_1c/invoices.csv").open(encoding="cp1251", newline="") as fh:
        inns = [r["ИНН"] for r in csv.DictReader(fh, delimiter=";")]
    valid = sum(inn_valid(i) for i in inns)
    assert valid / len(inns) > 0.9
    assert valid < len(inns)  # and a few are not
    assert any(len(i) == 12 and inn_valid(i) for i in inns)


def test_invoice_xlsx_has_real_dates_and_numbers(landing) -> None:
    out, counts, _ = landing
    wb = openpyxl.load_workbook(out / "accounting_1c/invoices_2026-Q4.xlsx", read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == ["Номер", "Дата", "Контрагент", "ИНН", "Сумма", "НДС", "Валюта",
                             "Срок оплаты", "Ответственный", "Сделка"]  # fmt: skip
    assert len(rows) - 1 == counts["accounting_1c/invoices_2026-Q4.xlsx"] > 0
    assert hasattr(rows[1][1], "year") and isinstance(rows[1][4], int | float)


def test_faults_are_injected_and_listed(landing) -> None:
    out, _, notes = landing
    task = (out / "crm_salesforce/Task.csv").read_bytes()
    assert not task.endswith(b"\n") and task.rsplit(b"\n", 1)[1].count(b'"') % 2 == 1
    copy = out / "telephony_asterisk/Master_2025_copy.csv"
    assert copy.read_bytes() == (out / "telephony_asterisk/Master_2025.csv").read_bytes()
    lines = (out / "telephony_asterisk/Master.csv").read_text(encoding="utf-8").splitlines()
    assert lines[499] == lines[500]
    assert any("Legal Review" in n for n in notes) and any("IsDeleted" in n for n in notes)


def test_sf_id_checksum() -> None:
    # Documented example: 001A0000006Vm9r -> 001A0000006Vm9rIAC
    assert sf_checksum("001A0000006Vm9r") == "IAC"
    assert sf_id("006", 1) != sf_id("006", 2) and len(sf_id("006", 1)) == 18


def test_unknown_scale_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        generate(tmp_path, scale="huge")


def test_end_date_places_the_whole_year_and_its_faults(tmp_path) -> None:
    end = dt.date(2027, 3, 10)
    counts, notes = generate_with_faults(tmp_path / "a", seed=42, scale="small", end=end)
    assert generate(tmp_path / "b", seed=42, scale="small", end=end) == counts
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    snapshots = sorted((tmp_path / "a/crm_bitrix").glob("deals_*.csv"))
    assert (snapshots[0].name, snapshots[-1].name) == (
        "deals_2027-01-25.csv",
        "deals_2027-03-10.csv",
    )
    assert (
        sorted((tmp_path / "a/crm_bitrix").glob("leads_*.csv"))[-1].name == "leads_2027-03-10.csv"
    )
    assert {"accounting_1c/invoices_2027-Q1.xlsx", "telephony_asterisk/Master_2026.csv",
            "telephony_cloud/calls_2027-03.csv", "accounting_1c/statement_2026-03.txt"} <= set(counts)  # fmt: skip
    assert "accounting_1c/statement_2026-02.txt" not in counts  # the year starts 2026-03-11
    # every fault note names a file that was written (dated by the end date, not 2026-11-20)
    for note in notes:
        name = note.split(":", 1)[0].split(" ", 1)[0]
        assert "*" in name or (tmp_path / "a" / name).exists(), note
    assert previous_end(tmp_path / "a") == end and previous_end(tmp_path / "c") is None


def test_the_reference_end_date_is_the_default(landing) -> None:
    out, counts, _ = landing
    assert REFERENCE_END == dt.date(2026, 11, 20)
    assert max(counts) and previous_end(out) == REFERENCE_END


def documented_demo_warnings() -> dict[str, set[str]]:
    """The table "What a fresh demo's run prints" of docs/data-quality.md: each reason the
    run summary prints, and the places (`raw/table.column`, `marts/model`) listed for it."""
    text = (ROOT / "docs" / "data-quality.md").read_text(encoding="utf-8")
    section = text.split("## What a fresh demo's run prints", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = line.split(" | ")
        if len(cells) == 3 and cells[0].startswith("| `"):
            reason = re.findall(r"`([^`]+)`", cells[0])[0]
            table[reason] = set(re.findall(r"`([^`]+)`", cells[1]))
    return table


def undocumented(failed: list[tuple[str, str]]) -> list[str]:
    """The failed warning checks `(asset, check)` the demo's table does not explain."""
    table = documented_demo_warnings()
    return [
        f"{warning_reason(check)}: {warning_place(asset, check)}"
        for asset, check in failed
        if warning_place(asset, check) not in table.get(warning_reason(check), set())
    ]


def test_a_fresh_demo_warns_only_as_documented(tmp_path) -> None:
    """`make demo` on a fresh folder (seed 42, exports up to today): the raw layer's checks
    fail only with the planted faults documented, never on freshness (the dbt and staging
    checks of a whole run: tests/test_pipeline.py)."""
    table = documented_demo_warnings()
    assert len(table) == 4 and all(table.values())
    end = today_in_company()
    generate(tmp_path / "landing", seed=42, scale="small", end=end)
    entities = load_entities(ROOT / "sources")
    load = new_load_id()
    for path in sorted((tmp_path / "landing").rglob("*")):
        entity = claiming_entity(path, tmp_path / "landing", entities)
        if path.is_file() and entity:
            ingest_file(path, entity, tmp_path / "data", load, display_path=path.name)
    config = load_config(ROOT / "quality" / "suites.yml")
    stages = pipeline_stages(ROOT / "dbt_project" / "seeds")
    con = raw_connection(tmp_path / "data", entities)
    failed = []
    for entity in entities:
        _, outcomes = run_suite(con, raw_suite(entity, config, stages), engine="sql")
        failed += [(f"raw/{entity.table}", o.rule) for o in outcomes if not o.passed]
    con.close()
    assert not [r.name for _, r in failed if r.blocking]
    names = [(asset, rule.name) for asset, rule in failed]
    holidays = end.month == 1 and end.day <= JANUARY_HOLIDAY_DAYS  # see docs/data-quality.md
    assert undocumented([(a, c) for a, c in names if not (holidays and "freshness" in c)]) == []
    # every documented raw warning does show: the table stays true to the demo
    shown = {warning_place(a, c) for a, c in names}
    assert {p for places in table.values() for p in places if p.startswith("raw/")} <= shown


def test_the_run_summary_lists_each_warning_reason_once() -> None:
    lines = warning_lines([
        ("raw/salesforce__opportunity", "known_stage__stage_name", 3),
        ("raw/bitrix__deal_snapshot", "known_stage__stage", 12),
        ("marts/fct_deal", "accepted_values_fct_deal_is_stage_configured__False__True", None),
        ("raw/salesforce__task", "unique__id", 4),
        ("raw/onec__invoice", "unique__invoice_number__issued_on", 2),
        ("raw/onec__invoice", "inn__counterparty_inn", 12),
    ])  # fmt: skip
    assert lines == [
        "deal stages missing from the configured pipeline (seed pipeline_stages): "
        "marts/fct_deal, raw/bitrix__deal_snapshot.stage (12 rows), "
        "raw/salesforce__opportunity.stage_name (3 rows)",
        "exact duplicate rows in a file (raw keeps them, staging merges them): "
        "raw/onec__invoice (2 rows), raw/salesforce__task (4 rows)",
        "INNs with a wrong length or check digit (kept; matching by INN skips them): "
        "raw/onec__invoice.counterparty_inn (12 rows)",
    ]
    assert warning_reason("freshness__doc_date").startswith("newest record older than")
    assert warning_reason("a_new_dbt_test").startswith("other warning checks")
