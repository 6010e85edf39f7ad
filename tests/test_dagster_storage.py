"""The instance `crmwh` writes: a partition range's materializations stored in one batch.

A real Dagster run over 31 daily partitions of a single-run asset, on the instance that
`pipelines.run.write_instance_config` configures; the events must read back as Dagster's
stock storage would give them, and none may go through the one-event-at-a-time path.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log import SqliteEventLogStorage

from pipelines.defs.ingest import range_tags
from pipelines.lib.dagster_storage import BatchedSqliteEventLogStorage
from pipelines.run import INSTANCE_MARKER, write_instance_config

DAYS = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-03-01")


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def exports(context) -> MaterializeResult:  # noqa: ANN001
    return MaterializeResult(metadata={"days": len(context.partition_keys)})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Dagster home with the instance configuration `crmwh run` writes."""
    home = tmp_path / "dagster"
    home.mkdir()
    write_instance_config(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_a_partition_range_is_written_as_one_batch(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    single: list[str] = []
    stock_store_event = SqliteEventLogStorage.store_event

    def spy(self: SqliteEventLogStorage, event) -> None:  # noqa: ANN001
        if (
            event.is_dagster_event
            and event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
        ):
            single.append(event.dagster_event.partition)
        stock_store_event(self, event)

    monkeypatch.setattr(SqliteEventLogStorage, "store_event", spy)

    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        result = materialize(
            [exports], instance=instance, tags=range_tags(dt.date(2026, 1, 1), dt.date(2026, 1, 31))
        )
        assert result.success
        january = {f"2026-01-{d:02d}" for d in range(1, 32)}
        assert instance.get_materialized_partitions(AssetKey("exports")) == january
        records = instance.fetch_materializations(AssetKey("exports"), limit=100).records
        assert {r.partition_key for r in records} == january and len(records) == 31
        latest = instance.get_latest_materialization_event(AssetKey("exports"))
        assert latest is not None and latest.run_id == result.run_id
        run_id = result.run_id

    assert single == [], "materializations went through store_event one by one"
    # the run's own shard holds the same 31 events as the cross-run index
    for shard in (run_id, "index"):
        with sqlite3.connect(home / "history" / "runs" / f"{shard}.db") as con:
            (n,) = con.execute(
                "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
            ).fetchone()
        assert n == 31, (shard, n)


@asset(check_specs=[AssetCheckSpec("positive", asset="scores")])
def scores() -> Iterator[object]:
    yield MaterializeResult(metadata={"rows": 3})
    yield AssetCheckResult(check_name="positive", passed=True)


def test_the_kept_index_connection_is_read_by_other_processes(home: Path) -> None:
    with DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        runs = [materialize([scores], instance=instance) for _ in range(3)]
        assert all(r.success for r in runs)
        with storage.index_connection() as conn:  # the kept connection, without fsync per commit
            assert conn.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        # while it is open, a stock storage (another process, e.g. the webserver) sees it all
        other = SqliteEventLogStorage(str(home / "history" / "runs"))
        records = other.fetch_materializations(AssetKey("scores"), limit=10).records
        assert sorted(r.run_id for r in records) == sorted(r.run_id for r in runs)
        check = AssetCheckKey(AssetKey("scores"), "positive")
        latest = other.get_latest_asset_check_execution_by_key([check])[check]
        assert latest.run_id == runs[-1].run_id and latest.status.value == "SUCCEEDED"
        other.dispose()
    assert storage._index_engine is None  # released with the instance


def test_a_hand_written_instance_config_is_left_alone(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    ours.mkdir()
    write_instance_config(ours)
    text = (ours / "dagster.yaml").read_text(encoding="utf-8")
    assert text.startswith(INSTANCE_MARKER) and str(ours / "history" / "runs") in text

    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "dagster.yaml").write_text(text, encoding="utf-8")  # a state folder moved
    write_instance_config(moved)
    assert str(moved / "history" / "runs") in (moved / "dagster.yaml").read_text("utf-8")

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "dagster.yaml").write_text("storage:\n  postgres: {}\n", encoding="utf-8")
    write_instance_config(theirs)
    assert (theirs / "dagster.yaml").read_text("utf-8") == "storage:\n  postgres: {}\n"
