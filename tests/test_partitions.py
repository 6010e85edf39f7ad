"""Daily export-date partitions: the file → partition mapping, and real Dagster runs of the
ingest assets over partition ranges (an ordinary run, a late file picked up by the landing
sensor, a backfill launched as the Dagster UI launches it and as `crmwh backfill` does)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    Definitions,
    build_schedule_context,
    build_sensor_context,
    define_asset_job,
)

from crmwh_tools.bench import free_port
from pipelines.defs.automation import build_daily_schedule
from pipelines.lib.mappings import load_entities
from pipelines.lib.partitions import (
    Bounds,
    bounds,
    covering_range,
    files_in_window,
    manifest_entries_in_window,
    pending_files,
)
from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import create_raw_views
from tests.test_ingest import BITRIX_HEADER, bx_deal, crlf

D = dt.date
ROOT = Path(__file__).resolve().parents[1]


def land(tmp_path: Path, name: str, *deals: str, folder: str = "crm_bitrix") -> Path:
    path = tmp_path / "landing" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crlf(BITRIX_HEADER, *deals).encode("cp1251"))
    return path


def test_files_map_to_the_days_they_export_and_out_of_range_dates_are_clamped(
    settings_env: Path,
) -> None:
    s = load_settings()
    b = Bounds(D(2025, 1, 1), D(2026, 11, 23))  # partitions start_date .. "today"
    day = land(settings_env, "deals_2026-03-02.csv", bx_deal(1))
    month = land(settings_env, "statement_2026-02.txt", folder="accounting_1c")
    early = land(settings_env, "deals_2024-06-30.csv", bx_deal(2))
    future = land(settings_env, "deals_2027-01-05.csv", bx_deal(3))
    undated = land(settings_env, "Master.csv", folder="telephony_asterisk")
    stamp = dt.datetime(2026, 4, 10, 12, 0, tzinfo=dt.UTC).timestamp()
    os.utime(undated, (stamp, stamp))  # no date in the name: the day it was written

    from pipelines.lib.partitions import file_partitions

    assert file_partitions(day, s, b) == (D(2026, 3, 2), D(2026, 3, 2))
    assert file_partitions(month, s, b) == (D(2026, 2, 1), D(2026, 2, 28))
    assert file_partitions(early, s, b) == (D(2025, 1, 1), D(2025, 1, 1))  # first partition
    assert file_partitions(future, s, b) == (D(2026, 11, 23), D(2026, 11, 23))  # today's
    assert file_partitions(undated, s, b) == (D(2026, 4, 10), D(2026, 4, 10))

    files = [day, month, early, future, undated]
    assert files_in_window(files, D(2026, 2, 28), D(2026, 3, 2), s, b) == [day, month]
    assert files_in_window(files, D(2026, 3, 3), D(2026, 4, 9), s, b) == []
    assert files_in_window(files, D(2025, 1, 1), D(2025, 1, 1), s, b) == [early]
    assert files_in_window(files, D(2026, 11, 23), D(2026, 11, 23), s, b) == [future]
    # A run over the files covers one range, from the first day any touches to the last.
    assert covering_range([day, undated], s, b) == (D(2026, 3, 2), D(2026, 4, 10))
    assert covering_range([], s, b) == (b.last, b.last)

    # `crmwh backfill` over dates outside the partitions rebuilds the partitions holding them.
    from pipelines.lib.partitions import clamp_request

    assert clamp_request(D(2024, 1, 1), D(2024, 12, 31), b) == (b.first, b.first)
    assert clamp_request(D(2026, 11, 20), D(2027, 1, 31), b) == (D(2026, 11, 20), b.last)
    with pytest.raises(ValueError, match="before --start"):
        clamp_request(D(2026, 3, 2), D(2026, 3, 1), b)

    # The Dagster partitions end today in the company time zone: 23:30 UTC is tomorrow there.
    late = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)
    assert bounds(s, now=late).last == D(2026, 11, 24)
    # ... and the Dagster definition on the ingest assets has the same first and last day.
    from pipelines.defs.ingest import export_date_partitions

    partitions = export_date_partitions(s)
    assert partitions.get_first_partition_key() == bounds(s).first.isoformat()
    assert partitions.get_last_partition_key() == bounds(s).last.isoformat()


def _ingest_defs() -> tuple[Definitions, str]:
    from pipelines.defs.automation import build_landing_sensor
    from pipelines.defs.ingest import ingest_assets

    job = define_asset_job(
        "ingest_deals", selection=AssetSelection.assets(["raw", "bitrix__deal_snapshot"])
    )
    settings = load_settings()  # the test's CRMWH_PATHS__* variables
    defs = Definitions(
        assets=ingest_assets(settings), jobs=[job], sensors=[build_landing_sensor(settings, job)]
    )
    return defs, "ingest_deals"


def _raw(data: Path) -> list[tuple]:
    con = duckdb.connect()
    create_raw_views(con, data, load_entities(ROOT / "sources"))
    rows = con.execute(
        "select _source_file, _load_id, count(*), sum(amount) from raw.bitrix__deal_snapshot "
        "group by 1, 2 order by 1"
    ).fetchall()
    con.close()
    return rows


def _run(defs: Definitions, instance: DagsterInstance, tags: dict[str, str]) -> dict:
    result = defs.resolve_job_def("ingest_deals").execute_in_process(instance=instance, tags=tags)
    assert result.success
    mats = [
        ev.event_specific_data.materialization
        for ev in result.all_events
        if ev.is_step_materialization
    ]
    return {m.partition: {k: v.value for k, v in m.metadata.items()} for m in mats}


def test_ranged_runs_ingest_their_partitions_and_a_ui_backfill_rebuilds_exactly_its_range(
    settings_env: Path,
) -> None:
    from pipelines.defs.ingest import range_tags

    tmp = settings_env
    s = load_settings()
    for day in (1, 2, 3):
        land(tmp, f"deals_2026-03-0{day}.csv", bx_deal(10 * day), bx_deal(10 * day + 1))
    defs, _ = _ingest_defs()
    with DagsterInstance.ephemeral() as instance:
        # An ordinary run (`crmwh run`, the daily schedule): the partitions of the files not
        # loaded yet.
        start, end = covering_range(pending_files(s), s, bounds(s))
        assert (start, end) == (D(2026, 3, 1), D(2026, 3, 3))
        schedule = build_daily_schedule(s, defs.resolve_job_def("ingest_deals"))
        tick = schedule.evaluate_tick(build_schedule_context(instance=instance))
        assert tick.run_requests[0].tags["dagster/asset_partition_range_start"] == "2026-03-01"
        assert tick.run_requests[0].tags["dagster/asset_partition_range_end"] == "2026-03-03"
        mats = _run(defs, instance, range_tags(start, end))
        assert sorted(mats) == ["2026-03-01", "2026-03-02", "2026-03-03"]  # one run, 3 partitions
        assert mats["2026-03-02"]["files_new"] == 3
        loaded = _raw(tmp / "data")
        assert [(f, n) for f, _, n, _ in loaded] == [
            (f"crm_bitrix/deals_2026-03-0{d}.csv", 2) for d in (1, 2, 3)
        ]
        assert pending_files(s) == []
        # The same content under another name is pending until recorded as a redelivery.
        copy_name = tmp / "landing" / "crm_bitrix" / "deals_2026-03-01 (1).csv"
        shutil.copyfile(tmp / "landing" / "crm_bitrix" / "deals_2026-03-01.csv", copy_name)
        assert pending_files(s) == [copy_name]
        redelivered = _run(defs, instance, range_tags(*covering_range([copy_name], s, bounds(s))))
        assert redelivered["2026-03-01"]["files_new"] == 0
        assert pending_files(s) == [] and _raw(tmp / "data") == loaded
        copy_name.unlink()
        tick = schedule.evaluate_tick(build_schedule_context(instance=instance))
        today = bounds(s).last.isoformat()  # nothing new: today's partition, marts still rebuilt
        assert tick.run_requests[0].tags["dagster/asset_partition_range_start"] == today

        # The same range again, not a backfill: nothing is re-ingested.
        again = _run(defs, instance, range_tags(start, end))
        assert again["2026-03-01"]["files_new"] == 0
        assert again["2026-03-01"]["files_already_loaded"] == 3
        assert _raw(tmp / "data") == loaded

        # A late file: the landing sensor asks for its own partition only.
        sensor = defs.resolve_sensor_def("landing_folder_sensor")
        from pipelines.defs.automation import landing_fingerprints

        cursor = json.dumps(landing_fingerprints(s))
        land(tmp, "deals_2026-02-15.csv", bx_deal(5))
        request = sensor.evaluate_tick(
            build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        ).run_requests[0]
        assert request.tags["dagster/asset_partition_range_start"] == "2026-02-15"
        assert request.tags["dagster/asset_partition_range_end"] == "2026-02-15"
        late = _run(defs, instance, dict(request.tags))
        assert sorted(late) == ["2026-02-15"]
        after_late = _raw(tmp / "data")
        assert after_late[1:] == loaded  # the other days kept their loads
        assert after_late[0][0] == "crm_bitrix/deals_2026-02-15.csv"

        # Day 2's export is replaced by a corrected one (another amount for deal 20).
        land(tmp, "deals_2026-03-02.csv", bx_deal(20, amount="999,00"), bx_deal(21))
        copy = tmp / "data_copy"
        shutil.copytree(tmp / "data", copy)

        # A backfill of 2026-03-02 as the Dagster UI launches it: the range + `dagster/backfill`.
        ui = _run(defs, instance, {**range_tags(D(2026, 3, 2), D(2026, 3, 2)),
                                   "dagster/backfill": "ui-test"})  # fmt: skip
        assert sorted(ui) == ["2026-03-02"]
        assert ui["2026-03-02"]["files_forgotten"] == 1
        rebuilt = _raw(tmp / "data")
        assert [r for r in rebuilt if r[0] != "crm_bitrix/deals_2026-03-02.csv"] == [
            r for r in after_late if r[0] != "crm_bitrix/deals_2026-03-02.csv"
        ]
        day2 = next(r for r in rebuilt if r[0] == "crm_bitrix/deals_2026-03-02.csv")
        old2 = next(r for r in after_late if r[0] == "crm_bitrix/deals_2026-03-02.csv")
        assert day2[2] == 2 and day2[1] != old2[1]  # reloaded, 2 rows (not 4)
        assert day2[3] == pytest.approx(999.0 + 125000.50)

        # The same backfill as `crmwh backfill` tags it, on a copy of the state before:
        # the same rows.
        os.environ["CRMWH_PATHS__DATA"] = str(copy)
        defs, _ = _ingest_defs()  # the definitions of the new settings
        cli = _run(defs, instance, {**range_tags(D(2026, 3, 2), D(2026, 3, 2)),
                                    "crmwh/backfill": "2026-03-02..2026-03-02"})  # fmt: skip
        assert cli["2026-03-02"]["files_forgotten"] == 1
        assert [(f, n, a) for f, _, n, a in _raw(copy)] == [(f, n, a) for f, _, n, a in rebuilt]
        assert manifest_entries_in_window(
            load_settings(), D(2026, 3, 2), D(2026, 3, 2), bounds(load_settings())
        )  # the reloaded file is in the manifest again


# ------------------------------------------------ a backfill launched as the Dagster UI does


LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on InvalidSubsetError { message } ... on PartitionSetNotFoundError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status runs(limit: 20) { runId status tags { key value } } }
  ... on PythonError { message } } }"""


