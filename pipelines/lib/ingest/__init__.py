"""Ingestion: landed export files -> append-only Parquet raw layer + quarantine + manifest.

One machinery for every format: a *reader* turns a file into delimited UTF-8 (or Latin-1)
text that DuckDB's CSV reader can scan (CSV files are read in place when DuckDB can read
their encoding; cp1251 is transcoded in a streaming pass; XLSX and 1CClientBankExchange are
converted by Python because DuckDB cannot read them), then DuckDB parses, types and splits
the rows: good rows go to `data/raw/<system>/<entity>/<sha>.parquet`, bad ones to
`data/quarantine/...` with file, line and reason. A manifest entry per file and entity is
written last, keyed by content checksum, so a file (even renamed) is never loaded twice and
a crash half-way leaves nothing that a rerun would duplicate.

Line numbers are record numbers as DuckDB counts them: the header is line 1 and a quoted
value spanning several physical lines counts once.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lib.mappings import Column, Entity
from pipelines.lib.settings import PROJECT_ROOT, Settings, duckdb_pragmas
from pipelines.lib.warehouse import (
    deliveries_dir,
    manifest_dir,
    quarantine_dir,
    raw_dir,
    sql_ident,
    sql_str,
)

CHUNK = 1 << 20
NBSP = "\u00a0"
NNBSP = "\u202f"


@dataclass(frozen=True)
class IngestOptions:
    """What the settings say about reading landed files: `ingest:`, `company.timezone`
    (the export day of a file dated by its modification time) and `duckdb:`. The
    defaults are those of the shipped settings.yml; a run passes
    `IngestOptions.from_settings(settings)`."""

    timezone: str = "Europe/Moscow"
    allow_symlinks_inside_landing: bool = False
    xlsx_max_rows: int = 1_048_576
    xlsx_max_columns: int = 500
    duckdb: tuple[tuple[str, Any], ...] = ()  # Settings.duckdb_options(), as pairs

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestOptions:
        ing = settings.section("ingest")
        return cls(
            timezone=settings.timezone,
            allow_symlinks_inside_landing=bool(ing.get("allow_symlinks_inside_landing", False)),
            xlsx_max_rows=int(ing.get("xlsx_max_rows", 1_048_576)),
            xlsx_max_columns=int(ing.get("xlsx_max_columns", 500)),
            duckdb=tuple(settings.duckdb_options().items()),
        )

    def duckdb_pragmas(self, temp_dir: Path) -> str:
        """`set` statements for an ingestion's DuckDB connection (spills under `temp_dir`
        unless a `duckdb.temp_directory` is configured)."""
        options = dict(self.duckdb) or {"default_temp_directory": str(temp_dir)}
        return duckdb_pragmas(options, temp_dir)


DEFAULT_OPTIONS = IngestOptions()


class IngestError(RuntimeError):
    """A file cannot be read at all; the message names the file and the reason."""


@dataclass
class FileResult:
    """What happened to one file for one entity; also the manifest entry."""

    load_id: str
    loaded_at: str
    source_system: str
    entity: str
    table_name: str
    source_file: str
    file_name: str
    file_sha256: str
    file_bytes: int
    encoding: str | None
    status: str  # loaded | partial | rejected | duplicate | empty | header_only | failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    freshness_at: str | None = None
    file_key: str = ""  # identity in the manifest: content checksum (+ values in the name)
    partition_start: str | None = None  # export dates the file covers (for backfills)
    partition_end: str | None = None
    duplicate_of: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    columns_missing: list[str] = field(default_factory=list)  # mapped, absent from the file
    columns_ignored: list[str] = field(default_factory=list)  # in the file, not mapped

    def manifest_record(self) -> dict[str, object]:
        keep = {
            "load_id", "loaded_at", "source_system", "entity", "table_name", "source_file",
            "file_name", "file_sha256", "file_bytes", "encoding", "status", "rows_read",
            "rows_loaded", "rows_quarantined", "freshness_at", "partition_start", "partition_end",
            "file_key",
        }  # fmt: skip
        return {k: v for k, v in asdict(self).items() if k in keep}


def export_dates(
    path: Path, timezone: str = "Europe/Moscow", entity: Entity | None = None
) -> tuple[dt.date, dt.date]:
    """The export dates a file covers: the file's partition for daily runs and backfills.

    By default (and without an entity): its name's YYYY-MM-DD (one day) or YYYY-MM (the
    month), else the day it was last modified. An entity's `export_date:` may instead take
    the latest value of a column, a declared default day, or the modification day only,
    tried in the declared order.
    """
    spec = entity.export_date if entity is not None else {"from": ("name", "mtime")}
    for source in spec["from"]:
        if source == "name":
            span = _name_dates(path.name)
        elif source == "column" and entity is not None:
            span = _column_dates(path, entity, spec["column"])
        elif source == "default":
            span = (spec["default"], spec["default"])
        else:
            span = _mtime_dates(path, timezone)
        if span is not None:
            return span
    return _mtime_dates(path, timezone)


def _name_dates(name: str) -> tuple[dt.date, dt.date] | None:
    m = re.search(r"(\d{4})-(\d{2})-(\d{2})", name)
    if m:
        try:
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
        return day, day
    m = re.search(r"(\d{4})-(\d{2})(?!\d)", name)
    if m and 1 <= int(m[2]) <= 12:
        first = dt.date(int(m[1]), int(m[2]), 1)
        nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return first, nxt - dt.timedelta(days=1)
    return None


def _mtime_dates(path: Path, timezone: str) -> tuple[dt.date, dt.date]:
    from zoneinfo import ZoneInfo

    day = dt.datetime.fromtimestamp(path.stat().st_mtime, ZoneInfo(timezone)).date()
    return day, day


_COLUMN_DATES: dict[tuple[object, ...], tuple[dt.date, dt.date] | None] = {}


def _column_dates(path: Path, entity: Entity, column: str) -> tuple[dt.date, dt.date] | None:
    """The latest valid value of a date/timestamp column of the file (None when it has none).

    Read with the same typing as the ingest (so a run's partitions and the manifest agree);
    remembered per file version, since partitions are asked for more than once per run.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, entity.table, column)
    if key in _COLUMN_DATES:
        return _COLUMN_DATES[key]
    day = None
    workdir = Path(tempfile.mkdtemp(prefix="export-date-"))
    con = duckdb.connect()
    try:
        prep = prepare(path, entity, workdir)
        names, _ = _load_into_duckdb(con, prep, entity, path)
        plan = _column_plan(entity, names, prep)
        col = plan.by_name[column]
        if col.value != "null":
            cond = f"({col.error}) is null" if col.error != "null" else "true"
            day = con.execute(
                f"select cast(max(case when {cond} then {col.value} end) as date) from src"
            ).fetchone()[0]
    except (IngestError, duckdb.Error, UnicodeError, OSError):
        day = None
    finally:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
    span = (day, day) if day is not None else None
    _COLUMN_DATES[key] = span
    return span


def filename_values(entity: Entity, name: str) -> dict[str, str | None]:
    """Values an entity takes from the file name (e.g. a snapshot date); None where the
    name does not match (the field's `default:` then applies, see `_split_and_write`)."""
    out: dict[str, str | None] = {}
    for field_name, spec in entity.filename_fields.items():
        m = re.search(spec["pattern"], name)
        out[field_name] = m.group(1) if m else None
    return out


