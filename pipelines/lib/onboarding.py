"""Onboarding tools: what a landing folder would give before a run, and the quarantine after.

`check_landing` runs the real ingestion (`ingest_file`: the same decoding, typing and
checks as a run) into a temporary data folder that it deletes afterwards, and reports per
file: the entity that claims it, rows read / that would load / that would be quarantined,
the main quarantine reasons with an example line each, the first typed rows, the mapped
columns the file lacks and the file's columns no mapping reads; plus the files no mapping
claims. `quarantine_rows` lists quarantined rows of a data folder with DuckDB.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from pipelines.lib.ingest import (
    DEFAULT_OPTIONS,
    FileResult,
    IngestError,
    IngestOptions,
    definition_shown,
    ingest_file,
    landed_files,
    unrecognised_files,
)
from pipelines.lib.mappings import LINEAGE_COLUMNS, Entity
from pipelines.lib.warehouse import quarantine_dir, raw_dir, sql_ident, sql_str

# a quarantine reason with its quoted value masked: rows that fail alike group together
_MASK = "regexp_replace(reason, '''[^'']*''', '''…''', 'g')"


@dataclass
class FileCheck:
    """What a run would do with one landed file for one entity."""

    source_file: str
    entity: Entity
    result: FileResult | None = None
    error: str | None = None  # the file cannot be read at all
    reasons: list[tuple[int, str, int, str]] = field(default_factory=list)  # n, reason, line, raw
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[object, ...]] = field(default_factory=list)  # first typed rows

    @property
    def clean(self) -> bool:
        if self.error is not None or self.result is None:
            return False
        return self.result.rows_quarantined == 0


@dataclass
class LandingCheck:
    files: list[FileCheck]
    unclaimed: list[str]

    @property
    def clean(self) -> bool:
        return not self.unclaimed and all(f.clean for f in self.files)


def _shown(path: Path, landing: Path) -> str:
    try:
        return str(path.resolve().relative_to(landing.resolve()))
    except ValueError:
        return str(path)


def check_landing(
    landing: Path,
    entities: list[Entity],
    sample_rows: int = 3,
    top_reasons: int = 5,
    options: IngestOptions = DEFAULT_OPTIONS,
) -> LandingCheck:
    """Ingest every landed file into a temporary data folder and report what happened."""
    tmp = Path(tempfile.mkdtemp(prefix="crmwh-mapping-check-"))
    checks: list[FileCheck] = []
    try:
        data = tmp / "data"
        for entity in entities:
            for path in landed_files(landing, entity, options):
                shown = _shown(path, landing)
                check = FileCheck(shown, entity)
                checks.append(check)
                try:
                    res = ingest_file(
                        path, entity, data, "mapping-check", display_path=shown, options=options
                    )
                except IngestError as exc:
                    check.error = str(exc)
                    continue
                check.result = res
                if res.status == "duplicate":
                    continue
                _read_back(check, data, sample_rows, top_reasons)
        unclaimed = [_shown(p, landing) for p in unrecognised_files(landing, entities, options)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return LandingCheck(checks, unclaimed)


def _read_back(check: FileCheck, data: Path, sample_rows: int, top_reasons: int) -> None:
    res, entity = check.result, check.entity
    assert res is not None
    key = res.file_key[:16]
    con = duckdb.connect()
    try:
        raw = raw_dir(data, entity) / f"{key}.parquet"
        if raw.exists():
            cols = [c for c in entity.raw_schema() if c not in LINEAGE_COLUMNS or c == "_line"]
            rel = con.execute(
                f"select {', '.join(sql_ident(c) for c in cols)} from read_parquet(?) "
                f"order by _line limit {int(sample_rows)}",
                [str(raw)],
            )
            check.columns = cols
            check.rows = [tuple(r) for r in rel.fetchall()]
        q = quarantine_dir(data) / entity.system / entity.name / f"{key}.parquet"
        if q.exists():
            check.reasons = [
                (int(n), str(reason), int(line), str(raw_text or ""))
                for n, reason, line, raw_text in con.execute(
                    f"select count(*), {_MASK} as r, min(line), arg_min(raw_text, line) "
                    f"from read_parquet(?) group by r order by 1 desc, 3 limit {int(top_reasons)}",
                    [str(q)],
                ).fetchall()
            ]
    finally:
        con.close()


def _printable(value: object) -> str:
    """A value for a terminal: control characters shown escaped; a decimal without the
    trailing zeros of the raw type's scale (1200.50, not 1200.5000000000)."""
    if isinstance(value, Decimal):
        text = format(value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01"))
                      else value.normalize(), "f")  # fmt: skip
    else:
        text = str(value)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_check(report: LandingCheck, width: int = 160) -> str:
    """The report as text: one block per file, then the unclaimed files and a verdict."""
    out: list[str] = []
    for f in report.files:
        e = f.entity
        out.append(f"{f.source_file}")
        out.append(f"  claimed by {e.system}.{e.name} ({definition_shown(e)})")
        if f.error is not None:
            out.append(f"  UNREADABLE: {f.error}")
            out.append("")
            continue
        res = f.result
        assert res is not None
        if res.status == "duplicate":
            out.append(f"  same content as {res.duplicate_of}: loaded once, not twice")
            out.append("")
            continue
        out.append(
            f"  rows read {res.rows_read}, would load {res.rows_loaded}, "
            f"would quarantine {res.rows_quarantined}  (encoding {res.encoding}, "
            f"export date {res.partition_start}"
            + (f"..{res.partition_end}" if res.partition_end != res.partition_start else "")
            + ")"
        )
        if res.columns_missing:
            out.append(f"  columns missing (read as empty): {', '.join(res.columns_missing)}")
        if res.columns_ignored:
            out.append(f"  columns ignored (not mapped): {', '.join(res.columns_ignored)}")
        for w in res.warnings:
            out.append(f"  warning: {w}")
        if f.reasons:
            out.append("  quarantine reasons:")
            for n, reason, line, raw in f.reasons:
                out.append(f"    {n} row(s): {reason}")
                out.append(f"      e.g. line {line}: {_cut(_printable(raw), width - 20)}")
        if f.rows:
            out.append(f"  first {len(f.rows)} typed row(s):")
            for row in f.rows:
                values = dict(zip(f.columns, row, strict=True))
                line = values.pop("_line", "?")
                pairs = ", ".join(
                    f"{c}={_printable(v)}" for c, v in values.items() if v is not None
                )
                out.append(f"    line {line}: {_cut(pairs, width - 14)}")
        out.append("")
    if report.unclaimed:
        out.append(f"{len(report.unclaimed)} file(s) no mapping claims (a run quarantines them):")
        out.extend(f"  {u}" for u in report.unclaimed)
        out.append("  map them in your sources/<system>.yml, or list them in its `ignore:` globs")
        out.append("")
    n_q = sum(f.result.rows_quarantined for f in report.files if f.result is not None)
    n_bad = sum(1 for f in report.files if f.error is not None)
    if report.clean:
        out.append(f"OK: {len(report.files)} file(s), every one claimed, nothing to quarantine")
    else:
        out.append(
            f"NOT CLEAN: {len(report.files)} file(s) claimed, {len(report.unclaimed)} unclaimed, "
            f"{n_bad} unreadable, {n_q} row(s) would be quarantined"
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- quarantine

QUARANTINE_LIST_COLUMNS = (
    "source_file", "line", "reason", "raw_text", "source_system", "entity", "load_id",
    "quarantined_at",
)  # fmt: skip


def quarantine_query(data_dir: Path, file_glob: str | None, reason: str | None) -> str | None:
    """SQL over `<data>/quarantine/**/*.parquet` with the filters; None when it is empty.

    `file_glob` matches the file's path under the landing folder or its name
    (case-insensitive); `reason` is a case-insensitive substring of the reason.
    """
    qdir = quarantine_dir(data_dir)
    if not qdir.is_dir() or not any(qdir.rglob("*.parquet")):
        return None
    where = ["true"]
    if file_glob:
        g = sql_str(file_glob.lower())
        where.append(
            f"(lower(source_file) glob {g} or lower(regexp_replace(source_file, '^.*/', '')) "
            f"glob {g})"
        )
    if reason:
        where.append(f"contains(lower(reason), {sql_str(reason.lower())})")
    cols = ", ".join(
        "cast(line as bigint) as line" if c == "line" else c for c in QUARANTINE_LIST_COLUMNS
    )
    files = sql_str(str(qdir / "**" / "*.parquet"))
    return (
        f"select {cols} from read_parquet({files}, union_by_name = true) "
        f"where {' and '.join(where)} order by source_file, line, quarantined_at"
    )


def quarantine_rows(
    data_dir: Path, file_glob: str | None = None, reason: str | None = None
) -> list[dict[str, object]]:
    """Quarantined rows (file, line, reason, raw text, ...) matching the filters."""
    sql = quarantine_query(data_dir, file_glob, reason)
    if sql is None:
        return []
    con = duckdb.connect()
    try:
        return [
            dict(zip(QUARANTINE_LIST_COLUMNS, r, strict=True)) for r in con.execute(sql).fetchall()
        ]
    finally:
        con.close()


def write_quarantine_csv(
    data_dir: Path, out: Path, file_glob: str | None = None, reason: str | None = None
) -> int:
    """Write the matching quarantined rows as CSV (UTF-8, header); returns the row count."""
    sql = quarantine_query(data_dir, file_glob, reason)
    out.parent.mkdir(parents=True, exist_ok=True)
    if sql is None:
        sql = "select " + ", ".join(f"null::varchar as {c}" for c in QUARANTINE_LIST_COLUMNS)
        sql += " where false"
    con = duckdb.connect()
    try:
        con.execute(f"copy ({sql}) to {sql_str(str(out))} (format csv, header true)")
        return int(con.execute(f"select count(*) from ({sql})").fetchone()[0])
    finally:
        con.close()


def format_quarantine(rows: list[dict[str, object]], width: int = 160) -> str:
    out = []
    for r in rows:
        out.append(f"{r['source_file']}:{r['line']}  {r['reason']}")
        if r["raw_text"]:
            out.append(f"    {_cut(str(r['raw_text']), width - 4)}")
    files = len({r["source_file"] for r in rows})
    out.append(f"{len(rows)} quarantined row(s) in {files} file(s)")
    return "\n".join(out)
