"""`crmwh run` and `crmwh backfill`: the full refresh job executed in this process, then a summary.

Both run the same job over a range of the daily export-date partitions of the ingest
assets (`pipelines.defs.ingest`); dbt, the checks and publish are unpartitioned and run in
the same run. `crmwh run` covers the partitions touched by landed files the manifest has
not seen (today's alone when there is none); `crmwh backfill` covers the range asked for
and tags the run `crmwh/backfill`, so the ingest assets rebuild it exactly as they do in a
backfill launched from the Dagster UI.

Exit codes: 0 published; 1 the run failed (a blocking check, a dbt error) and the served
warehouse was left as it was; 2 published, but some landed file could not be read at all;
3 another run holds the lock on this warehouse.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines.lib.child_env import scoped_environ
from pipelines.lib.settings import Settings

INSTANCE_MARKER = "# written by crmwh"
EVENT_BATCH_SIZE = "1000"  # events of one partition range per write (up to)
#: Dagster's switches read from the environment of the process that executes a run:
#: - the materializations of one partition range reach the event log in batches, which
#:   `pipelines.lib.dagster_storage` writes in one transaction each (not 8,656 of them);
#: - a run over a partition range records one "materialization planned" event per asset
#:   instead of one per asset and day (8,634 events, 2.5 min on SQLite for a year of demo
#:   files). Dagster's trade-off: the days of a failed run are not marked failed in the UI
#:   (the run itself is); set the variable to false to get the per-day events back.
DAGSTER_RUN_ENV = {
    "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}


def write_instance_config(home: Path) -> None:
    """`dagster.yaml` of the instance: no telemetry, the batched SQLite event log.

    A `dagster.yaml` without the marker line was written by hand (PostgreSQL, say): it is
    left alone. Ours is rewritten when the state folder moved."""
    path = home / "dagster.yaml"
    if path.exists() and not path.read_text(encoding="utf-8").startswith(INSTANCE_MARKER):
        return
    events = home / "history" / "runs"
    text = (
        f"{INSTANCE_MARKER}; it rewrites this file unless this first line is removed\n"
        "telemetry:\n"
        "  enabled: false\n"
        "event_log_storage:  # Dagster's SQLite event log, partition batches in one write\n"
        "  module: pipelines.lib.dagster_storage\n"
        "  class: BatchedSqliteEventLogStorage\n"
        "  config:\n"
        f"    base_dir: {json.dumps(str(events))}\n"
    )
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def dagster_home(settings: Settings) -> Path:
    """The persistent Dagster instance under the state folder (its runs show in the UI)."""
    home = settings.state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    write_instance_config(home)
    return home


def dagster_environment(settings: Settings) -> dict[str, str]:
    """Variables of a process that runs Dagster for these settings (the UI and the runs it
    launches): the instance, the batching switches, and the settings themselves."""
    defaults = {k: os.environ.get(k, v) for k, v in DAGSTER_RUN_ENV.items()}
    return {"DAGSTER_HOME": str(dagster_home(settings)), **defaults, **settings.environment()}


def dbt_problems(settings: Settings, run_id: str) -> list[str]:
    """Failed or erroring dbt nodes of this run, from dbt's run_results.json: a model that
    errored is explained in a few lines (pipelines.lib.diagnose), a test in one."""
    import json

    from pipelines.lib.dbt import build_path
    from pipelines.lib.diagnose import explain_failed_node

    s = settings
    target = s.dbt_project_dir / "target"
    out = []
    for path in sorted(target.glob(f"dbt_models-{run_id[:7]}*/run_results.json")):
        for res in json.loads(path.read_text(encoding="utf-8")).get("results", []):
            status, uid = res.get("status"), res["unique_id"]
            if status not in {"error", "fail", "warn"}:
                continue
            message = res.get("message") or ""
            if status == "error" and uid.startswith("model."):
                lines = explain_failed_node(
                    uid, message, path.with_name("manifest.json"), build_path(s)
                )
                out.append("dbt error: " + "\n    ".join(lines))
            else:
                out.append(f"dbt {status}: {uid}: {_first_words(message, 200)}")
    return out


def _first_words(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary within `limit` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " …"


_STAGES = "deal stages missing from the configured pipeline (seed pipeline_stages)"
#: What a failed warning check means, by the pattern of its name (a GX rule's kind is its
#: name's prefix; dbt tests are matched by a part of theirs): the run summary lists each
#: reason once, with the places it failed.
WARNING_REASONS: tuple[tuple[str, str], ...] = (
    (r"^unique__", "exact duplicate rows in a file (raw keeps them, staging merges them)"),
    (r"^inn__", "INNs with a wrong length or check digit (kept; matching by INN skips them)"),
    (r"^e164__", "phone numbers that do not parse to E.164 (kept as written)"),
    (r"^email__", "e-mail addresses that do not look like name@domain.tld (kept as written)"),
    (r"^known_stage__", _STAGES),
    (r"_is_stage_configured__", _STAGES),
    (r"^references__", "rows pointing at a key the referenced table does not have"),
    (r"^freshness__", "newest record older than max_age_days: has an export stopped arriving?"),
    (r"^volume$", "rows of the load outside the band of the earlier files of the same cadence"),
    (r"^complete__", "optional columns emptier than their threshold (quality/suites.yml)"),
    (r"^plausible__", "dates before dates.min or after the load (quality/suites.yml)"),
)
#: Rules named `<kind>__<columns>` whose place is shown as `table.columns`.
_COLUMN_RULES = ("inn", "e164", "email", "known_stage", "references", "freshness", "complete",
                 "plausible", "min", "not_null")  # fmt: skip


def warning_reason(check_name: str) -> str:
    """The summary's one-line reason for a failed warning check named `check_name`."""
    for pattern, reason in WARNING_REASONS:
        if re.search(pattern, check_name):
            return reason
    return "other warning checks (see their names in the Dagster UI or the Data Docs)"


