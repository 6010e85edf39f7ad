"""Ingestion assets: one per source entity declared under `sources/`, plus landing inventory.

The per-entity assets are partitioned by day over export dates (`export_date_partitions`, see
`pipelines.lib.partitions` for which file belongs to which day). A run covers one range of
partitions (`BackfillPolicy.single_run()`: a UI backfill over a week is one run, not
seven) and an asset reads only the landed files that touch that range:

- an ordinary run (`crmwh run`, the schedule, the landing sensor) ingests the files of the
  range that the checksum manifest has not seen;
- a backfill (a run tagged `dagster/backfill` by the Dagster UI, or `crmwh/backfill` by
  `crmwh backfill`) first forgets what the raw layer holds from the range's files of this
  entity, then ingests them again.

Each asset carries a blocking check that re-counts the raw layer: for every file, rows in
Parquet + rows in quarantine = rows the file held.
"""

import datetime as dt
import warnings
from collections.abc import Mapping
from pathlib import Path

import duckdb
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from pipelines.lib.backfill import forget_entries
from pipelines.lib.ingest import (
    FileResult,
    IngestError,
    IngestOptions,
    blocked_files_gone,
    duck_path,
    ingest_file,
    landed_files,
    quarantine_refused,
    quarantine_unrecognised,
    record_unreadable,
    unrecognised_summary,
)
from pipelines.lib.mappings import Entity, load_entities
from pipelines.lib.partitions import (
    bounds,
    files_in_window,
    manifest_entries_in_window,
    start_date,
)
from pipelines.lib.quality.rules import Rule, load_config, raw_suite
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import manifest_dir, quarantine_dir, raw_dir

ROW_ACCOUNTING = "row_accounting"
# Tags of a run that rebuilds its partition range: Dagster's (UI backfills) and ours.
BACKFILL_TAGS = ("dagster/backfill", "crmwh/backfill")
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def export_date_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """Daily partitions over export dates from `partitions.start_date`, in the company's
    time zone; today's partition exists, so files exported today are ingested today."""
    return DailyPartitionsDefinition(
        start_date=start_date(settings).isoformat(), timezone=settings.timezone, end_offset=1
    )


def range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags selecting the partition range [start, end] of the ingest assets."""
    return {RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}


def is_backfill(tags: Mapping[str, str]) -> bool:
    return any(t in tags for t in BACKFILL_TAGS)


def raw_asset_key(entity: Entity) -> AssetKey:
    return AssetKey(["raw", entity.table])


def row_accounting_mismatches(data: Path, entity: Entity) -> list[str]:
    """Files whose manifest count differs from rows found in Parquet + quarantine."""
    mfiles = manifest_dir(data) / f"{entity.table}__*.json"
    if not any(manifest_dir(data).glob(f"{entity.table}__*.json")):
        return []
    rdir, qdir = raw_dir(data, entity), quarantine_dir(data) / entity.system / entity.name
    raw_src = (
        f"(select _file_sha256 || '|' || _source_file as sha "
        f"from read_parquet('{duck_path(rdir)}/*.parquet'))"
        if any(rdir.glob("*.parquet"))
        else "(select null::varchar as sha where false)"
    )
    q_src = (
        f"(select file_sha256 || '|' || source_file as sha "
        f"from read_parquet('{duck_path(qdir)}/*.parquet'))"
        if qdir.is_dir() and any(qdir.glob("*.parquet"))
        else "(select null::varchar as sha where false)"
    )
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""
            with m as (select file_sha256 || '|' || source_file as sha, source_file, rows_read
                       from read_json('{duck_path(mfiles.parent)}/{mfiles.name}',
                                      format = 'newline_delimited')),
                 r as (select sha, count(*) as n from {raw_src} group by sha),
                 q as (select sha, count(*) as n from {q_src} group by sha)
            select m.source_file, m.rows_read, coalesce(r.n, 0), coalesce(q.n, 0)
            from m left join r using (sha) left join q using (sha)
            where m.rows_read <> coalesce(r.n, 0) + coalesce(q.n, 0)
            """
        ).fetchall()
    finally:
        con.close()
    return [f"{f}: read {n} != loaded {lo} + quarantined {qu}" for f, n, lo, qu in rows]


def volume_block_rule(settings: Settings, entity: Entity) -> Rule | None:
    """The table's blocking volume floor (`quality/suites.yml` `volume.block_below`), if any."""
    suite = raw_suite(entity, load_config(settings.quality_file))
    return next((r for r in suite.rules if r.kind == "volume" and r.blocking), None)


def withdraw_blocked_files(settings: Settings, entity: Entity) -> list[str]:
    """Forget the files of the table's latest load that fail its blocking volume floor and
    have left the landing folder (see `blocked_files_gone`); a message per file."""
    rule = volume_block_rule(settings, entity)
    if rule is None:
        return []
    s = settings
    gone = blocked_files_gone(
        s.data_dir, s.landing_dir, entity, rule, IngestOptions.from_settings(s)
    )
    forget_entries(s, [entry for entry, _ in gone])
    return [message for _, message in gone]


def build_ingest_asset(
    settings: Settings, entity: Entity, partitions: DailyPartitionsDefinition
) -> AssetsDefinition:
    """The ingest asset of one entity, reading and writing where `settings` say."""
    key = raw_asset_key(entity)
    with warnings.catch_warnings():  # `backfill_policy` is marked beta in Dagster 1.13
        warnings.simplefilter("ignore", BetaWarning)
        return _build_ingest_asset(settings, entity, key, partitions)


