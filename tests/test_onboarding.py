"""Onboarding real exports end to end, with a configuration folder only.

The fixture set tests/corpus/onboarding_e2e/ (README.md there lists what each file
reproduces) holds the exports of five kinds of system as they come — a Salesforce weekly
export, a Bitrix24 LEAD.csv, two Asterisk PBXs' Master.csv, a 1C bank statement and
invoice list — and `config/`, the files a user edits in the folder `crmwh init` writes.
The test goes the user's way, with the package installed from its wheel into a fresh
virtual environment and every command run in a folder outside the checkout: `crmwh init`
→ copy the edited files over it → `crmwh mapping check` (clean) → `crmwh run`
(publishes) → `crmwh quarantine` (nothing), then checks the marts against counts and
sums of the fixture files made here with Python's `csv` module (the 1C statement, which
is key=value lines, with str.partition).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "corpus" / "onboarding_e2e"
LANDING, CONFIG = FIXTURE / "landing", FIXTURE / "config"
CENT = Decimal("0.01")
NULL_ID = "000000000000000AAA"


def rows(path: Path, encoding: str = "utf-8", **fmt: str) -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh, **fmt))


def read_cdrs(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def statement(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header fields and the documents of a 1CClientBankExchange file."""
    header: dict[str, str] = {}
    docs: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in path.read_text(encoding="cp1251").splitlines():
        key, _, value = line.partition("=")
        if key == "СекцияДокумент":
            current = {}
        elif key == "КонецДокумента" and current is not None:
            docs.append(current)
            current = None
        elif current is not None:
            current[key] = value
        elif key not in header:
            header[key] = value
    return header, docs


def rate_on(rates: list[dict[str, str]], currency: str, day: dt.date) -> Decimal | None:
    """roubles per unit of `currency` on `day`: its latest row on or before the day."""
    if currency == "RUB":
        return Decimal(1)
    dated = [
        (dt.date.fromisoformat(r["date"]), Decimal(r["rate_to_rub"]))
        for r in rates
        if r["currency"] == currency and dt.date.fromisoformat(r["date"]) <= day
    ]
    return max(dated)[1] if dated else None


def name_key(name: str) -> str:
    """How responsible names are told apart (lower case, ё = е, spaces collapsed)."""
    return " ".join(name.lower().replace("ё", "е").split())


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed to build and install the wheel (make setup)"
    return found