def warning_place(asset: str, check_name: str) -> str:
    """Where a warning check failed: `raw/table.column` for a column's rule, else the asset."""
    kind, sep, columns = check_name.partition("__")
    return f"{asset}.{columns}" if sep and kind in _COLUMN_RULES else asset


def warning_lines(warnings: list[tuple[str, str, int | None]]) -> list[str]:
    """Failed warning checks `(asset, check, failing rows or None)` as one line per reason:
    the reason, then each place it failed with its failing rows when the check counts them."""
    grouped: dict[str, dict[str, int | None]] = {}
    for asset, check, rows in warnings:
        where = grouped.setdefault(warning_reason(check), {})
        place = warning_place(asset, check)
        if rows is not None:
            rows += where.get(place) or 0
        where[place] = rows if rows is not None else where.get(place)
    return [
        reason + ": " + ", ".join(f"{p} ({n:,} rows)" if n else p for p, n in sorted(where.items()))
        for reason, where in grouped.items()
    ]


def _summary(
    settings: Settings,
    run_id: str,
    seconds: float,
    success: bool,
    failures: list[str],
    warnings: list[tuple[str, str, int | None]] | None = None,
) -> int:
    s = settings
    warnings = warnings or []
    warned = {check for _, check, _ in warnings}
    failures = failures + [
        p
        for p in dbt_problems(s, run_id)
        if not (p.startswith("dbt warn: test.") and p.split(".")[2] in warned)
    ]
    thrift = s.dbt_engine == "spark-thrift"
    if thrift and not success and failures:
        from pipelines.lib.spark import thrift_problem

        gone = thrift_problem(s)
        if gone:  # one cause, not one line per dbt node that could not connect
            cause = gone.replace("no Spark Thrift server answers", "the server no longer answers")
            failures = [
                f"{cause}; the {len(failures)} dbt errors and failed checks of this run "
                "follow from it (each is in the Dagster run)"
            ]
    con = duckdb.connect()
    from pipelines.lib.mappings import load_entities
    from pipelines.lib.warehouse import create_raw_views

    create_raw_views(con, s.data_dir, load_entities(s.sources_dir, s.config_dir))
    print("\n== ingested in this run (files new to the manifest) ==")
    rows = con.execute(
        "select table_name, count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
        "from raw.load_manifest where load_id = ? group by 1 order by 1",
        [run_id],
    ).fetchall()
    if not rows:
        print("  no new files (everything landed was already loaded)")
    for t, files, read, loaded, quarantined in rows:
        print(f"  {t:38s} files {files:>4}  read {read:>10,}  loaded {loaded:>10,}  "
              f"quarantined {quarantined:>8,}")  # fmt: skip
    nothing = con.execute(
        "select source_file, status from raw.load_manifest "
        "where load_id = ? and status in ('empty', 'header_only') order by 1",
        [run_id],
    ).fetchall()
    if nothing:  # reported as what they are, not as failures: the run still publishes
        shown = ", ".join(
            f"{f} ({'empty, 0 bytes' if st == 'empty' else 'header only'})" for f, st in nothing
        )
        print(f"  {len(nothing)} file(s) with no data rows, nothing loaded: {shown}")
    dups = con.execute(
        "select count(*) from raw.file_delivery where load_id = ?", [run_id]
    ).fetchone()[0]
    if dups:
        print(f"  {dups} file(s) skipped: same content as a file already loaded")
    reasons = con.execute(
        "select entity, regexp_replace(reason, '''[^'']*''', '''…''', 'g') as r, count(*) "
        "from raw.quarantine where load_id = ? group by all order by 3 desc limit 15",
        [run_id],
    ).fetchall()
    if reasons:
        print("\n== quarantined, by reason ==")
        for ent, reason, n in reasons:
            print(f"  {n:>8,}  {ent}: {_first_words(reason, 160)}")
    unreadable = con.execute(
        "select count(*) from raw.quarantine where load_id = ? and reason like 'unreadable file:%'",
        [run_id],
    ).fetchone()[0]
    con.close()
    if failures:
        print("\n== failed ==")
        for f in failures:
            print(f"  {f}")
    if warnings:
        print("\n== warnings (reported, nothing blocked; docs/data-quality.md) ==")
        for line in warning_lines(warnings):
            print(f"  {line}")
    from pipelines.lib.diagnose import unparsed_value_lines

    unparsed = unparsed_value_lines(s.warehouse_path) if success and not thrift else []
    if unparsed:
        print(
            "\n== values that did not convert (null where used; intermediate.int_unparsed_values) =="
        )
        for line in unparsed:
            print(f"  {line}")
    if success and thrift:
        from pipelines.lib.spark import ThriftTarget

        target = ThriftTarget.from_settings(s)
        print(f"\n== built on the Spark Thrift server {target.host}:{target.port} "
              "(schema marts; the published marts and rows are in the Dagster run) ==")  # fmt: skip
    elif success and s.warehouse_path.exists():
        con = duckdb.connect(str(s.warehouse_path), read_only=True)
        marts = con.execute(
            "select table_name, estimated_size from duckdb_tables() where schema_name = 'marts' "
            "order by 1"
        ).fetchall()
        con.close()
        print(f"\n== published {s.warehouse_path} ==")
        for name, n in marts:
            print(f"  marts.{name:36s} {n:>12,} rows")
    status = "published" if success else "FAILED, served warehouse left unchanged"
    if thrift and not success:
        status = "FAILED (dbt on the Spark Thrift server; its tables are as dbt left them)"
    print(f"\n{status} in {seconds:.1f}s (run {run_id})")
    if not success:
        return 1
    return 2 if unreadable else 0