def _build_ingest_asset(
    settings: Settings, entity: Entity, key: AssetKey, partitions: DailyPartitionsDefinition
) -> AssetsDefinition:
    options = IngestOptions.from_settings(settings)

    @asset(
        key=key,
        group_name=f"ingest_{entity.system}",
        description=(
            f"Raw `{entity.table}` from `{entity.folder}/` files {', '.join(entity.files)} "
            f"(layout: {entity.definition_file.name if entity.definition_file else '?'})."
        ),
        kinds={"parquet", "python"},
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=[
            AssetCheckSpec(
                ROW_ACCOUNTING,
                asset=key,
                blocking=True,
                description="Every input row is in the raw layer or in quarantine.",
            )
        ],
    )
    def _ingest(context: AssetExecutionContext) -> object:
        keys = context.partition_key_range
        start, end = dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end)
        b = bounds(settings)
        files = files_in_window(
            landed_files(settings.landing_dir, entity, options), start, end, settings, b, entity
        )
        forgotten = 0
        withdrawn = withdraw_blocked_files(settings, entity)
        for message in withdrawn:
            context.log.warning(message)
        if is_backfill(context.run.tags):
            forgotten = forget_entries(
                settings, manifest_entries_in_window(settings, start, end, b, entity)
            )
            context.log.info(
                f"backfill {start}..{end}: forgot {forgotten} loaded file(s), "
                f"re-ingesting {len(files)} landed file(s)"
            )
        results: list[FileResult] = []
        unreadable: list[str] = []
        for path in files:
            shown = str(path.relative_to(settings.landing_dir))
            try:
                res = ingest_file(
                    path,
                    entity,
                    settings.data_dir,
                    context.run.run_id,
                    display_path=shown,
                    retry_failed=is_backfill(context.run.tags),
                    options=options,
                )
            except IngestError as exc:
                context.log.error(str(exc))
                record_unreadable(
                    path, shown, entity, settings.data_dir, context.run.run_id, str(exc)
                )
                unreadable.append(str(exc))
                continue
            results.append(res)
            if res.status in ("empty", "header_only"):
                context.log.info(f"{shown}: {'; '.join(res.warnings)}")
                continue
            for warning in res.warnings:
                context.log.warning(f"{shown}: {warning}")
            if res.status not in ("duplicate", "failed"):
                context.log.info(
                    f"{shown}: read {res.rows_read}, loaded {res.rows_loaded}, "
                    f"quarantined {res.rows_quarantined}"
                    + (
                        f" ({'; '.join(f'{k}: {v}' for k, v in res.reasons.items())})"
                        if res.reasons
                        else ""
                    )
                )
        new = [r for r in results if r.status not in ("duplicate", "failed")]
        yield MaterializeResult(
            metadata={
                "partitions": f"{start}..{end}",
                "files_in_range": len(files),
                "files_forgotten": forgotten,
                "files_new": len(new),
                "files_already_loaded": sum(r.status == "duplicate" for r in results),
                "files_unreadable": len(unreadable),
                "files_failed_before": sum(r.status == "failed" for r in results),
                "files_empty": sum(r.status in ("empty", "header_only") for r in results),
                "files_withdrawn": len(withdrawn),
                "rows_read": sum(r.rows_read for r in new),
                "rows_loaded": sum(r.rows_loaded for r in new),
                "rows_quarantined": sum(r.rows_quarantined for r in new),
                "unreadable": "\n".join(unreadable) or "none",
            }
        )
        problems = row_accounting_mismatches(settings.data_dir, entity)
        for problem in problems:
            context.log.error(f"row accounting broken: {problem}")
        yield AssetCheckResult(
            check_name=ROW_ACCOUNTING,
            passed=not problems,
            severity=AssetCheckSeverity.ERROR,
            metadata={"mismatches": "\n".join(problems) or "none"},
        )

    return _ingest


def build_landing_inventory(settings: Settings, entities: list[Entity]) -> AssetsDefinition:
    """The asset that quarantines what the landing folder holds and no mapping claims."""
    options = IngestOptions.from_settings(settings)

    @asset(
        key=AssetKey(["raw", "landing_inventory"]),
        group_name="ingest",
        description="Files in the landing folder that no source definition claims (quarantined).",
        kinds={"python"},
    )
    def landing_inventory(context: AssetExecutionContext) -> MaterializeResult:
        landing, data, run_id = settings.landing_dir, settings.data_dir, context.run.run_id
        found = quarantine_unrecognised(landing, data, entities, run_id, options)
        if found:  # one line, however many: an export folder may hold hundreds of other files
            context.log.warning(unrecognised_summary(found))
        refused = quarantine_refused(landing, data, run_id, options)
        for line in refused:  # links, pipes, devices: never read, listed in the quarantine
            context.log.warning(line)
        return MaterializeResult(
            metadata={"unrecognised_files": len(found), "refused_entries": len(refused)}
        )

    return landing_inventory


def ingest_assets(settings: Settings) -> list[AssetsDefinition]:
    """One ingest asset per entity of the mappings in force, and the landing inventory."""
    entities = load_entities(settings.sources_dir, settings.config_dir)
    partitions = export_date_partitions(settings)
    return [build_ingest_asset(settings, e, partitions) for e in entities] + [
        build_landing_inventory(settings, entities)
    ]
