"""Dagster's SQLite event log, with a batch of partition events written in one transaction.

A run over a partition range materializes each ingest asset once per day of the range:
a full run over a year of demo exports recorded 8,656 materialization events. Dagster's
SQLite storage writes each event with its own connection and two commits (the run's shard,
then the cross-run index), about 18 ms per event here: 2.6 minutes of a small full refresh
went to bookkeeping.

Dagster already groups the events of one partitioned output into a batch
(`DagsterEventBatchMetadata`) and hands the batch to `store_event_batch` when
`DAGSTER_EVENT_BATCH_SIZE` is above 0; SQLite's storage then stores them one by one. This
subclass writes a batch of asset materializations of one run as `store_event` would, row
for row, in one transaction per shard. Every other event, and any batch it does not
recognise, goes through the stock code path.

`pipelines.run.dagster_home` writes the `dagster.yaml` that selects it; an instance
configured by hand (e.g. PostgreSQL) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage whose `store_event_batch` uses one transaction per shard."""

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: Any, config_value: Any
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_ids = {e.run_id for e in events}
        plain = all(
            e.is_dagster_event and e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
            for e in events
        )
        if len(events) < 2 or len(run_ids) != 1 or not plain:
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        # mirror the events in the cross-run index shard, as `store_event` does per event
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in zip(events, event_ids, strict=True):
                self._store_asset_event(conn, event, event_id)
