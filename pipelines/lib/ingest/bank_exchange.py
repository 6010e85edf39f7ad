"""The 1CClientBankExchange reader: parses the text exchange format of Russian bank clients
(`СекцияДокумент` and `СекцияРасчСчет` sections) into the canonical fields of the two entities it
feeds, and writes them as UTF-8 CSV with the original line numbers for DuckDB.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from pipelines.lib.ingest.encoding import _readable
from pipelines.lib.ingest.options import Prepared
from pipelines.lib.mappings import Entity

# 1CClientBankExchange keys -> canonical fields of the two entities it feeds.
_1C_DOC_KEYS = {
    "Номер": "doc_number",
    "Дата": "doc_date",
    "Сумма": "amount",
    "ПлательщикСчет": "payer_account",
    "ПлательщикИНН": "payer_inn",
    "ПлательщикКПП": "payer_kpp",
    "ПолучательСчет": "recipient_account",
    "ПолучательИНН": "recipient_inn",
    "ДатаПоступило": "received_on",
    "ДатаСписано": "debited_on",
}
_1C_ACC_KEYS = {
    "РасчСчет": "account",
    "ДатаНачала": "period_start",
    "ДатаКонца": "period_end",
    "НачальныйОстаток": "opening_balance",
    "ВсегоПоступило": "total_received",
    "ВсегоСписано": "total_debited",
    "КонечныйОстаток": "closing_balance",
}


def _join_parts(values: dict[str, str], base: str, strip_inn: bool = False) -> str:
    """A 1C value split over `<base>` and `<base>1..`: a party name or the payment purpose.

    Party names (`strip_inn`): `<base>1` is the full name; `<base>2..4` are the account,
    the bank and the bank's city of an indirect payment, not parts of the name. Without a
    `<base>1` the name is `<base>` alone, which may be prefixed with the INN
    (`Плательщик=ИНН 7701234567 ООО "Ромашка"`): the prefix is stripped.
    For the purpose (`НазначениеПлатежа1..`), the parts continue one another.
    """
    if strip_inn:
        name = values.get(f"{base}1", "").strip()
        if name:
            return name
        return re.sub(r"^(ИНН\s*)?\d{10}(\d{2})?\s*,?\s*", "", values.get(base, "").strip())
    numbered = [values.get(f"{base}{i}", "").strip() for i in range(1, 6)]
    parts = [values.get(base, "").strip(), *numbered]
    return " ".join(p for p in parts if p)


def parse_1c_bank_exchange(lines: Iterator[str]) -> Iterator[tuple[str, int, dict[str, str] | str]]:
    """Yield ('document'|'account', start line, fields) or ('error', line, reason).

    Sections are `СекцияДокумент=…`/`КонецДокумента` and `СекцияРасчСчет`/`КонецРасчСчет`;
    a section that is not closed before the file ends (a cut-off file) is an error.
    """
    header_account = ""
    current: dict[str, str] | None = None
    kind = ""
    start = 0
    saw_end = False
    lineno = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n").lstrip("\ufeff")
        if lineno == 1:
            if line.strip() != "1CClientBankExchange":
                yield ("error", 1, "first line is not 1CClientBankExchange")
                return
            continue
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if key == "КонецФайла":
            saw_end = True
            break
        if key == "СекцияДокумент":
            if current is not None:
                yield ("error", start, f"section opened at line {start} is not closed")
            current, kind, start = {"section_type": value.strip()}, "document", lineno
            continue
        if key == "СекцияРасчСчет":
            if current is not None:
                yield ("error", start, f"section opened at line {start} is not closed")
            current, kind, start = {}, "account", lineno
            continue
        if key in {"КонецДокумента", "КонецРасчСчет"}:
            if current is None:
                yield ("error", lineno, f"{key} without an open section")
                continue
            yield (kind, start, current)
            current = None
            continue
        if not sep:
            yield ("error", lineno, f"line is not key=value: {line[:80]!r}")
            continue
        if current is None:
            if key == "РасчСчет":
                header_account = value.strip()
            continue
        current[key] = value
        if kind == "document":
            current.setdefault("statement_account", header_account)
    if current is not None:
        yield ("error", start, f"file ends inside the section opened at line {start} (cut off?)")
    elif not saw_end and lineno > 1:
        yield ("error", lineno, "file has no КонецФайла line (cut off?)")


def _1c_fields(kind: str, values: dict[str, str]) -> dict[str, str]:
    if kind == "account":
        return {canon: values.get(key, "") for key, canon in _1C_ACC_KEYS.items()}
    out = {canon: values.get(key, "") for key, canon in _1C_DOC_KEYS.items()}
    out["section_type"] = values.get("section_type", "")
    out["payer_name"] = _join_parts(values, "Плательщик", strip_inn=True)
    out["recipient_name"] = _join_parts(values, "Получатель", strip_inn=True)
    out["purpose"] = _join_parts(values, "НазначениеПлатежа")
    out["statement_account"] = values.get("statement_account", "")
    return out


def _prepare_1c(path: Path, entity: Entity, workdir: Path) -> Prepared:
    candidates = [str(e).lower() for e in entity.options.get("encoding", ["cp1251"])]
    readable, read_enc, enc, invalid, tried = _readable(path, candidates, workdir)
    want = "account" if entity.name == "bank_account_section" else "document"
    cols = [c.name for c in entity.columns]
    out = workdir / (path.name + f".{want}.csv")
    quarantine: list[tuple[int, str, str]] = []
    with (
        readable.open("r", encoding=read_enc, newline="") as fin,
        out.open("w", encoding="utf-8", newline="") as fout,
    ):
        writer = csv.writer(fout, delimiter=",", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([*cols, "_line"])
        for kind, line, payload in parse_1c_bank_exchange(iter(fin)):
            if kind == "error":
                # Section errors belong to documents; file-level errors to both entities.
                if want == "document" or "first line" in str(payload):
                    quarantine.append((line, "", str(payload)))
                continue
            if kind != want:
                continue
            assert isinstance(payload, dict)
            fields = _1c_fields(kind, payload)
            writer.writerow([fields.get(c, "") for c in cols] + [line])
    return Prepared(out, "utf-8", enc, ",", True, line_column=True,
                    preset_quarantine=quarantine, invalid_bytes=invalid, tried=tried)  # fmt: skip
