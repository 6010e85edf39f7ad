"""Scanning the landing folder: which entries are read (regular files; links only when
allowed and inside the folder), which are refused (special files, links leading out) and which no
entity claims, the quarantine records for refused and unrecognised files, and the record of a
file that cannot be read at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

import duckdb

from pipelines.lib.ingest.identity import (
    _atomic_write_text,
    failed_path,
    file_key,
    file_sha256,
    mapping_fingerprint,
)
from pipelines.lib.ingest.options import DEFAULT_OPTIONS, IngestOptions
from pipelines.lib.mappings import Entity
from pipelines.lib.warehouse import quarantine_dir, sql_str


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


def _now() -> str:
    """The time now (UTC, naive) as DuckDB and the manifests write it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def _write_file_record(
    con: duckdb.DuckDBPyConnection,
    target: Path,
    load_id: str,
    where: tuple[str, str],
    source_file: str,
    sha: str,
    reason: str,
    now: str,
) -> None:
    """One quarantine record of a whole file (line 0, no raw text), a Parquet file of its
    own at `target`; `where` is the (source system, entity) it is filed under."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        "copy (select ? as load_id, ? as source_system, ? as entity, ? as source_file, "
        "? as file_sha256, 0::bigint as line, '' as raw_text, ? as reason, "
        f"timestamp '{now}' as quarantined_at) to {sql_str(str(target))} (format parquet)",
        [load_id, *where, source_file, sha, reason],
    )


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
    now = _now()
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
            _write_file_record(
                con, target, load_id, ("_refused", "_file"), display, "", reason, now
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
    now = _now()
    shown = []
    for p in found:
        sha = file_sha256(p)
        target = quarantine_dir(data_dir) / "_unrecognised" / "_file" / f"{sha[:16]}.parquet"
        display = _display(p, landing_dir)
        shown.append(display)
        if target.exists():
            continue
        reason = "no source definition in sources/ matches this file"
        _write_file_record(
            con, target, load_id, ("_unrecognised", "_file"), display, sha, reason, now
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
            "failed_at": _now(),
            "mapping_sha256": mapping_fingerprint(entity),
        }, ensure_ascii=False),
    )  # fmt: skip
    target = quarantine_dir(data_dir) / entity.system / entity.name / f"{key[:16]}.parquet"
    con = duckdb.connect()
    try:
        where = (entity.system, entity.name)
        _write_file_record(
            con, target, load_id, where, shown, sha, f"unreadable file: {reason}", _now()
        )
    finally:
        con.close()
