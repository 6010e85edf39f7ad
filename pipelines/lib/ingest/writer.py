"""Ingesting one file for one entity: `ingest_file` prepares and loads it, `_split_and_write`
writes the good rows to `data/raw/<system>/<entity>/<sha>.parquet` and the bad ones to
`data/quarantine/...` with file, line and reason; the manifest entry is written last, so a crash
half-way leaves nothing a rerun would duplicate and a file already loaded is never loaded twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import duckdb

from pipelines.lib.ingest.columns import (
    _column_plan,
    _load_into_duckdb,
    _norm_header,
    definition_shown,
)
from pipelines.lib.ingest.dates import export_dates
from pipelines.lib.ingest.identity import (
    _atomic_write_text,
    duck_path,
    failed_record,
    file_key,
    file_sha256,
    filename_values,
)
from pipelines.lib.ingest.options import (
    DEFAULT_OPTIONS,
    FileResult,
    IngestError,
    IngestOptions,
    Prepared,
)
from pipelines.lib.ingest.readers import prepare
from pipelines.lib.mappings import Entity
from pipelines.lib.warehouse import (
    deliveries_dir,
    manifest_dir,
    quarantine_dir,
    raw_dir,
    sql_ident,
    sql_str,
)


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
        key = hashlib.sha1(shown.encode()).hexdigest()[:12]
        delivery = deliveries_dir(data_dir) / f"{entity.table}__{result.file_key[:16]}__{key}.json"
        # recorded once, by the run that first saw it: a rerun of the same files (or a
        # backfill over its dates) changes nothing
        if previous.get("source_file") != shown and not delivery.exists():
            _atomic_write_text(
                delivery,
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
