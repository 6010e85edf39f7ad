"""Clearing a blocking volume failure: the manifest entries of an unpublished, failing load
whose files are no longer landed (deleted or replaced), which the caller forgets as a backfill
would so the next check judges what is landed now.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pipelines.lib.ingest.discovery import landed_files
from pipelines.lib.ingest.identity import file_sha256
from pipelines.lib.ingest.options import DEFAULT_OPTIONS, IngestOptions
from pipelines.lib.mappings import Entity
from pipelines.lib.warehouse import manifest_dir


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
