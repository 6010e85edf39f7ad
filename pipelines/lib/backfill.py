"""Backfills: rebuild the raw layer of a range of daily export-date partitions.

Every file belongs to the export dates in its name, else to the day it was written
(`pipelines.lib.partitions`). A backfill over [start, end] — `crmwh backfill` or a
Dagster UI backfill of the ingest assets — is a run of the ingest assets over that
partition range marked as a backfill: each ingest asset first forgets what the raw layer
holds from its files of those dates (manifest entries, Parquet and quarantine rows, see
`forget_entries`), then ingests the files that are in the landing folder now; the marts
are rebuilt and published after it. Re-running it over unchanged files therefore changes
nothing; after a file of one day was replaced, only that day's rows change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.ingest import IngestOptions, landed_files
from pipelines.lib.mappings import load_entities
from pipelines.lib.partitions import (
    bounds,
    clamp_request,
    files_in_window,
    manifest_entries_in_window,
)
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import deliveries_dir, quarantine_dir


@dataclass
class BackfillPlan:
    start: dt.date  # the partitions rebuilt (the requested range, clamped to existing ones)
    end: dt.date
    forget: list[Path]  # manifest entries whose raw rows are dropped
    landed: list[Path]  # landed files of the range that will be (re)ingested


def plan_backfill(settings: Settings, start: dt.date, end: dt.date) -> BackfillPlan:
    """What a backfill over [start, end] forgets and re-ingests (the ingest assets do it)."""
    b = bounds(settings)
    start, end = clamp_request(start, end, b)
    forget = manifest_entries_in_window(settings, start, end, b)
    landed = set()
    for entity in load_entities(settings.sources_dir, settings.config_dir):
        landed.update(
            files_in_window(
                landed_files(settings.landing_dir, entity, IngestOptions.from_settings(settings)),
                start,
                end,
                settings,
                b,
                entity,
            )
        )
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
