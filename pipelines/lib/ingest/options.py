"""What the ingest modules pass between them: `IngestOptions` (the `ingest:`, timezone and
`duckdb:` settings that govern reading landed files), `IngestError` (a file that cannot be read
at all), `FileResult` (what happened to one file for one entity, also its manifest entry) and
`Prepared` (a landed file made ready for DuckDB's CSV reader).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.lib.settings import Settings, duckdb_pragmas


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