def file_key(sha: str, entity: Entity, name: str) -> str:
    """A file's identity: its content checksum, plus the values its name carries.

    Two byte-identical daily snapshots of different dates (a quiet weekend) are two
    snapshots, not a redelivery; the same snapshot under another name is a redelivery.
    """
    values = filename_values(entity, name)
    if not values:
        return sha
    return hashlib.sha256(f"{sha}|{json.dumps(values, sort_keys=True)}".encode()).hexdigest()


def failed_path(data_dir: Path, entity: Entity, key: str) -> Path:
    """Where the failure to read one file version (by `file_key`) is remembered."""
    return data_dir / "failed" / f"{entity.table}__{key}.json"


def mapping_fingerprint(entity: Entity) -> str:
    """A checksum of what decides how a file is read: the mapping file's bytes (and the
    entity). A remembered failure is retried when the file or its mapping changes."""
    h = hashlib.sha256(entity.table.encode())
    if entity.definition_file is not None and entity.definition_file.is_file():
        h.update(entity.definition_file.read_bytes())
    return h.hexdigest()


def failed_record(data_dir: Path, entity: Entity, key: str) -> dict[str, Any] | None:
    """The remembered failure of this file version, if the mapping is still the same."""
    path = failed_path(data_dir, entity, key)
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("mapping_sha256") != mapping_fingerprint(entity):
        return None
    return rec


def duck_path(path: Path) -> str:
    """`path` as a literal file name for DuckDB's readers, which expand `*`, `?` and `[...]`
    as a glob even in a list: each of those characters is written as a one-character class
    (`?` -> `[?]`), so a file named `leads_2026-11-2?.csv` reads only itself."""
    text = str(path)
    if not any(ch in text for ch in "*?["):
        return text
    return re.sub(r"([*?\[])", r"[\1]", text)


def new_load_id() -> str:
    """A sortable, unique id for one ingestion run."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:6]}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _norm_header(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("\ufeff", "").replace(NBSP, " ")).strip().casefold()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- readers


@dataclass
class Prepared:
    """A file ready for DuckDB's CSV reader."""

    path: Path
    encoding: str  # what DuckDB reads it as: utf-8 or latin-1
    source_encoding: str  # what the export was written in
    delimiter: str
    header: bool
    line_column: bool = False  # the converter wrote the original line number as `_line`
    preset_quarantine: list[tuple[int, str, str]] = field(default_factory=list)
    invalid_bytes: bool = False
    tried: tuple[str, ...] = ()  # the declared encodings, in the order they were tried


def _decodes(path: Path, encoding: str) -> bool:
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                dec.decode(chunk)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _transcode(src: Path, encoding: str, dst: Path, errors: str = "strict") -> None:
    dec = codecs.getincrementaldecoder(encoding)(errors=errors)
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        for chunk in iter(lambda: fin.read(CHUNK), b""):
            fout.write(dec.decode(chunk))
        fout.write(dec.decode(b"", final=True))