class RunLockedError(RuntimeError):
    """Another run holds the lock on this warehouse."""


@contextmanager
def run_lock(warehouse: Path, wait: bool = False) -> Iterator[None]:
    """One run at a time per warehouse: a second one refuses (or waits) instead of racing.

    An OS file lock, so it is released when the holder dies, even by kill -9.
    """
    lock_path = warehouse.with_name(warehouse.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RunLockedError(
                f"another run is building {warehouse} ({holder}); "
                "wait for it to finish or use --wait"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_pipeline(
    settings: Settings, verbose: bool = False, wait: bool = False, full_refresh: bool = False
) -> int:
    """Materialize every asset (ingest -> checks -> dbt build -> publish) in-process."""
    try:
        with run_lock(settings.warehouse_path, wait=wait):
            return _run(settings, verbose, full_refresh=full_refresh)
    except RunLockedError as exc:
        print(f"crmwh run: {exc}")
        return 3


def run_locked(
    settings: Settings, verbose: bool = False, backfill: tuple[dt.date, dt.date] | None = None
) -> int:
    """The run itself, for callers that already hold the run lock (backfill: its range)."""
    return _run(settings, verbose, backfill)


def ordinary_run_range(settings: Settings) -> tuple[dt.date, dt.date]:
    """Partitions an ordinary run covers: those of the files not loaded yet (or today's)."""
    from pipelines.lib.partitions import bounds, covering_range, pending_files

    return covering_range(pending_files(settings), settings, bounds(settings))


def _build_docs_index(s: Settings) -> None:
    """Rebuild the Data Docs index page once the run's check ops have written their pages."""
    from pipelines.lib.quality import data_docs_enabled, docs_dir

    directory = docs_dir(s.data_dir)
    if not data_docs_enabled(s.section("quality")) or not (directory / ".gx").exists():
        return
    from pipelines.lib.quality.gx import build_docs_index

    try:
        build_docs_index(directory)
    except Exception as exc:  # the site is a report; a rendering error must not fail the run
        print(f"crmwh run: the Data Docs index under {directory} was not rebuilt: {exc}")


def _run(
    settings: Settings,
    verbose: bool,
    backfill: tuple[dt.date, dt.date] | None = None,
    full_refresh: bool = False,
) -> int:
    from dagster import DagsterInstance

    from pipelines.definitions import JOB_NAME, build_definitions
    from pipelines.defs.ingest import range_tags
    from pipelines.defs.transform.dbt import DBT_ASSETS_NAME
    from pipelines.lib.quality import DOCS_INDEX_TAG

    t0 = time.perf_counter()
    start, end = backfill or ordinary_run_range(settings)
    tags = range_tags(start, end)
    if backfill:
        tags["crmwh/backfill"] = f"{start}..{end}"
    tags[DOCS_INDEX_TAG] = "end-of-run"  # the Data Docs index: once, below, not once per op
    print(f"{'backfill' if backfill else 'run'} over export-date partitions {start}..{end}")
    # Working files of an ingestion killed half-way (the lock is ours: no run uses them):
    # its scratch folder and Parquet files not yet renamed into place.
    data = settings.data_dir
    shutil.rmtree(data / "tmp", ignore_errors=True)
    for sub in ("raw", "quarantine"):
        for partial in (data / sub).glob("**/*.parquet.tmp"):
            partial.unlink(missing_ok=True)
    job = build_definitions(settings).resolve_job_def(JOB_NAME)
    run_config = {
        "loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "INFO"}}},
        "ops": {DBT_ASSETS_NAME: {"config": {"full_refresh": full_refresh}}},
    }
    env = {k: os.environ.get(k, v) for k, v in DAGSTER_RUN_ENV.items()}
    with (
        DagsterInstance.from_config(str(dagster_home(settings))) as instance,
        scoped_environ(env),
    ):
        result = job.execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=run_config
        )
        _build_docs_index(settings)
        failures: list[str] = []
        warnings: list[tuple[str, str, int | None]] = []
        for ev in result.all_events:
            if ev.is_step_failure:
                err = ev.step_failure_data.error
                failures.append(
                    f"{ev.step_key}: {err.message.strip().splitlines()[0] if err else ''}"
                )
            if ev.event_type_value == "ASSET_CHECK_EVALUATION":
                data = ev.event_specific_data
                if not data.passed:
                    level = getattr(data.severity, "value", str(data.severity)).lower()
                    asset = data.asset_key.to_user_string()
                    if level == "error":
                        failures.append(f"check {asset}:{data.check_name} failed (blocking)")
                    else:
                        warnings.append((asset, data.check_name, _failing_rows(data)))
        seconds = time.perf_counter() - t0
        return _summary(settings, result.run_id, seconds, result.success, failures, warnings)


def _failing_rows(evaluation: object) -> int | None:
    """The failing-row count a check evaluation reports in its metadata, if any."""
    entry = (getattr(evaluation, "metadata", None) or {}).get("unexpected_count")
    value = getattr(entry, "value", entry)
    return int(value) if isinstance(value, int | float) else None
