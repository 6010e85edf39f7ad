"""Backfills: rebuild the raw layer of a range of export dates from the landing folder.

Every file belongs to the export dates in its name (`deals_2026-03-02.csv` → that day,
`statement_2026-03.txt` → March), else to the day it was written. A backfill over
[start, end] forgets what the raw layer holds from files of those dates — manifest
entries, Parquet and quarantine rows — and ingests the files that are in the landing
folder now, then rebuilds and publishes. Re-running it over unchanged files therefore
changes nothing; after a file of one day was replaced, only that day's rows change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.ingest import export_dates, landed_files
from pipelines.lib.mappings import load_entities
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import deliveries_dir, manifest_dir, quarantine_dir


@dataclass
class BackfillPlan:
    start: dt.date
    end: dt.date
    forget: list[Path]  # manifest entries whose raw rows are dropped
    landed: list[Path]  # landed files of the range that will be (re)ingested


def _overlaps(first: dt.date, last: dt.date, start: dt.date, end: dt.date) -> bool:
    return first <= end and last >= start


def plan_backfill(settings: Settings, start: dt.date, end: dt.date) -> BackfillPlan:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    forget = []
    for entry in sorted(manifest_dir(settings.data_dir).glob("*.json")):
        rec = json.loads(entry.read_text(encoding="utf-8"))
        if not rec.get("partition_start"):
            continue  # written before partitions were recorded: left alone
        first = dt.date.fromisoformat(rec["partition_start"])
        last = dt.date.fromisoformat(rec["partition_end"])
        if _overlaps(first, last, start, end):
            forget.append(entry)
    landed = set()
    for entity in load_entities(settings.sources_dir):
        for path in landed_files(settings.landing_dir, entity):
            if _overlaps(*export_dates(path, settings.timezone), start, end):
                landed.add(path)
    return BackfillPlan(start, end, forget, sorted(landed))


def forget_entries(settings: Settings, entries: list[Path]) -> int:
    """Drop the raw rows, quarantine rows and manifest entries of these files."""
    data = settings.data_dir
    for entry in entries:
        rec = json.loads(entry.read_text(encoding="utf-8"))
        sha = rec.get("file_key") or rec["file_sha256"]
        system, entity = rec["source_system"], rec["entity"]
        (data / "raw" / system / entity / f"{sha[:16]}.parquet").unlink(missing_ok=True)
        (quarantine_dir(data) / system / entity / f"{sha[:16]}.parquet").unlink(missing_ok=True)
        for delivery in deliveries_dir(data).glob(f"{rec['table_name']}__{sha[:16]}__*.json"):
            delivery.unlink()
        entry.unlink()  # last: a crash before this leaves the entry, and a rerun redoes it
    return len(entries)