def _choose_encoding(path: Path, candidates: list[str]) -> tuple[str, bool]:
    """First candidate that decodes the whole file strictly; else the one that fits most.

    A byte-order mark names the encoding whatever the candidates: UTF-8, or UTF-16 (Excel's
    "Unicode text" save), which would otherwise decode as garbage in a one-byte encoding.
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", not _decodes(path, "utf-8-sig")
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and head[:4] != codecs.BOM_UTF32_LE:
        return "utf-16", not _decodes(path, "utf-16")
    for enc in candidates:
        if _decodes(path, enc):
            return enc, False
    # None fits the whole file: take the one that fits most of it; the lines with
    # undecodable bytes are quarantined by the caller.
    return min(candidates, key=lambda enc: _count_undecodable(path, enc)), True


def _count_undecodable(path: Path, encoding: str) -> int:
    dec = codecs.getincrementaldecoder(encoding)(errors="replace")
    bad = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            bad += dec.decode(chunk).count("\ufffd")
    return bad


# Bytes by UTF-8 role: lead of 2 (a), 3 (b), 4 (c) bytes, continuation (C), other (.).
# A line holding none of aC, bCC, cCCC cannot be UTF-8 beyond ASCII.
_UTF8_ROLES = bytes(
    ord("a") if 0xC2 <= i <= 0xDF
    else ord("b") if 0xE0 <= i <= 0xEF
    else ord("c") if 0xF0 <= i <= 0xF4
    else ord("C") if 0x80 <= i <= 0xBF
    else ord(".")
    for i in range(256)
)  # fmt: skip


def _utf8_like(block: bytes) -> list[int]:
    """Offsets in `block` where a multi-byte UTF-8 sequence may start (a superset)."""
    roles = block.translate(_UTF8_ROLES)
    found = []
    for pattern in (b"aC", b"bCC", b"cCCC"):
        i = roles.find(pattern)
        while i != -1:
            found.append(i)
            i = roles.find(pattern, i + 1)
    return sorted(found)


# DuckDB's latin-1 reader rejects the C1 range that Python's latin-1 maps to U+0080..U+009F.
_C1_BYTES = re.compile(rb"[\x80-\x9f]")


def _ascii_compatible(encoding: str) -> bool:
    try:
        return 'a;,\n\r"'.encode(encoding) == b'a;,\n\r"'
    except LookupError:
        return False


def _has_c1_bytes(path: Path) -> bool:
    with path.open("rb") as fh:
        return any(_C1_BYTES.search(chunk) for chunk in iter(lambda: fh.read(CHUNK), b""))


def _decode_block(block: bytes, candidates: list[str]) -> tuple[str, set[str], int]:
    """Decode whole lines: each line by the first candidate that decodes it strictly.

    Returns the text, the encodings used and the number of lines no candidate decodes
    (written with U+FFFD where the bytes are invalid, so that they are quarantined).
    """
    first = candidates[0]
    try:
        return block.decode(first), ({first} if not block.isascii() else set()), 0
    except UnicodeDecodeError:
        pass
    if len(candidates) > 1 and codecs.lookup(first).name == "utf-8":
        second = candidates[1]
        try:
            whole = block.decode(second)
        except UnicodeDecodeError:
            whole = None
        if whole is not None:
            # Every line decodes as the second candidate; only lines that may be UTF-8
            # need trying first (a fast path for a single-byte export with a UTF-8 line).
            starts = _utf8_like(block)
            if not starts:
                return whole, {second}, 0
            parts: list[str] = []
            used_here = {second}
            cursor = 0
            for pos in starts:
                if pos < cursor:
                    continue
                begin = block.rfind(b"\n", 0, pos) + 1
                end = block.find(b"\n", pos)
                end = len(block) if end == -1 else end + 1
                parts.append(block[cursor:begin].decode(second))
                line = block[begin:end]
                try:
                    parts.append(line.decode(first))
                    used_here.add(first)
                except UnicodeDecodeError:
                    parts.append(line.decode(second))
                cursor = end
            parts.append(block[cursor:].decode(second))
            return "".join(parts), used_here, 0
    out: list[str] = []
    used: set[str] = set()
    bad = 0
    for line in block.splitlines(keepends=True):
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        for enc in candidates:
            try:
                out.append(line.decode(enc))
            except UnicodeDecodeError:
                continue
            used.add(enc)
            break
        else:  # shown as the candidate that reads most of it, U+FFFD where none does
            text = min(
                (line.decode(enc, errors="replace") for enc in candidates),
                key=lambda t: t.count("\ufffd"),
            )
            out.append(text if "\ufffd" in text else text + "\ufffd")
            bad += 1
    return "".join(out), used, bad


def _transcode_by_line(src: Path, candidates: list[str], dst: Path) -> tuple[list[str], int]:
    """Write `src` as UTF-8, decoding line by line through the candidates (see
    `_decode_block`). Returns the encodings used (in candidate order) and undecodable lines."""
    used: set[str] = set()
    bad = 0
    rest = b""
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while True:
            chunk = fin.read(CHUNK)
            data = rest + chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
                block, rest = data[:cut], data[cut:]
            else:
                block, rest = data, b""
            if block:
                text, u, b = _decode_block(block, candidates)
                fout.write(text)
                used |= u
                bad += b
            if not chunk:
                break
    return [e for e in candidates if e in used], bad


def _readable(
    path: Path, candidates: list[str], workdir: Path
) -> tuple[Path, str, str, bool, tuple[str, ...]]:
    """A version of the file that DuckDB's CSV reader can scan.

    Returns (file, its encoding for DuckDB, the export's encoding, whether some lines have
    bytes no declared encoding decodes, the encodings tried). A file the first declared
    encoding decodes whole is read in place when DuckDB can (UTF-8; Latin-1 without C1
    bytes) and transcoded otherwise; any other file is decoded line by line through the
    declared encodings, the first that decodes a line strictly winning for that line.
    """
    out = workdir / (path.name + ".utf8.csv")
    with path.open("rb") as fh:
        head = fh.read(4)
    bom = head.startswith(codecs.BOM_UTF8) or (
        head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and head[:4] != codecs.BOM_UTF32_LE
    )
    if bom or not all(_ascii_compatible(e) for e in candidates):
        enc, invalid = _choose_encoding(path, candidates)
        if codecs.lookup(enc).name == "utf-8" and not invalid:
            return path, "utf-8", enc, False, (enc,)
        _transcode(path, enc, out, errors="replace" if invalid else "strict")
        return out, "utf-8", enc, invalid, (enc,)
    first = candidates[0]
    if _decodes(path, first):
        norm = codecs.lookup(first).name
        if norm == "utf-8":
            return path, "utf-8", first, False, tuple(candidates)
        if norm == "iso8859-1" and not _has_c1_bytes(path):
            return path, "latin-1", first, False, tuple(candidates)
        _transcode(path, first, out)
        return out, "utf-8", first, False, tuple(candidates)
    used, bad = _transcode_by_line(path, candidates, out)
    return out, "utf-8", ", ".join(used) or first, bad > 0, tuple(candidates)


def _prepare_delimited(path: Path, entity: Entity, workdir: Path) -> Prepared:
    opts = entity.options
    candidates = [str(e).lower() for e in opts.get("encoding", ["utf-8"])]
    readable, duck_enc, enc, invalid, tried = _readable(path, candidates, workdir)
    return Prepared(
        readable, duck_enc, enc, opts.get("delimiter", ","), opts.get("header", True),
        invalid_bytes=invalid, tried=tried,
    )  # fmt: skip


def _xlsx_cell(value: object, entity: Entity) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.strftime(_formats(entity, "date")[0])
        return value.strftime(_formats(entity, "timestamp")[0])
    if isinstance(value, dt.date):
        return value.strftime(_formats(entity, "date")[0])
    if isinstance(value, float):
        text = repr(value) if not value.is_integer() else str(int(value))
        return text.replace(".", entity.options.get("decimal_separator", "."))
    return str(value)


XLSX_LAST_ROW = 1_048_576  # the format's last row: rows numbered beyond it are not read


def _blank_count(cells: tuple[object, ...]) -> int:
    """Empty cells (None or ''), counted at C speed: a row may be 16,384 cells wide."""
    return cells.count(None) + cells.count("")


def _prepare_xlsx(
    path: Path, entity: Entity, workdir: Path, options: IngestOptions = DEFAULT_OPTIONS
) -> Prepared:
    """The first sheet as delimited text, bounded by what it holds, not what it declares.

    The `<dimension ref=...>` a file declares is ignored (`reset_dimensions`): a 2 KB file
    declaring `A1:XFD100000` would otherwise be read as 100,000 rows of 16,384 cells. Each
    row is as wide as its own last cell; the header is the first non-empty row and sets the
    width. A row with values beyond the header keeps them (it has too many fields and is
    quarantined with its line). A header wider than `ingest.xlsx_max_columns`, or a value
    below row `ingest.xlsx_max_rows`, is an error naming the file and the limit. Empty rows
    cost nothing and are skipped wherever they are, so rows below a gap are never dropped.
    """
    import openpyxl  # imported lazily: only XLSX exports need it

    max_rows, max_cols = options.xlsx_max_rows, options.xlsx_max_columns
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise IngestError(f"{path}: cannot open as XLSX: {exc}") from exc
    out = workdir / (path.name + ".csv")
    try:
        ws = wb.worksheets[0]
        ws.reset_dimensions()  # never trust the declared dimension
        header: tuple[object, ...] = ()
        header_row = 0
        for idx, row in enumerate(ws.iter_rows(max_row=max_rows, values_only=True), start=1):
            cells = tuple(row or ())
            if _blank_count(cells) < len(cells):
                last = max(i for i, v in enumerate(cells) if v is not None and v != "")
                header, header_row = cells[: last + 1], idx
                break
        if len(header) > max_cols:
            raise IngestError(
                f"{path}: sheet {ws.title!r} has a header {len(header)} columns wide, more "
                f"than {max_cols} (ingest.xlsx_max_columns in settings.yml)"
            )
        width = len(header)
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
            if header:
                writer.writerow([_xlsx_cell(v, entity) for v in header])
            rows = ws.iter_rows(  # to the format's last row: data below the cap is an error
                min_row=header_row + 1,
                max_row=max(max_rows + 1, XLSX_LAST_ROW),
                values_only=True,
            )
            for idx, row in enumerate(rows if header else (), start=header_row + 1):
                cells = tuple(row or ())
                head, tail = cells[:width], cells[width:]
                extra = [v for v in tail if v is not None and v != ""] if tail and (
                    _blank_count(tail) < len(tail)
                ) else []  # fmt: skip
                if not extra and _blank_count(head) == len(head):
                    continue
                if idx > max_rows:
                    raise IngestError(
                        f"{path}: sheet {ws.title!r} has data beyond row {max_rows} "
                        "(ingest.xlsx_max_rows in settings.yml); split the export"
                    )
                values = head + (None,) * (width - len(head)) + tuple(extra)
                writer.writerow([_xlsx_cell(v, entity) for v in values])
    except IngestError:
        raise
    except Exception as exc:  # a damaged sheet part
        raise IngestError(f"{path}: cannot read as XLSX: {exc}") from exc
    finally:
        wb.close()
    return Prepared(out, "utf-8", "xlsx", ";", True)


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


def prepare(
    path: Path, entity: Entity, workdir: Path, options: IngestOptions = DEFAULT_OPTIONS
) -> Prepared:
    """The file as UTF-8 delimited text DuckDB reads (XLSX and 1C exchange files are
    converted, other encodings transcoded)."""
    if entity.format == "1c_bank_exchange":
        return _prepare_1c(path, entity, workdir)
    if path.suffix.lower() == ".xlsx":
        return _prepare_xlsx(path, entity, workdir, options)
    if entity.format == "csv":
        return _prepare_delimited(path, entity, workdir)
    raise IngestError(f"{entity.definition_file}: unknown format {entity.format!r}")


# --------------------------------------------------------------------------- parsing


def _formats(entity: Entity, kind: str) -> list[str]:
    value = entity.options.get(f"{kind}_format")
    defaults = {"date": ["%Y-%m-%d"], "timestamp": ["%Y-%m-%d %H:%M:%S"]}
    if value is None:
        return defaults[kind]
    return [value] if isinstance(value, str) else list(value)


def _read_header(prep: Prepared) -> list[str]:
    enc = "utf-8-sig" if prep.encoding == "utf-8" else "latin-1"
    with prep.path.open("r", encoding=enc, errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=prep.delimiter, quotechar='"')
        return next(reader, [])


def definition_shown(entity: Entity) -> str:
    """The mapping file of an entity as messages show it: relative to the project (shipped
    mappings) or to the working directory when possible, else in full."""
    path = entity.definition_file
    if path is None:
        return "its mapping"
    for base in (PROJECT_ROOT, Path.cwd()):
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return str(path)


def _hint(entity: Entity, col: Column, key: str, verb: str = "set") -> str:
    """The mapping key a user changes for a row error of `col`, as a message suffix:
    ` (set `format:` of salesforce.lead.created_date in sources/salesforce/source.yml)`."""
    where = f"{entity.system}.{entity.name}.{col.name}"
    return f" ({verb} `{key}` of {where} in {definition_shown(entity)})"


def _col_formats(col: Column, entity: Entity) -> list[str]:
    """A column's date/timestamp formats, tried in order: its own `format:`, else the
    entity's `date_format`/`timestamp_format` (a date column also tries timestamp formats)."""
    if col.formats:
        return list(col.formats)
    fmts = _formats(entity, col.type)
    if col.type == "date" and entity.options.get("timestamp_format"):
        fmts = fmts + [f for f in _formats(entity, "timestamp") if f not in fmts]
    return fmts


