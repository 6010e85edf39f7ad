"""Daily partitions over export dates: which files belong to which days, which days a run covers.

A landed file belongs to the export dates in its name (`deals_2026-03-02.csv` → that day,
`statement_2026-03.txt` → every day of March), else to the day it was last written
(`pipelines.lib.ingest.export_dates`). The Dagster partitions run from
`partitions.start_date` (settings.yml) to today in the company time zone. Dates outside
that span are clamped so that no file is ever without a partition:

- a file dated before `start_date` belongs to the first partition;
- a file dated after today (a future-dated export, a clock in another zone) belongs to
  today's partition, until its own day exists.

Everything here is plain dates so that the CLI, the sensor, the schedule and the ingest
assets share one mapping; `pipelines.defs.ingest` builds the Dagster definition from it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pipelines.lib.ingest import (
    IngestOptions,
    claiming_entity,
    export_dates,
    failed_record,
    file_key,
    file_sha256,
    landed_files,
)
from pipelines.lib.mappings import Entity, load_entities
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import deliveries_dir, manifest_dir

Span = tuple[dt.date, dt.date]


@dataclass(frozen=True)
class Bounds:
    """The first and the last partition (both inclusive) that exist right now."""

    first: dt.date
    last: dt.date

    def clamp(self, day: dt.date) -> dt.date:
        return min(max(day, self.first), self.last)

    def clamp_span(self, span: Span) -> Span:
        return self.clamp(span[0]), self.clamp(span[1])


def start_date(settings: Settings) -> dt.date:
    """The first partition: `partitions.start_date`, the earliest export date kept apart."""
    return dt.date.fromisoformat(
        str(settings.section("partitions").get("start_date", "2025-01-01"))
    )


def bounds(settings: Settings, now: dt.datetime | None = None) -> Bounds:
    """First partition .. today's (company time zone), as Dagster's daily partitions."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    first = start_date(settings)
    return Bounds(first, max(first, today))


def overlaps(span: Span, start: dt.date, end: dt.date) -> bool:
    return span[0] <= end and span[1] >= start


def file_partitions(
    path: Path, settings: Settings, b: Bounds, entity: Entity | None = None
) -> Span:
    """The (clamped) partitions a landed file belongs to, first and last day (by the
    `export_date:` of the entity that claims it, when one is given or found)."""
    if entity is None:
        entity = _claiming(path, settings)
    return b.clamp_span(export_dates(path, settings.timezone, entity))


def _claiming(path: Path, settings: Settings) -> Entity | None:
    """The entity that claims a landed file, when some entity declares its own export date
    (otherwise every entity dates a file alike and none needs to be looked up)."""
    entities = _declaring_entities(settings)
    if not entities:
        return None
    return claiming_entity(path, settings.landing_dir, entities)


def _declaring_entities(settings: Settings) -> list[Entity]:
    """Entities with their own `export_date:`; re-read when a mapping file changes."""
    dirs = [settings.sources_dir]
    if settings.config_dir is not None:
        dirs.append(settings.config_dir / "sources")
    key = tuple((str(f), f.stat().st_mtime_ns) for d in dirs for f in sorted(d.rglob("*.y*ml")))
    if key not in _DECLARING:
        _DECLARING.clear()
        _DECLARING[key] = [
            e
            for e in load_entities(settings.sources_dir, settings.config_dir)
            if tuple(e.export_date["from"]) != ("name", "mtime")
        ]
    return _DECLARING[key]


_DECLARING: dict[tuple[tuple[str, int], ...], list[Entity]] = {}


def entry_partitions(record: dict, b: Bounds) -> Span | None:
    """The (clamped) partitions of a manifest entry; None for entries older than partitions."""
    if not record.get("partition_start"):
        return None
    first = dt.date.fromisoformat(record["partition_start"])
    last = dt.date.fromisoformat(record["partition_end"])
    return b.clamp_span((first, last))


def files_in_window(
    paths: Iterable[Path],
    start: dt.date,
    end: dt.date,
    settings: Settings,
    b: Bounds,
    entity: Entity | None = None,
) -> list[Path]:
    """The landed files (of `entity`, when given) that touch a partition of [start, end]."""
    return [p for p in paths if overlaps(file_partitions(p, settings, b, entity), start, end)]


def manifest_entries_in_window(
    settings: Settings, start: dt.date, end: dt.date, b: Bounds, entity: Entity | None = None
) -> list[Path]:
    """Manifest entries (of one entity, or all) of files that touch a partition of [start, end]."""
    pattern = f"{entity.table}__*.json" if entity else "*.json"
    out = []
    for entry in sorted(manifest_dir(settings.data_dir).glob(pattern)):
        rec = json.loads(entry.read_text(encoding="utf-8"))
        if entity is not None and rec.get("table_name") != entity.table:
            continue  # `a__*` also matches a table named `a__b`
        span = entry_partitions(rec, b)
        if span is not None and overlaps(span, start, end):
            out.append(entry)
    return out


def pending_files(settings: Settings) -> list[Path]:
    """Landed files an ingest has not seen yet: content (+ name values) not in the manifest
    and not remembered as failed with the current mapping, or known content under a name
    not yet recorded as a redelivery."""
    mdir, ddir = manifest_dir(settings.data_dir), deliveries_dir(settings.data_dir)
    out = []
    for entity in load_entities(settings.sources_dir, settings.config_dir):
        for path in landed_files(
            settings.landing_dir, entity, IngestOptions.from_settings(settings)
        ):
            key = file_key(file_sha256(path), entity, path.name)
            entry = mdir / f"{entity.table}__{key}.json"
            if not entry.exists():
                if failed_record(settings.data_dir, entity, key) is None:
                    out.append(path)
                continue
            shown = str(path.relative_to(settings.landing_dir))
            if json.loads(entry.read_text(encoding="utf-8")).get("source_file") == shown:
                continue
            name_key = hashlib.sha1(shown.encode()).hexdigest()[:12]  # as ingest_file names it
            if not (ddir / f"{entity.table}__{key[:16]}__{name_key}.json").exists():
                out.append(path)
    return out


def covering_range(paths: Iterable[Path], settings: Settings, b: Bounds) -> Span:
    """The one contiguous partition range a run covers for these files: from the first
    partition any of them touches to the last. With no file, today's partition (a run
    still rebuilds and publishes the marts)."""
    spans = [file_partitions(p, settings, b) for p in paths]
    if not spans:
        return b.last, b.last
    return min(s for s, _ in spans), max(e for _, e in spans)


def clamp_request(start: dt.date, end: dt.date, b: Bounds) -> Span:
    """A requested range (`crmwh backfill`) as partitions that exist."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return b.clamp(start), b.clamp(end)
