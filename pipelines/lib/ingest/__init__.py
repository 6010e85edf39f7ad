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

The modules, each layer importing only those above it: `options` (options, errors, results),
`identity` (checksums, file keys, failure records), `encoding` (detection and transcoding),
`bank_exchange` and `readers` (from a landed file to delimited text), `columns` (the column plan
and typed SQL), `dates` (a file's export dates), `writer` (ingesting one file), `discovery` (the
landing-folder scan and its quarantine records) and `recovery` (clearing a blocking volume
failure). Everything other modules use is imported from this package.
"""

from pipelines.lib.ingest.bank_exchange import _join_parts, parse_1c_bank_exchange
from pipelines.lib.ingest.columns import (
    NBSP,
    NNBSP,
    _column_plan,
    _load_into_duckdb,
    definition_shown,
)
from pipelines.lib.ingest.dates import export_dates
from pipelines.lib.ingest.discovery import (
    claiming_entity,
    landed_files,
    quarantine_refused,
    quarantine_unrecognised,
    record_unreadable,
    refused_entries,
    scan_landing,
    unrecognised_files,
    unrecognised_summary,
)
from pipelines.lib.ingest.identity import (
    CHUNK,
    duck_path,
    failed_path,
    failed_record,
    file_key,
    file_sha256,
    filename_values,
    mapping_fingerprint,
    new_load_id,
)
from pipelines.lib.ingest.options import (
    DEFAULT_OPTIONS,
    FileResult,
    IngestError,
    IngestOptions,
    Prepared,
)
from pipelines.lib.ingest.readers import XLSX_LAST_ROW, prepare
from pipelines.lib.ingest.recovery import blocked_files_gone
from pipelines.lib.ingest.writer import ingest_file

__all__ = [
    "CHUNK",
    "DEFAULT_OPTIONS",
    "FileResult",
    "IngestError",
    "IngestOptions",
    "NBSP",
    "NNBSP",
    "Prepared",
    "XLSX_LAST_ROW",
    "_column_plan",
    "_join_parts",
    "_load_into_duckdb",
    "blocked_files_gone",
    "claiming_entity",
    "definition_shown",
    "duck_path",
    "export_dates",
    "failed_path",
    "failed_record",
    "file_key",
    "file_sha256",
    "filename_values",
    "ingest_file",
    "landed_files",
    "mapping_fingerprint",
    "new_load_id",
    "parse_1c_bank_exchange",
    "prepare",
    "quarantine_refused",
    "quarantine_unrecognised",
    "record_unreadable",
    "refused_entries",
    "scan_landing",
    "unrecognised_files",
    "unrecognised_summary",
]