def _typed_expr(col: Column, src: str, entity: Entity) -> tuple[str, str]:
    """SQL for (typed value, error message or NULL) of one canonical column.

    Every message starts with the column and the value and ends with the mapping key to
    change: `CreatedDate: '2023-02-07 20:47:49' does not match %Y-%m-%d (set `format:` of
    salesforce.opportunity.created_date in sources/salesforce/source.yml)`.
    """
    v = f"nullif(trim({src}), '')"
    label = col.label
    shown = f"'{label.replace(chr(39), chr(39) * 2)}: '"
    bad = f"{shown} || '''' || {v} || ''''"
    dsep = entity.options.get("decimal_separator", ".")

    def tail(key: str, verb: str = "set") -> str:
        return sql_str(_hint(entity, col, key, verb))

    if col.type == "string":
        if col.values:
            cases = " ".join(
                f"when {sql_str(str(k).lower())} then {sql_str(str(t))}"
                for k, t in col.values.items()
            )
            val = f"case lower({v}) {cases} end"
            allowed = sql_str(", ".join(str(k) for k in col.values))
            err = (
                f"case when {v} is not null and {val} is null then {bad} || ' is not one of: ' "
                f"|| {allowed} || {tail('values:', 'add it to')} end"
            )
            return val, err
        return v, "null"
    if col.type in {"int", "number", "decimal"}:
        num = f"replace(replace(replace(replace({v}, ' ', ''), '{NBSP}', ''), '{NNBSP}', ''), '''', '')"
        if dsep == ",":
            num = f"replace(replace({num}, '.', ''), ',', '.')"
        val = f"try_cast({num} as {col.duckdb_type})"
        what = "an integer" if col.type == "int" else "a number"
        err = (
            f"case when {v} is not null and {val} is null then {bad} || ' is not {what}' "
            f"|| {tail('null_values:', 'fix the file, or set')} end"
        )
    elif col.type in {"date", "timestamp"}:
        fmts = _col_formats(col, entity)
        lst = "[" + ", ".join(sql_str(f) for f in fmts) + "]"
        val = f"try_strptime({v}, {lst})"
        if col.type == "date":
            val = f"cast({val} as date)"
        shown_fmt = sql_str(" or ".join(fmts))
        err = (
            f"case when {v} is not null and {val} is null then {bad} || ' does not match ' "
            f"|| {shown_fmt} || {tail('format:')} end"
        )
        lo, hi = "1990-01-01", "2100-01-01"
        err = (
            f"coalesce({err}, case when {val} < date '{lo}' or {val} >= date '{hi}' "
            f"then {bad} || ' is outside {lo}..{hi}' || {tail('format:', 'check')} end)"
        )
    elif col.type == "bool":
        t = ", ".join(sql_str(x) for x in entity.options.get("true_values", ["true", "1", "yes"]))
        f = ", ".join(sql_str(x) for x in entity.options.get("false_values", ["false", "0", "no"]))
        val = f"case when lower({v}) in ({t}) then true when lower({v}) in ({f}) then false end"
        err = (
            f"case when {v} is not null and {val} is null then {bad} || ' is not a boolean' "
            f"|| {tail('null_values:', 'set options.true_values/false_values or')} end"
        )
    else:  # pragma: no cover - mappings.py validates types
        raise IngestError(f"unknown type {col.type}")
    if col.min is not None:
        err = (
            f"coalesce({err}, case when {val} < {col.min} then {bad} || ' is below {col.min}' "
            f"|| {tail('min:', 'fix the file, or change')} end)"
        )
    return val, err


@dataclass
class _ColSQL:
    """One canonical column of a file: its typed value and row error (SQL), and the
    source columns it reads that the file lacks."""

    column: Column
    value: str  # typed value; a typed NULL when the file has nothing for it
    error: str  # row error message (SQL, NULL when fine) or "null"
    missing: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    columns: list[_ColSQL]
    missing_required: list[str]  # required source columns absent (no default): file reason
    warnings: list[str]
    used: set[str]  # normalised names of the source columns the mapping reads

    @property
    def by_name(self) -> dict[str, _ColSQL]:
        return {c.column.name: c for c in self.columns}


def _is_literal(part: object) -> bool:
    """In `concat:`, literal text is `{text: ...}` or an item without letters or digits
    (`" "`, `", "`, `" - "`); any other item names a source column."""
    if isinstance(part, dict):
        return True
    return isinstance(part, str) and not any(ch.isalnum() for ch in part)


class _Refs:
    """Source column references of one canonical column over `src` (c0..cN)."""

    def __init__(self, by_norm: dict[str, int], nulls: list[str], used: set[str]) -> None:
        self.by_norm, self.nulls, self.used = by_norm, nulls, used
        self.missing: list[str] = []

    def column(self, source: str) -> str | None:
        """A source column's text with null sentinels read as NULL; None when absent."""
        norm = _norm_header(source)
        self.used.add(norm)
        idx = self.by_norm.get(norm)
        if idx is None:
            self.missing.append(source)
            return None
        sql = f"c{idx}"
        if self.nulls:
            listed = ", ".join(sql_str(n) for n in self.nulls)
            sql = f"(case when trim({sql}) in ({listed}) then null else {sql} end)"
        return sql

    def derived(self, spec: dict[str, Any]) -> str:
        """The text of a derived value: constant, source, regex extract or concat."""
        if "constant" in spec:
            return sql_str(str(spec["constant"]))
        if "source" in spec:
            return self.column(str(spec["source"])) or "null"
        if "regex" in spec:
            rx = spec["regex"]
            src = self.column(str(rx["source"]))
            if src is None:
                return "null"
            pattern = str(rx["pattern"])
            group = 1 if re.compile(pattern).groups else 0
            return f"nullif(regexp_extract({src}, {sql_str(pattern)}, {group}), '')"
        parts = []
        for part in spec["concat"]:
            if _is_literal(part):
                text = part["text"] if isinstance(part, dict) else part
                parts.append(sql_str(str(text)))
            else:
                parts.append(f"coalesce({self.column(str(part)) or 'null'}, '')")
        sep = spec.get("separator")
        if sep is None:
            return f"nullif(trim(concat({', '.join(parts)})), '')"
        trimmed = ", ".join(f"nullif(trim({p}), '')" for p in parts)
        return f"nullif(concat_ws({sql_str(str(sep))}, {trimmed}), '')"