@pytest.fixture(scope="module")
def installed_crmwh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`crmwh` of the package built as a wheel and installed, with the locked
    dependencies, into a new virtual environment outside the checkout."""
    base = tmp_path_factory.mktemp("installed")
    uv = _uv()

    def run(*cmd: str) -> None:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"

    run(uv, "build", "--wheel", "--out-dir", str(base / "dist"), "--quiet")
    (wheel,) = (base / "dist").glob("*.whl")
    requirements = base / "requirements.txt"
    run(uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--quiet",
        "--output-file", str(requirements))  # fmt: skip
    venv = base / "venv"
    run(uv, "venv", "--quiet", "--python", "3.11", str(venv))
    run(uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
        "-r", str(requirements), str(wheel))  # fmt: skip
    return venv / "bin" / "crmwh"


@pytest.mark.slow
def test_init_edit_check_run_quarantine_with_a_configuration_folder_only(
    tmp_path: Path, installed_crmwh: Path
) -> None:
    def crmwh(args: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
        """The installed `crmwh`, run where the user works: no checkout in sight."""
        return subprocess.run([str(installed_crmwh), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip

    started = time.monotonic()
    landing, config = tmp_path / "landing", tmp_path / "config"
    warehouse, data = tmp_path / "warehouse.duckdb", tmp_path / "data"
    shutil.copytree(LANDING, landing)
    env = dict(
        os.environ,
        CRMWH_PATHS__STATE=str(tmp_path / "state"),
        CRMWH_PATHS__DATA=str(data),
    )
    for name in ("CRMWH_PATHS__CONFIG", "CRMWH_SETTINGS", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)

    # 1. init, then the user's edits (the fixture's config/ holds the edited files only)
    init = crmwh(["init", str(config)], env, 120)
    assert init.returncode == 0, init.stderr
    edited = sorted(p.relative_to(CONFIG) for p in CONFIG.rglob("*") if p.is_file())
    tables = {p.name for p in (config / "tables").iterdir()}
    for rel in edited:  # the tables edited are copies init wrote; the mappings are new
        assert rel.parts[0] == "sources" or rel.name in tables, rel
        (config / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CONFIG / rel, config / rel)

    # 2. mapping check: every file claimed, nothing would be quarantined
    check = crmwh(
        ["mapping", "check", "--config", str(config), "--landing", str(landing)], env, 300
    )
    assert check.returncode == 0, check.stdout[-6000:] + check.stderr[-3000:]
    assert "OK: 10 file(s), every one claimed, nothing to quarantine" in check.stdout
    assert "Share.csv" not in check.stdout and "Attachments" not in check.stdout  # ignored
    # mapping files are named relative to the folder the user works in (here tmp_path)
    assert "claimed by salesforce.user (config/sources/salesforce.yml)" in check.stdout
    assert "claimed by asterisk.cdr (config/sources/asterisk.yml)" in check.stdout
    assert "claimed by onec.bank_payment (sources/onec/source.yml)" in check.stdout  # shipped

    # 3. run: publishes
    run = crmwh(
        ["run", "--config", str(config), "--landing", str(landing), "--warehouse", str(warehouse)],
        env,
        900,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-6000:]
    assert "published" in run.stdout + run.stderr
    assert "match no mapping" not in run.stdout + run.stderr  # ignored files are not listed

    # 4. quarantine: nothing (the fixture has no bad line, and every other file is ignored)
    quarantine = crmwh(["quarantine", "--data", str(data)], env, 120)
    assert quarantine.returncode == 0, quarantine.stderr
    assert quarantine.stdout.strip() == "0 quarantined row(s) in 0 file(s)"

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        check_deals(con)
        check_managers(con)
        check_calls(con)
        check_payments(con)
        check_leads(con)
        check_data_quality(con)
    finally:
        con.close()
    assert time.monotonic() - started < 240, "the end-to-end onboarding test should take < 4 min"


def check_deals(con: duckdb.DuckDBPyConnection) -> None:
    """fct_deal: one row per opportunity not deleted; amounts at source precision; the
    reporting amount (RUB) through the user's dated rates, none for a currency without one."""
    opps = [
        r for r in rows(LANDING / "crm_salesforce" / "Opportunity.csv") if r["IsDeleted"] != "true"
    ]
    rates = rows(CONFIG / "tables" / "currency_rates.csv")
    currencies = {r["IsoCode"] for r in rows(LANDING / "crm_salesforce" / "CurrencyType.csv")}
    assert "RUB" not in currencies and {"USD", "EUR", "GBP"} <= currencies
    by_stage: dict[str, Decimal] = defaultdict(Decimal)
    converted, without_rate = Decimal(0), []
    for r in opps:
        amount = Decimal(r["Amount"])
        by_stage[r["StageName"]] += amount
        # created at 09:00-16:59 UTC: the same day in Moscow
        day = dt.datetime.strptime(r["CreatedDate"], "%Y-%m-%d %H:%M:%S").date()
        rate = rate_on(rates, r["CurrencyIsoCode"], day)
        if rate is None:
            without_rate.append(r)
        else:
            converted += amount * rate
    assert any(-Decimal(r["Amount"]).as_tuple().exponent > 2 for r in opps)  # 3-4 decimals

    got = con.execute(
        "select count(*), sum(amount_original), sum(amount), count(*) filter (amount is null) "
        "from marts.fct_deal"
    ).fetchone()
    assert got[0] == len(opps)
    assert got[1] == sum(by_stage.values())  # exact: source precision
    assert got[2].quantize(CENT) == converted.quantize(CENT)
    assert abs(got[2] - converted) < Decimal("0.005")
    assert got[3] == len(without_rate) == 1
    stage_sums = dict(
        con.execute(
            "select stage, sum(amount_original) from marts.fct_deal group by stage"
        ).fetchall()
    )
    assert stage_sums == dict(by_stage)  # the org's stages, each total to the last decimal
    (no_rate,) = without_rate
    assert con.execute(
        "select currency, amount_original, amount_rate_source, is_stage_configured "
        "from marts.fct_deal where source_deal_id = ?",
        [no_rate["Id"][:15]],
    ).fetchone() == ("GBP", Decimal(no_rate["Amount"]), "none", True)
    status = Counter(
        "won"
        if r["StageName"] == "Closed Won"
        else "lost"
        if r["StageName"] == "Closed Lost"
        else "open"
        for r in opps
    )
    assert dict(
        con.execute("select status, count(*) from marts.fct_deal group by 1").fetchall()
    ) == (dict(status))
    # the null id is no account: those deals have no account, the others theirs
    null_accounts = sum(1 for r in opps if r["AccountId"] == NULL_ID)
    assert null_accounts > 0
    assert con.execute(
        "select count(*) from marts.fct_deal where account_id is null"
    ).fetchone() == (null_accounts,)


