"""Automation: a sensor on the landing folder, a daily schedule, failure notifications.

Both start the full refresh job over a range of the export-date partitions of the ingest
assets: the sensor over the partitions the new or changed files touch (a late file
re-processes its own days only), the schedule over the partitions of the files not loaded
yet, or today's alone.
"""

import hashlib
import json
from pathlib import Path

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunFailureSensorContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    schedule,
    sensor,
)

from pipelines.defs.ingest import range_tags
from pipelines.lib.ingest import IngestOptions, landed_files
from pipelines.lib.mappings import load_entities
from pipelines.lib.notify import notify_failure
from pipelines.lib.partitions import bounds, covering_range, pending_files
from pipelines.lib.settings import Settings


def landing_fingerprints(settings: Settings) -> dict[str, str]:
    """path -> size:mtime of every claimed landed file; cheap enough to poll every minute."""
    s = settings
    options = IngestOptions.from_settings(s)
    out = {}
    for entity in load_entities(s.sources_dir, s.config_dir):
        for p in landed_files(s.landing_dir, entity, options):
            st = p.stat()
            out[str(p)] = f"{st.st_size}:{st.st_mtime_ns}"
    return out


def build_landing_sensor(settings: Settings, job: JobDefinition) -> SensorDefinition:
    @sensor(
        name="landing_folder_sensor",
        job=job,
        minimum_interval_seconds=int(
            settings.section("schedule").get("sensor_interval_seconds", 60)
        ),
        default_status=DefaultSensorStatus.STOPPED,
        description="Starts a run when files appear or change in the landing folder.",
    )
    def _landing_sensor(context: SensorEvaluationContext) -> object:
        seen = json.loads(context.cursor) if context.cursor else {}
        now = landing_fingerprints(settings)
        changed = sorted(p for p, fp in now.items() if seen.get(p) != fp)
        if not changed:
            return SkipReason("no new or changed files in the landing folder")
        context.update_cursor(json.dumps(now))
        key = hashlib.sha256("\n".join(f"{p}={now[p]}" for p in changed).encode()).hexdigest()
        start, end = covering_range([Path(p) for p in changed], settings, bounds(settings))
        return RunRequest(
            run_key=key[:32],
            tags={
                **range_tags(start, end),
                "crmwh/trigger": "landing",
                "crmwh/files": str(len(changed)),
            },
        )

    return _landing_sensor


def build_daily_schedule(settings: Settings, job: JobDefinition) -> ScheduleDefinition:
    s = settings

    @schedule(
        name="daily_full_refresh",
        job=job,
        cron_schedule=str(s.section("schedule").get("daily_cron", "0 6 * * *")),
        execution_timezone=s.timezone,
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            "Runs the full refresh every morning even when no file arrived, over the "
            "partitions of the files not loaded yet (today's when there is none)."
        ),
    )
    def _daily(context: ScheduleEvaluationContext) -> RunRequest:
        start, end = covering_range(pending_files(settings), settings, bounds(settings))
        return RunRequest(tags={**range_tags(start, end), "crmwh/trigger": "schedule"})

    return _daily


def build_failure_sensor(settings: Settings) -> SensorDefinition:
    """A sensor that logs every failed run and e-mails it when `notifications.smtp_host`
    is configured."""

    @run_failure_sensor(name="notify_on_run_failure", default_status=DefaultSensorStatus.STOPPED)
    def notify_on_run_failure(context: RunFailureSensorContext) -> None:
        run = context.dagster_run
        failure = context.failure_event.message if context.failure_event else "run failed"
        notify_failure(
            settings,
            subject=f"crm-warehouse: run {run.run_id[:8]} of {run.job_name} failed",
            body=f"{failure}\n\nThe served warehouse was left unchanged.\nRun id: {run.run_id}",
        )

    return notify_on_run_failure