def _column_plan(entity: Entity, names: list[str], prep: Prepared) -> _Plan:
    """The SQL of every canonical column over `src` (c0..cN): the source column (null
    sentinels read as NULL) or a derived value (concat, regex, constant), then the
    `default:` where that is missing or empty; typed and checked by `_typed_expr`."""
    by_norm: dict[str, int] = {}
    for i, name in enumerate(names):
        by_norm.setdefault(_norm_header(name), i)
    base_nulls = [str(v) for v in entity.options.get("null_values") or []]
    plan = _Plan([], [], [], set())
    for col in entity.columns:
        refs = _Refs(by_norm, base_nulls + list(col.null_values), plan.used)
        source = col.source or col.name
        if col.derived is not None:
            raw: str | None = refs.derived(col.derived)
            absent = False
        else:
            raw = refs.column(source)
            absent = raw is None
        if col.default is not None:
            before = len(refs.missing)
            dflt = (
                refs.derived(col.default)
                if isinstance(col.default, dict)
                else sql_str(str(col.default))
            )
            raw = f"coalesce(nullif(trim({raw}), ''), {dflt})" if raw else dflt
            absent = absent and len(refs.missing) > before  # the default stands in
        if absent and col.required:
            plan.missing_required.append(source)
        elif prep.header:  # a headerless file lacks what its declared layout lacks
            for m in refs.missing:
                if m == source and col.derived is None and col.default is None:
                    plan.warnings.append(f"column {m!r} is missing; loaded as empty")
                elif absent or col.default is None:
                    plan.warnings.append(f"column {m!r} is missing; read as empty in {col.name}")
        if raw is None:
            plan.columns.append(
                _ColSQL(col, f"cast(null as {col.duckdb_type})", "null", refs.missing)
            )
            continue
        val, err = _typed_expr(col, raw, entity)
        errs = [err] if err != "null" else []
        if col.required:
            hint = _hint(entity, col, "default:", "fix the file, or set")
            errs.append(
                f"case when nullif(trim({raw}), '') is null then "
                f"{sql_str(col.label + ': required value is empty' + hint)} end"
            )
        error = f"coalesce({', '.join(errs)})" if len(errs) > 1 else (errs[0] if errs else "null")
        plan.columns.append(_ColSQL(col, val, error, refs.missing))
    return plan


def _load_into_duckdb(
    con: duckdb.DuckDBPyConnection, prep: Prepared, entity: Entity, path: Path
) -> tuple[list[str], str | None]:
    """Scan the prepared file into temp table `src` (c0..cN VARCHAR) and `rej` (rejects).

    Returns the source column names in file order and a file-level reason when the file's
    columns do not fit the mapping at all.
    """
    if prep.header:
        header = _read_header(prep)
        names = [h.replace("\ufeff", "") for h in header]
    else:
        first = _read_first_record(prep)
        layouts = [list(lay) for lay in entity.layouts] or [[c.name for c in entity.columns]]
        fitting = [lay for lay in layouts if len(lay) == len(first)]
        names = fitting[0] if fitting else max(layouts, key=len)
    ncols = max(len(names), 1)
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols)) + "}"
    con.execute(
        f"""
        create or replace temp table src as
        select * from read_csv({sql_str(duck_path(prep.path))},
            columns = {cols}, header = {str(prep.header).lower()},
            delim = {sql_str(prep.delimiter)}, quote = '"', escape = '"',
            encoding = {sql_str(prep.encoding)}, auto_detect = false,
            store_rejects = true, rejects_table = 'rej_t', rejects_scan = 'rej_s',
            max_line_size = 33554432)
        """
    )
    con.execute(
        "create or replace temp table rej as "
        "select line, min(error_type) as error_type, any_value(csv_line) as csv_line, "
        "string_agg(distinct error_message, '; ') as error_message from rej_t group by line"
    )
    con.execute("drop table if exists rej_t; drop table if exists rej_s")
    reason = None
    if not prep.header and not any(len(lay) == len(names) for lay in entity.layouts or ()):
        if entity.layouts:
            reason = f"{len(_read_first_record(prep))} fields per row fit no declared layout"
    return names, reason


def _read_first_record(prep: Prepared) -> list[str]:
    with prep.path.open("r", encoding=prep.encoding, errors="replace", newline="") as fh:
        return next(csv.reader(fh, delimiter=prep.delimiter, quotechar='"'), [])


def ingest_file(
    path: Path,
    entity: Entity,
    data_dir: Path,
    load_id: str,
    sha: str | None = None,
    display_path: str | None = None,
    retry_failed: bool = False,
    options: IngestOptions = DEFAULT_OPTIONS,
) -> FileResult:
    """Ingest one landed file for one entity. Idempotent by content checksum.

    A 0-byte file is recorded with status `empty` and a file with a header and no rows
    with `header_only` (neither is read as rows nor warned about column by column). A file
    version that failed before (`record_unreadable`) is not parsed again while its content
    and mapping are unchanged, unless `retry_failed` (a backfill): status `failed`.
    """
    shown = display_path or str(path)
    try:
        st = path.lstat()
    except OSError as exc:
        raise IngestError(f"{shown}: cannot be inspected: {exc}") from exc
    if stat.S_ISLNK(st.st_mode) and not options.allow_symlinks_inside_landing:
        raise IngestError(f"{shown}: symbolic link to {os.readlink(path)} refused")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise IngestError(f"{shown}: not a regular file, refused")
    sha = sha or file_sha256(path)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = FileResult(
        load_id=load_id,
        loaded_at=now.isoformat(sep=" "),
        source_system=entity.system,
        entity=entity.name,
        table_name=entity.table,
        source_file=shown,
        file_name=path.name,
        file_sha256=sha,
        file_bytes=path.stat().st_size,
        encoding=None,
        status="loaded",
    )
    first, last = export_dates(path, options.timezone, entity)
    result.partition_start, result.partition_end = first.isoformat(), last.isoformat()
    result.file_key = file_key(sha, entity, path.name)
    mpath = manifest_dir(data_dir) / f"{entity.table}__{result.file_key}.json"
    if mpath.exists():
        previous = json.loads(mpath.read_text(encoding="utf-8"))
        result.status = "duplicate"
        result.duplicate_of = previous.get("source_file")
        if previous.get("source_file") != shown:
            key = hashlib.sha1(shown.encode()).hexdigest()[:12]
            _atomic_write_text(
                deliveries_dir(data_dir) / f"{entity.table}__{result.file_key[:16]}__{key}.json",
                json.dumps({
                    "load_id": load_id, "seen_at": result.loaded_at,
                    "source_system": entity.system, "source_file": shown,
                    "file_sha256": sha, "duplicate_of": previous.get("source_file"),
                }, ensure_ascii=False),
            )  # fmt: skip
        return result
    failed = None if retry_failed else failed_record(data_dir, entity, result.file_key)
    if failed is not None:
        result.status = "failed"
        result.warnings.append(
            f"not read again: this content failed in run {failed.get('load_id')} "
            f"({failed.get('reason')}); it is retried when the file or its mapping changes"
        )
        return result
    if result.file_bytes == 0:
        result.status = "empty"
        result.warnings.append("empty file (0 bytes): nothing to load")
        _atomic_write_text(mpath, json.dumps(result.manifest_record(), ensure_ascii=False))
        return result

    tmp_root = data_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=tmp_root))
    con = duckdb.connect()
    try:
        con.execute(
            "set preserve_insertion_order = true; " + options.duckdb_pragmas(tmp_root / "duckdb")
        )
        prep = prepare(path, entity, workdir, options)
        result.encoding = prep.source_encoding
        names, file_reason = _load_into_duckdb(con, prep, entity, path)
        _split_and_write(con, prep, entity, names, file_reason, result, data_dir, now)
    except duckdb.Error as exc:
        raise IngestError(f"{shown}: cannot be read as {entity.format}: {exc}") from exc
    finally:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if result.rows_read != result.rows_loaded + result.rows_quarantined:
        raise IngestError(
            f"{shown}: row accounting broken: read {result.rows_read} != loaded "
            f"{result.rows_loaded} + quarantined {result.rows_quarantined}"
        )
    _atomic_write_text(mpath, json.dumps(result.manifest_record(), ensure_ascii=False))
    return result