@pytest.mark.slow  # starts the Dagster webserver and daemon: minutes
def test_backfill_launched_from_the_dagster_ui_is_one_run_over_the_range(
    settings_env: Path,
) -> None:
    """The Dagster webserver and daemon really started: a backfill launched through the UI's
    GraphQL call (Assets → Materialize → partition range → Launch backfill) runs the ingest
    asset once over the range and rebuilds exactly its days — the same rows as the run
    `crmwh backfill` makes (the `crmwh/backfill` tag, in process).

    One backfill covers both cases of a day in the range (each UI backfill costs two ticks
    of the daemon's 30-second loop): days exported for the first time are ingested, and a
    day loaded before, whose export was replaced by a corrected one, is forgotten and
    reloaded; a day loaded before outside the range keeps its load."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from pipelines.defs.ingest import range_tags
    from pipelines.run import EVENT_BATCH_SIZE, write_instance_config

    tmp = settings_env
    # Loaded before the backfill by an ordinary run (in process): a day outside the range
    # and the first export of 2026-03-02.
    land(tmp, "deals_2026-02-28.csv", bx_deal(5))
    land(tmp, "deals_2026-03-02.csv", bx_deal(20), bx_deal(21))
    defs, _ = _ingest_defs()
    with DagsterInstance.ephemeral() as instance:
        first = _run(defs, instance, range_tags(D(2026, 2, 28), D(2026, 3, 2)))
    assert first["2026-03-02"]["files_new"] == 2
    before = _raw(tmp / "data")
    assert [(f, n) for f, _, n, _ in before] == [
        ("crm_bitrix/deals_2026-02-28.csv", 1),
        ("crm_bitrix/deals_2026-03-02.csv", 2),
    ]
    # Then days 1 and 3 are exported, and day 2 is replaced by a corrected export (another
    # amount for deal 20); the state is copied for the CLI-path run.
    land(tmp, "deals_2026-03-01.csv", bx_deal(10), bx_deal(11))
    land(tmp, "deals_2026-03-02.csv", bx_deal(20, amount="999,00"), bx_deal(21))
    land(tmp, "deals_2026-03-03.csv", bx_deal(30), bx_deal(31))
    copy = tmp / "data_copy"
    shutil.copytree(tmp / "data", copy)
    home = tmp / "dagster_home"
    home.mkdir()
    write_instance_config(home)  # the instance `crmwh serve` gives the UI: batched event log
    # Its SQLite storage is created here, once: the webserver's code server and the daemon,
    # started together on an empty instance, would both create and stamp it at the same
    # moment (alembic: "more than one head present", the code location fails to load).
    DagsterInstance.from_config(str(home)).dispose()
    env = dict(os.environ, DAGSTER_HOME=str(home), DAGSTER_EVENT_BATCH_SIZE=EVENT_BATCH_SIZE)
    bin_dir = Path(sys.executable).parent
    port = free_port(range(8300, 8400))
    logs = [(tmp / f"{n}.log").open("w") for n in ("webserver", "daemon")]
    procs = [
        subprocess.Popen(
            [
                str(bin_dir / "dagster-webserver"),
                "-m",
                "pipelines.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),  # fmt: skip
        subprocess.Popen(
            [str(bin_dir / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
            cwd=ROOT,
            env=env,
            stdout=logs[1],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),  # fmt: skip
    ]

    def gql(query: str, variables: dict) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.loads(resp.read())
        assert "errors" not in body, body
        return body["data"]

    def backfill(start: str, end: str) -> list[dict]:
        params = {
            "partitionsByAssets": [
                {
                    "assetKey": {"path": ["raw", "bitrix__deal_snapshot"]},
                    "partitions": {"range": {"start": start, "end": end}},
                }
            ],
            "title": f"test {start}..{end}",
        }
        launched = gql(LAUNCH, {"params": params})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            state = gql(STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
            if state["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
                break
            time.sleep(3)
        assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state
        return state["runs"]

    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp / "webserver.log").read_text()[-3000:]
                assert procs[0].poll() is None, (tmp / "webserver.log").read_text()[-3000:]
                time.sleep(2)

        runs = backfill("2026-03-01", "2026-03-03")
        assert len(runs) == 1  # BackfillPolicy.single_run(): one run, not one per day
        tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
        assert tags["dagster/asset_partition_range_start"] == "2026-03-01"
        assert tags["dagster/asset_partition_range_end"] == "2026-03-03"
        assert "dagster/backfill" in tags
        rebuilt = _raw(tmp / "data")
        assert [(f, n) for f, _, n, _ in rebuilt] == [
            ("crm_bitrix/deals_2026-02-28.csv", 1),
            *((f"crm_bitrix/deals_2026-03-0{d}.csv", 2) for d in (1, 2, 3)),
        ]
        assert rebuilt[0] == before[0]  # outside the range: the same load, untouched
        day2, old2 = rebuilt[2], before[1]
        assert day2[1] != old2[1]  # reloaded in the backfill's run, 2 rows (not 4)
        assert day2[3] == pytest.approx(999.0 + 125000.50)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs:
            log.close()

    # The same range as `crmwh backfill` runs it (its tag, in process) on the copy: same rows.
    os.environ["CRMWH_PATHS__DATA"] = str(copy)
    defs, _ = _ingest_defs()
    with DagsterInstance.ephemeral() as instance:
        cli_tags = {**range_tags(D(2026, 3, 1), D(2026, 3, 3)),
                    "crmwh/backfill": "2026-03-01..2026-03-03"}  # fmt: skip
        _run(defs, instance, cli_tags)
    assert [(f, n, a) for f, _, n, a in _raw(copy)] == [(f, n, a) for f, _, n, a in rebuilt]
