"""The readers that turn a landed file into delimited text DuckDB's CSV reader can scan:
delimited files are read in place or transcoded, XLSX sheets are converted by openpyxl within the
configured row and column limits, 1CClientBankExchange files by `bank_exchange`; `prepare`
chooses the reader for an entity's format.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from pipelines.lib.ingest.bank_exchange import _prepare_1c
from pipelines.lib.ingest.encoding import _readable
from pipelines.lib.ingest.options import DEFAULT_OPTIONS, IngestError, IngestOptions, Prepared
from pipelines.lib.mappings import Entity


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


def _formats(entity: Entity, kind: str) -> list[str]:
    value = entity.options.get(f"{kind}_format")
    defaults = {"date": ["%Y-%m-%d"], "timestamp": ["%Y-%m-%d %H:%M:%S"]}
    if value is None:
        return defaults[kind]
    return [value] if isinstance(value, str) else list(value)