def _split_and_write(
    con: duckdb.DuckDBPyConnection,
    prep: Prepared,
    entity: Entity,
    names: list[str],
    file_reason: str | None,
    result: FileResult,
    data_dir: Path,
    now: dt.datetime,
) -> None:
    line_idx = None
    if prep.line_column:
        line_idx = next((i for i, n in enumerate(names) if _norm_header(n) == "_line"), None)

    plan = _column_plan(entity, names, prep)
    result.warnings.extend(plan.warnings)
    result.columns_missing = sorted({m for c in plan.columns for m in c.missing})
    result.columns_ignored = [
        n for i, n in enumerate(names) if i != line_idx and _norm_header(n) not in plan.used
    ]
    selects = [f"{c.value} as {sql_ident(c.column.name)}" for c in plan.columns]
    errors = [c.error for c in plan.columns if c.error != "null"]
    missing_required = plan.missing_required
    for fname, value in filename_values(entity, result.file_name).items():
        spec = entity.filename_fields[fname]
        if value is None and spec.get("default") is not None:
            # no value in the name: the declared default, or the file's export date
            dflt = str(spec["default"])
            value = result.partition_start if dflt == "export_date" else dflt
        if value is None:
            file_reason = file_reason or (
                f"file name does not match {spec['pattern']!r} (set `default:` of "
                f"filename_fields.{fname} of {entity.system}.{entity.name} in "
                f"{definition_shown(entity)}, or rename the file)"
            )
        ftype = {"date": "DATE", "timestamp": "TIMESTAMP"}.get(spec.get("type", ""), "VARCHAR")
        literal = "null" if value is None else sql_str(value)
        selects.append(f"try_cast({literal} as {ftype}) as {sql_ident(fname)}")
    if missing_required:
        listed = ", ".join(repr(m) for m in missing_required)
        file_reason = (
            f"missing required column(s) {listed} (set `source:` of the column in "
            f"{definition_shown(entity)} to the file's header)"
        )
    if prep.invalid_bytes:
        tried = ", ".join(prep.tried or (prep.source_encoding,))
        reason = (
            f"invalid byte sequence for encoding {tried} (tried in order; add the file's "
            f"encoding to options `encoding:` in {definition_shown(entity)})"
        )
        errors.append(f"case when contains(raw_text, '\ufffd') then {sql_str(reason)} end")
    if file_reason:
        errors = [sql_str(file_reason)]

    ncols = int(con.execute("select count(*) from (describe src)").fetchone()[0])
    raw_text = (
        " || ".join([f"coalesce(c{i}, '')" for i in range(ncols) if i != line_idx]).replace(
            " || ", f" || {sql_str(prep.delimiter)} || "
        )
        if ncols
        else "''"
    )
    first_data_line = 2 if prep.header else 1
    if line_idx is not None:
        line_expr = f"cast(c{line_idx} as bigint)"
        numbered = "select *, rowid as _ord from src"
    else:
        line_expr = "_line"
        numbered = f"""
            with ordered as (select *, rowid as _ord from src),
            total as (
                select cast((select count(*) from src) + (select count(*) from rej) as bigint) as n
            ),
            free_lines as (
                select l, row_number() over (order by l) - 1 as k
                from range(
                    {first_data_line},
                    {first_data_line} + (select n from total)
                        + cast((select coalesce(max(line), 0) from rej) as bigint)
                ) t(l)
                where l not in (select line from rej)
            )
            select ordered.*, free_lines.l as _line
            from ordered join free_lines on free_lines.k = ordered._ord
        """
    err_expr = "concat_ws('; ', " + ", ".join(errors) + ")" if errors else "''"
    con.execute(
        f"""
        create or replace temp table typed as
        with numbered as ({numbered}),
        with_raw as (select *, {raw_text} as raw_text from numbered)
        select
            {", ".join(selects)},
            {line_expr} as _line,
            raw_text as _raw_text,
            coalesce({err_expr}, '')
                as _error
        from with_raw
        """
    )
    lineage = (
        f"{sql_str(result.source_file)} as _source_file, _line, "
        f"{sql_str(result.file_sha256)} as _file_sha256, {sql_str(result.load_id)} as _load_id, "
        f"timestamp {sql_str(now.isoformat(sep=' '))} as _loaded_at"
    )
    out_cols = [c.name for c in entity.columns] + list(entity.filename_fields)
    good = f"select {', '.join(sql_ident(c) for c in out_cols)}, {lineage} from typed where _error = ''"
    rdir = raw_dir(data_dir, entity)
    rdir.mkdir(parents=True, exist_ok=True)
    target = rdir / f"{result.file_key[:16]}.parquet"
    tmp = target.with_name(target.name + ".tmp")
    con.execute(
        f"copy ({good} order by _line) to {sql_str(str(tmp))} "
        "(format parquet, compression zstd, row_group_size 122880)"
    )
    os.replace(tmp, target)

    q_rows = """
        select _line as line, _raw_text as raw_text, _error as reason from typed where _error <> ''
        union all
        select line, csv_line, error_type || ': ' || error_message from rej
    """
    con.execute(f"create or replace temp table q as {q_rows}")
    for line, raw, reason in prep.preset_quarantine:
        con.execute("insert into q values (?, ?, ?)", [line, raw, reason])
    meta = (
        f"{sql_str(result.load_id)} as load_id, {sql_str(entity.system)} as source_system, "
        f"{sql_str(entity.name)} as entity, {sql_str(result.source_file)} as source_file, "
        f"{sql_str(result.file_sha256)} as file_sha256"
    )
    n_q = int(con.execute("select count(*) from q").fetchone()[0])
    qdir = quarantine_dir(data_dir) / entity.system / entity.name
    qfile = qdir / f"{result.file_key[:16]}.parquet"
    if n_q:
        qdir.mkdir(parents=True, exist_ok=True)
        qtmp = qfile.with_name(qfile.name + ".tmp")
        con.execute(
            f"copy (select {meta}, line, raw_text, reason, "
            f"timestamp {sql_str(now.isoformat(sep=' '))} as quarantined_at from q order by line) "
            f"to {sql_str(str(qtmp))} (format parquet, compression zstd)"
        )
        os.replace(qtmp, qfile)
        for reason, n in con.execute(
            "select regexp_replace(reason, '''[^'']*''', '''…''', 'g') as r, count(*) "
            "from q group by r order by 2 desc"
        ).fetchall():
            result.reasons[reason] = int(n)
    elif qfile.exists():
        qfile.unlink()
    # Accounting: records the CSV reader scanned (parsed + rejected + converter errors)
    # against rows read back from the files just written.
    result.rows_read = (
        int(con.execute("select count(*) from src").fetchone()[0])
        + int(con.execute("select count(*) from rej").fetchone()[0])
        + len(prep.preset_quarantine)
    )
    count = "select count(*) from read_parquet({})"
    result.rows_loaded = int(con.execute(count.format(sql_str(duck_path(target)))).fetchone()[0])
    result.rows_quarantined = (
        int(con.execute(count.format(sql_str(duck_path(qfile)))).fetchone()[0]) if n_q else 0
    )
    if entity.freshness_field:
        fresh = con.execute(
            f"select max({sql_ident(entity.freshness_field)}) from typed where _error = ''"
        ).fetchone()[0]
        result.freshness_at = str(fresh) if fresh is not None else None
    if result.rows_read == 0:
        # nothing but a header (or nothing at all once converted): one status, no
        # column-by-column warnings about a file without rows
        header = prep.header and any(n.strip() for n in names)
        result.status = "header_only" if header else "empty"
        result.warnings[:] = [
            "header only, no data rows: nothing to load"
            if header
            else "no rows and no header: nothing to load"
        ]
    elif result.rows_loaded == 0 and result.rows_quarantined:
        result.status = "rejected"
    elif result.rows_quarantined:
        result.status = "partial"