def check_managers(con: duckdb.DuckDBPyConnection) -> None:
    """dim_manager: every Salesforce user (named from FirstName LastName, User.csv has no
    Name), plus every responsible person of Bitrix and 1C no user is called."""
    users = rows(LANDING / "crm_salesforce" / "User.csv")
    assert "Name" not in users[0]
    names = {
        u["Id"][:15]: " ".join(p for p in (u["FirstName"], u["LastName"]) if p) or u["Username"]
        for u in users
    }
    responsible = {
        name_key(r["Ответственный"])
        for r in rows(LANDING / "crm_bitrix" / "LEAD.csv", "cp1251", delimiter=";")
    } | {
        name_key(r["Ответственный"])
        for r in rows(LANDING / "accounting_1c" / "invoices_2026-03.csv", delimiter=";")
    }
    assert not responsible & {name_key(n) for n in names.values()}
    got = con.execute("select manager_id, name, source_system from marts.dim_manager").fetchall()
    assert len(got) == len(users) + len(responsible)
    assert {m: n for m, n, s in got if s == "salesforce_user"} == names
    assert {m for m, _, s in got if s == "name_only"} == {f"name:{k}" for k in responsible}


def check_calls(con: duckdb.DuckDBPyConnection) -> None:
    """fct_call: pbx1 (18 fields, no linkedid) has one leg per call; pbx2 (21 fields) has
    the legs of a call under one linkedid. The fixture's userfield holds the direction a
    person gives the call (IVR legs and 6-digit / 810… numbers on the trunk included)."""
    pbx1 = read_cdrs(LANDING / "telephony_asterisk" / "pbx1" / "Master.csv")
    pbx2 = read_cdrs(LANDING / "telephony_asterisk" / "pbx2" / "Master.csv")
    assert {len(r) for r in pbx1} == {18} and {len(r) for r in pbx2} == {21}
    assert all(r[16].startswith("mainserverdss-") for r in pbx1)
    calls: dict[str, list[list[str]]] = {}
    for r in pbx1:
        calls[r[16].split("-", 1)[1]] = [r]
    for r in pbx2:
        calls.setdefault(r[19], []).append(r)

    def status(legs: list[list[str]]) -> str:
        disp = {leg[14] for leg in legs}
        for value, name in (("ANSWERED", "answered"), ("NO ANSWER", "missed"), ("BUSY", "busy")):
            if value in disp:
                return name
        return "failed"

    expected = Counter(
        (next(leg for leg in legs if leg[16] in (key, f"mainserverdss-{key}"))[17], status(legs))
        for key, legs in calls.items()
    )
    got = con.execute(
        "select direction, status, count(*) from marts.fct_call group by all"
    ).fetchall()
    assert {(d, s): n for d, s, n in got} == dict(expected)
    assert con.execute("select count(distinct source_call_id) from marts.fct_call").fetchone() == (
        len(calls),
    )
    assert sorted(
        r[0] for r in con.execute("select source_call_id from marts.fct_call").fetchall()
    ) == (sorted(calls))  # uniqueids read without the system name, as the user's mapping declares
    single = {k: legs[0] for k, legs in calls.items() if len(legs) == 1}
    assert con.execute(
        "select count(*), sum(talk_seconds) from marts.fct_call where legs = 1"
    ).fetchone() == (len(single), sum(int(r[13]) for r in single.values() if r[14] == "ANSWERED"))
    # two PBXs' files of the same name both loaded
    assert con.execute("select count(*) from marts.fct_call where legs > 1").fetchone() == (
        sum(1 for legs in calls.values() if len(legs) > 1),
    )


