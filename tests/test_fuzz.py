"""No value in an input file can stop the warehouse from publishing.

The demo exports with one garbage value (`x`, `1.2.3`, `-`, `mainserver-1`, a 40-digit
number, the date 31.02.2025) in each typed column of each table, and in the text columns
that the models read as numbers (the Asterisk uniqueid, the 1C invoice number): `crmwh run`
still publishes (exit 0, or 2 for published with an unreadable file), each bad value is
quarantined with its file or counted as a value that did not convert, and the
data-quality mart shows it.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.mappings import Entity, load_entities
from tests.conftest import ROOT, Built, crmwh

GARBAGE = ["x", "1.2.3", "-", "mainserver-1", "9" * 40, "31.02.2025"]
# text columns the models convert (macro try_cast): not typed at ingestion, so a bad value
# is loaded and counted in int_unparsed_values instead of quarantined
PARSED_IN_DBT = {("asterisk", "cdr"): ["uniqueid"], ("onec", "invoice"): ["invoice_number"]}


@dataclass
class Mutation:
    table: str
    source_file: str  # relative to the landing folder
    column: str  # the label quarantine reasons use: the source column, else the field name
    value: str
    in_dbt: bool
    field: str = ""  # the mapped field (int_unparsed_values.column_name)


def _garbage_for(ctype: str, i: int) -> str:
    choices = [g for g in GARBAGE if not (ctype == "number" and g.isdigit())]
    return choices[i % len(choices)]


def _decode(raw: bytes, encodings: list[str]) -> tuple[str, str]:
    for enc in encodings:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"no encoding of {encodings} decodes the file")


def _mutate_delimited(path: Path, entity: Entity, landing: Path, out: list[Mutation]) -> None:
    opts = entity.options
    encodings = [str(e) for e in opts.get("encoding", ["utf-8"])]
    text, enc = _decode(path.read_bytes(), encodings)
    bom = text.startswith("\ufeff")
    rows = list(
        csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=opts.get("delimiter", ","))
    )
    header = bool(opts.get("header", True))
    if header:
        names = rows[0]
        data_start = 1
    else:
        layout = next(
            (lay for lay in entity.layouts if len(lay) == len(rows[0])), entity.layouts[0]
        )
        names = list(layout)
        data_start = 0
    index = {n.strip(): i for i, n in enumerate(names)}
    targets = [
        (c.source or c.name, c.type, False, c.name) for c in entity.columns if c.type != "string"
    ]
    targets += [
        (c.source or c.name, "string", True, c.name)
        for c in entity.columns
        if c.name in PARSED_IN_DBT.get((entity.system, entity.name), [])
    ]
    n_data = len(rows) - data_start
    used = 0
    for label, ctype, in_dbt, field in targets:
        col = index.get(label)
        if col is None or n_data < 2:
            continue
        row = data_start + (1 + used * 3) % n_data
        value = "x" if in_dbt else _garbage_for(ctype, used)
        rows[row][col] = value
        rel = str(path.relative_to(landing))
        out.append(Mutation(entity.table, rel, label, value, in_dbt, field))
        used += 1
    buf = io.StringIO()
    csv.writer(buf, delimiter=opts.get("delimiter", ","), lineterminator="\n").writerows(rows)
    path.write_bytes((("\ufeff" if bom else "") + buf.getvalue()).encode(enc))


def _mutate_xlsx(path: Path, entity: Entity, landing: Path, out: list[Mutation]) -> None:
    import openpyxl

    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    header = [str(c.value).strip() if c.value is not None else "" for c in ws[1]]
    used = 0
    for c in entity.columns:
        label = c.source or c.name
        if c.type == "string" or label not in header:
            continue
        value = _garbage_for(c.type, used)
        ws.cell(row=3 + used, column=header.index(label) + 1, value=value)
        out.append(Mutation(entity.table, str(path.relative_to(landing)), label, value, False))
        used += 1
    wb.save(path)


def _mutate_1c(path: Path, landing: Path, out: list[Mutation]) -> None:
    text = path.read_bytes().decode("cp1251")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    docs = [i for i, line in enumerate(lines) if line.startswith("СекцияДокумент=")]
    plan = [(docs[0], "Сумма=", "amount", "1.2.3"), (docs[1], "Дата=", "doc_date", "31.02.2025")]
    for start, key, label, value in plan:
        i = next(j for j in range(start, len(lines)) if lines[j].startswith(key))
        lines[i] = key + value
        out.append(
            Mutation("onec__bank_payment", str(path.relative_to(landing)), label, value, False)
        )
    path.write_bytes(("\r\n" if "\r\n" in text else "\n").join(lines).encode("cp1251"))


def mutate_landing(landing: Path) -> list[Mutation]:
    """One garbage value per typed column of the first file of every table."""
    out: list[Mutation] = []
    for entity in load_entities(ROOT / "sources"):
        folder = landing / entity.folder
        files = sorted(p for p in folder.rglob("*") if p.is_file() and entity.matches(p))
        if not files:
            continue
        path = files[0]
        if entity.format == "1c_bank_exchange":
            if entity.name == "bank_payment":
                _mutate_1c(path, landing, out)
        elif path.suffix.lower() == ".xlsx":
            _mutate_xlsx(path, entity, landing, out)
        else:
            _mutate_delimited(path, entity, landing, out)
    return out


def test_mutating_finds_a_typed_column_in_every_table(tmp_path: Path, demo_build: Built) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(demo_build.landing, landing)
    mutations = mutate_landing(landing)
    tables = {m.table for m in mutations}
    assert {"asterisk__cdr", "onec__bank_payment", "onec__invoice", "salesforce__opportunity",
            "bitrix__deal_snapshot", "cloud_pbx__call"} <= tables  # fmt: skip
    assert {m.value for m in mutations} >= set(GARBAGE)


@pytest.mark.slow
def test_garbage_in_every_typed_column_still_publishes(tmp_path: Path, demo_build: Built) -> None:
    landing, data, state = tmp_path / "landing", tmp_path / "data", tmp_path / "state"
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copytree(demo_build.landing, landing)
    mutations = mutate_landing(landing)
    env = dict(os.environ, CRMWH_PATHS__STATE=str(state), CRMWH_PATHS__DATA=str(data))
    run = crmwh(["run", "--landing", str(landing), "--warehouse", str(warehouse)], env, 3600)
    assert run.returncode in (0, 2), f"not published:\n{run.stdout[-6000:]}\n{run.stderr[-4000:]}"
    assert warehouse.exists() and "published" in run.stdout

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        quarantined = con.execute(
            "select source_file, reason from raw.quarantine where line > 0"
        ).fetchall()
        unparsed = {
            (t, c): n
            for t, c, n in con.execute(
                "select table_name, column_name, sum(unparsed_count) "
                "from intermediate.int_unparsed_values group by 1, 2"
            ).fetchall()
        }
        per_table = dict(
            con.execute(
                "select table_name, sum(coalesce(rows_quarantined, 0) + unparsed_values) "
                "from marts.mart_data_quality group by 1"
            ).fetchall()
        )
    finally:
        con.close()
    missing = []
    for m in mutations:
        if m.in_dbt:
            if not unparsed.get((m.table, m.field)):
                missing.append(f"{m.table}.{m.column} {m.value!r}: not in int_unparsed_values")
        elif not any(f == m.source_file and m.column in r for f, r in quarantined):
            missing.append(f"{m.source_file} {m.column} {m.value!r}: not quarantined")
    assert not missing, missing
    for table in {m.table for m in mutations}:
        assert per_table.get(table, 0) > 0, f"mart_data_quality does not count {table}"
    assert "values that did not convert" in run.stdout