# --------------------------------------------------------------------------- discovery


def _refusal(path: Path, landing_dir: Path, allow_inside: bool) -> str | None:
    """Why a landing-folder entry is not read (None: a regular file, or an allowed link).

    Nothing is opened: the entry itself is inspected (`lstat`), and a link's target only
    as text, so a link to `/etc/passwd` or a named pipe costs nothing and reveals nothing.
    """
    try:
        st = path.lstat()
    except OSError as exc:
        return f"cannot be inspected: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        if not allow_inside:
            return (
                f"symbolic link to {target} refused: links in the landing folder are not "
                "followed (copy the file in, or set ingest.allow_symlinks_inside_landing "
                "in settings.yml for links that stay inside the landing folder)"
            )
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(Path(os.path.realpath(landing_dir))):
            return f"symbolic link to {target} refused: it leads outside the landing folder"
        if not (real.is_file() or real.is_dir()):
            return f"symbolic link to {target} refused: its target is not a regular file"
        return None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    kind = (
        "named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode)
        else "character device" if stat.S_ISCHR(st.st_mode)
        else "block device" if stat.S_ISBLK(st.st_mode)
        else "socket" if stat.S_ISSOCK(st.st_mode)
        else "special file"
    )  # fmt: skip
    return f"{kind} refused: only regular files are read"