def check_payments(con: duckdb.DuckDBPyConnection) -> None:
    """fct_payment: the statement's documents paid to our account, to the cent; the
    payer's name is Плательщик1 (or Плательщик without its INN), not glued to the account
    and bank; a purpose naming two invoices settles both."""
    header, docs = statement(LANDING / "accounting_1c" / "statement_2026-03.txt")
    ours = header["РасчСчет"]
    incoming = [d for d in docs if d["ПолучательСчет"] == ours]
    assert 0 < len(incoming) < len(docs)
    got = con.execute(
        "select count(*), sum(amount), sum(amount_rub) from marts.fct_payment"
    ).fetchone()
    total = sum(Decimal(d["Сумма"]) for d in incoming)
    assert got == (len(incoming), total, total)
    names = dict(con.execute("select doc_number, payer_name from marts.fct_payment").fetchall())
    for d in incoming:
        if "Плательщик1" in d:
            assert "Плательщик2" in d and names[d["Номер"]] == d["Плательщик1"]
        else:
            assert names[d["Номер"]] == d["Плательщик"].split(" ", 2)[2]  # `ИНН <inn> <name>`
        assert "40702810" not in names[d["Номер"]] and "БАНК" not in names[d["Номер"]]
    (two,) = [d for d in incoming if "№ 77 и № 78" in d["НазначениеПлатежа"]]
    assert con.execute(
        "select invoices_settled, matched_amount, match_status from marts.fct_payment "
        "where doc_number = ?",
        [two["Номер"]],
    ).fetchone() == (2, Decimal(two["Сумма"]), "matched")


def check_leads(con: duckdb.DuckDBPyConnection) -> None:
    """The lead mart, summed: every lead of LEAD.csv once, the converted ones."""
    leads = rows(LANDING / "crm_bitrix" / "LEAD.csv", "cp1251", delimiter=";")
    assert len({r["ID"] for r in leads}) == len(leads)
    got = con.execute(
        "select sum(new_leads), sum(bitrix_leads), sum(salesforce_leads), sum(converted_leads) "
        "from marts.mart_lead_processing"
    ).fetchone()
    converted = sum(1 for r in leads if r["Статус"] == "Сконвертирован")
    assert got == (len(leads), len(leads), 0, converted)


def check_data_quality(con: duckdb.DuckDBPyConnection) -> None:
    """mart_data_quality: a row for every table that had a file, rows read = loaded = the
    file's rows, none quarantined; the deal without a rate is counted."""
    sf = LANDING / "crm_salesforce"
    expected = {
        "salesforce__user": len(rows(sf / "User.csv")),
        "salesforce__account": len(rows(sf / "Account.csv", "latin-1")),
        "salesforce__opportunity": len(rows(sf / "Opportunity.csv")),
        "salesforce__currency_type": len(rows(sf / "CurrencyType.csv")),
        "bitrix__lead": len(rows(LANDING / "crm_bitrix" / "LEAD.csv", "cp1251", delimiter=";")),
        "asterisk__cdr": sum(
            len(read_cdrs(LANDING / "telephony_asterisk" / pbx / "Master.csv"))
            for pbx in ("pbx1", "pbx2")
        ),
        "onec__bank_payment": len(
            statement(LANDING / "accounting_1c" / "statement_2026-03.txt")[1]
        ),
        "onec__bank_account_section": 1,
        "onec__invoice": len(
            rows(LANDING / "accounting_1c" / "invoices_2026-03.csv", delimiter=";")
        ),
    }
    got = con.execute(
        "select table_name, sum(rows_read), sum(rows_loaded), sum(rows_quarantined), "
        "sum(deals_without_rate) from marts.mart_data_quality group by 1"
    ).fetchall()
    assert {t: (r, lo, q) for t, r, lo, q, _ in got} == {t: (n, n, 0) for t, n in expected.items()}
    assert sum(d for *_, d in got) == 1
