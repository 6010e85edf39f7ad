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

Every other event still costs about 9 ms (2,500 events in a one-day increment of the demo,
22 s of its 80 s by py-spy): for each, the stock storage creates an engine, opens a
connection, commits with an fsync and closes it (closing the last connection of a WAL
database checkpoints it, another fsync), once for the run's shard and once or twice more for
the cross-run index shard (asset and asset-check events), and asks SQLite whether the
asset-check tables exist. Here:

- the index shard is written through one connection kept open for the life of the storage,
  with `PRAGMA synchronous=NORMAL` (WAL mode: a commit survives the process being killed;
  only an operating-system crash can lose the last ones, which `dagster instance reindex`
  restores from the run shards). A run's shard keeps the stock path: the UI's live log
  view watches the run's `.db` file, which SQLite writes when the last connection closes
  (`synchronous=NORMAL` on its connections measured no faster: the pragma on each new
  connection cost what the commit saved);
- a table that exists is remembered (`has_table`): tables are never dropped while it runs.

`pipelines.run.dagster_home` writes the `dagster.yaml` that selects it; an instance
configured by hand (e.g. PostgreSQL) is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage whose `store_event_batch` uses one transaction per shard,
    with one kept connection to the index shard."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._index_engine: Engine | None = None
        self._existing_tables: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    def has_table(self, table_name: str) -> bool:
        if table_name in self._existing_tables:
            return True
        exists = super().has_table(table_name)
        if exists:
            self._existing_tables.add(table_name)
        return exists

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        if shard != INDEX_SHARD_NAME:  # a run's shard: the stock path
            with super()._connect(shard) as conn:
                yield conn
            return
        with self._db_lock:  # as the stock path: one user of a connection at a time
            if self._index_engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=StaticPool,  # one connection, kept open
                    connect_args={
                        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                        "check_same_thread": False,  # the lock above serialises its users
                    },
                )
                event.listen(engine, "connect", _synchronous_normal)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._index_engine = engine
            with self._index_engine.connect() as conn:
                with conn.begin():
                    yield conn

    def dispose(self) -> None:
        with self._db_lock:
            if self._index_engine is not None:
                self._index_engine.dispose()
                self._index_engine = None
        super().dispose()

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


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