def scan_landing(
    folder: Path, landing_dir: Path | None = None, allow_inside: bool = False
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The regular files under `folder` (sub-folders included; hidden files and folders
    skipped), and the entries refused with the reason: symbolic links (files or folders,
    unless `ingest.allow_symlinks_inside_landing` and the link stays inside the landing
    folder), named pipes, devices and sockets. Links are never followed to list a folder
    outside the landing folder; a folder is walked once however many links lead to it."""
    landing_dir = landing_dir or folder
    files: list[Path] = []
    refused: list[tuple[Path, str]] = []
    seen: set[str] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            reason = _refusal(path, landing_dir, allow_inside)
            if reason is not None:
                refused.append((path, reason))
            elif os.path.isdir(path):
                pending.append(path)
            else:
                files.append(path)
    return sorted(files), sorted(refused)


def _files_under(folder: Path, landing_dir: Path | None, options: IngestOptions) -> list[Path]:
    """Every regular file under a folder, sub-folders included; hidden files and folders,
    symbolic links and special files skipped (see `scan_landing`)."""
    return scan_landing(folder, landing_dir, options.allow_symlinks_inside_landing)[0]


def _folder_refused(folder: Path, landing_dir: Path, options: IngestOptions) -> bool:
    """Whether a system folder is, or lies under, a refused entry (a linked folder)."""
    allow = options.allow_symlinks_inside_landing
    try:
        rel = folder.relative_to(landing_dir)
    except ValueError:
        return False
    current = landing_dir
    for part in rel.parts:
        current = current / part
        if _refusal(current, landing_dir, allow) is not None:
            return True
    return False


def landed_files(
    landing_dir: Path, entity: Entity, options: IngestOptions = DEFAULT_OPTIONS
) -> list[Path]:
    """The files of an entity: under its system folder (sub-folders included, so that two
    PBXs' `pbx1/Master.csv` and `pbx2/Master.csv` are both found), matching its name
    patterns case-insensitively, and not matching the system's `ignore:` globs. Symbolic
    links and special files are not among them (`refused_entries` lists them)."""
    folder = landing_dir / entity.folder
    if not folder.is_dir() or _folder_refused(folder, landing_dir, options):
        return []
    return [
        p
        for p in _files_under(folder, landing_dir, options)
        if entity.matches(p) and not entity.ignores(p, folder)
    ]


def claiming_entity(path: Path, landing_dir: Path, entities: list[Entity]) -> Entity | None:
    """The first entity whose folder holds `path` and whose patterns match it."""
    for e in entities:
        folder = landing_dir / e.folder
        if path.is_relative_to(folder) and e.matches(path) and not e.ignores(path, folder):
            return e
    return None


def unrecognised_files(
    landing_dir: Path, entities: list[Entity], options: IngestOptions = DEFAULT_OPTIONS
) -> list[Path]:
    """Files in the landing folder that no source definition claims (files a mapping's
    `ignore:` globs match are not listed: they are not exports)."""
    out = []
    for p in _files_under(landing_dir, None, options):
        owners = [e for e in entities if p.is_relative_to(landing_dir / e.folder)]
        if any(e.ignores(p, landing_dir / e.folder) for e in owners):
            continue
        if not any(e.matches(p) for e in owners):
            out.append(p)
    return out


def unrecognised_summary(shown: list[str], limit: int = 5) -> str:
    """One log line for the unclaimed files: how many, and the first few names."""
    names = ", ".join(shown[:limit]) + (
        f", … ({len(shown) - limit} more)" if len(shown) > limit else ""
    )
    return (
        f"{len(shown)} file(s) in the landing folder match no mapping and are quarantined "
        f"(line 0): {names}. Map them, or add `ignore:` globs to the system's mapping."
    )


def _display(path: Path, landing_dir: Path) -> str:
    """A landing-folder entry as messages show it: relative to the landing folder (the
    entry itself, never the target of a link)."""
    try:
        return str(path.relative_to(landing_dir))
    except ValueError:
        pass
    try:
        return str(Path(os.path.abspath(path)).relative_to(landing_dir.resolve()))
    except ValueError:
        return str(path)


def refused_entries(
    landing_dir: Path, options: IngestOptions = DEFAULT_OPTIONS
) -> list[tuple[Path, str]]:
    """Entries of the landing folder that are never read, with the reason (see `scan_landing`)."""
    if not landing_dir.is_dir():
        return []
    return scan_landing(landing_dir, landing_dir, options.allow_symlinks_inside_landing)[1]


def quarantine_refused(
    landing_dir: Path, data_dir: Path, load_id: str, options: IngestOptions = DEFAULT_OPTIONS
) -> list[str]:
    """Record each refused entry (a symbolic link, a named pipe, a device) in the quarantine
    (line 0, no checksum: nothing of it is read), once per entry and reason."""
    found = refused_entries(landing_dir, options)
    if not found:
        return []
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    shown = []
    con = duckdb.connect()
    try:
        for path, reason in found:
            display = _display(path, landing_dir)
            shown.append(f"{display}: {reason}")
            key = hashlib.sha256(f"{display}\0{reason}".encode()).hexdigest()[:16]
            target = quarantine_dir(data_dir) / "_refused" / "_file" / f"{key}.parquet"
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"copy (select ? as load_id, '_refused' as source_system, '_file' as entity, "
                f"? as source_file, '' as file_sha256, 0::bigint as line, '' as raw_text, "
                f"? as reason, timestamp '{now}' as quarantined_at) to {sql_str(str(target))} "
                "(format parquet)",
                [load_id, display, reason],
            )
    finally:
        con.close()
    return shown


def quarantine_unrecognised(
    landing_dir: Path,
    data_dir: Path,
    entities: list[Entity],
    load_id: str,
    options: IngestOptions = DEFAULT_OPTIONS,
) -> list[str]:
    """Record each unclaimed file in the quarantine (line 0) so that nothing is silently ignored."""
    found = unrecognised_files(landing_dir, entities, options)
    if not found:
        return []
    con = duckdb.connect()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    shown = []
    for p in found:
        sha = file_sha256(p)
        target = quarantine_dir(data_dir) / "_unrecognised" / "_file" / f"{sha[:16]}.parquet"
        display = _display(p, landing_dir)
        shown.append(display)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"copy (select ? as load_id, '_unrecognised' as source_system, '_file' as entity, "
            f"? as source_file, ? as file_sha256, 0::bigint as line, '' as raw_text, "
            f"? as reason, timestamp '{now}' as quarantined_at) to {sql_str(str(target))} "
            "(format parquet)",
            [load_id, display, sha, "no source definition in sources/ matches this file"],
        )
    con.close()
    return shown


def record_unreadable(
    path: Path, shown: str, entity: Entity, data_dir: Path, load_id: str, reason: str
) -> None:
    """Quarantine a file that cannot be read at all (line 0), so it is listed, not lost,
    and remember the failure by checksum (`failed_record`): the next runs do not parse the
    same bytes again with the same mapping. No manifest entry is written.
    """
    sha = file_sha256(path)
    key = file_key(sha, entity, path.name)
    _atomic_write_text(
        failed_path(data_dir, entity, key),
        json.dumps({
            "table_name": entity.table, "file_key": key, "file_sha256": sha,
            "source_file": shown, "reason": reason, "load_id": load_id,
            "failed_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" "),
            "mapping_sha256": mapping_fingerprint(entity),
        }, ensure_ascii=False),
    )  # fmt: skip
    target = quarantine_dir(data_dir) / entity.system / entity.name / f"{key[:16]}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    con = duckdb.connect()
    try:
        con.execute(
            f"copy (select ? as load_id, ? as source_system, ? as entity, ? as source_file, "
            f"? as file_sha256, 0::bigint as line, '' as raw_text, ? as reason, "
            f"timestamp '{now}' as quarantined_at) to {sql_str(str(target))} (format parquet)",
            [load_id, entity.system, entity.name, shown, sha, f"unreadable file: {reason}"],
        )
    finally:
        con.close()


# --------------------------------------------------------------------------- recovery


def _manifest_records(data_dir: Path, entity: Entity) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for entry in sorted(manifest_dir(data_dir).glob(f"{entity.table}__*.json")):
        try:
            rec = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if rec.get("table_name") == entity.table:
            out.append((entry, rec))
    return out


def _still_landed(
    rec: dict[str, Any], landing_dir: Path, entity: Entity, options: IngestOptions
) -> bool:
    """Whether a loaded file's content is still in the landing folder: under its name, or
    renamed (same size and checksum) among the entity's files."""
    sha, size = rec.get("file_sha256"), rec.get("file_bytes")
    where = landing_dir / str(rec.get("source_file") or "")
    candidates = [where] if where.is_file() and not where.is_symlink() else []
    if not candidates or file_sha256(where) != sha:
        candidates = [
            p
            for p in landed_files(landing_dir, entity, options)
            if p != where and p.stat().st_size == size
        ]
        return any(file_sha256(p) == sha for p in candidates)
    return True


def blocked_files_gone(
    data_dir: Path,
    landing_dir: Path,
    entity: Entity,
    rule: Any,
    options: IngestOptions = DEFAULT_OPTIONS,
) -> list[tuple[Path, str]]:
    """Manifest entries to withdraw so that a blocking volume failure can be cleared.

    The table's latest load with rows is what its checks judge. When that load fails the
    blocking volume floor `rule`, it was never published (the block stops the publish),
    and those of its files that are no longer in the landing folder (deleted, or replaced
    by other content under their name) are returned with a message: the caller forgets
    them as a backfill would, and the next check judges what is landed now. Files that
    passed are never withdrawn, whether or not they are still landed.
    """
    from pipelines.lib.quality.rules import Batch, FileLoad, cadence, volume_verdict

    records = [
        (e, r) for e, r in _manifest_records(data_dir, entity) if int(r.get("rows_loaded") or 0)
    ]
    if not records:
        return []

    def loaded_at(rec: dict[str, Any]) -> dt.datetime:
        return dt.datetime.fromisoformat(str(rec["loaded_at"]))

    records.sort(key=lambda er: (loaded_at(er[1]), er[1].get("file_sha256")), reverse=True)
    latest = records[0][1]["load_id"]
    current = [(e, r) for e, r in records if r["load_id"] == latest]
    newest = max(loaded_at(r) for _, r in current)

    def load(rec: dict[str, Any]) -> FileLoad:
        return FileLoad(
            rec["load_id"], rec["file_sha256"], int(rec["rows_loaded"]), loaded_at(rec),
            cadence(rec.get("partition_start"), rec.get("partition_end")),
        )  # fmt: skip

    batch = Batch(
        "",
        latest,
        newest,
        files=len(current),
        history=tuple(
            load(r) for _, r in records if r["load_id"] != latest and loaded_at(r) <= newest
        ),
        cadences=tuple(load(r).cadence for _, r in current),
    )
    rows = sum(int(r["rows_loaded"]) for _, r in current)
    ok, bound = volume_verdict(rule, batch, rows)
    if ok:
        return []
    return [
        (
            entry,
            f"{rec.get('source_file')}: withdrawn from the raw layer: its load failed the "
            f"blocking volume floor ({rows} rows, at least {bound.min_value} expected: "
            f"{bound.note}) and the file is no longer in the landing folder",
        )
        for entry, rec in current
        if not _still_landed(rec, landing_dir, entity, options)
    ]
