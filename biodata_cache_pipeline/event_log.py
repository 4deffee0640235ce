"""Dagster's SQLite event log, made fit for runs over thousands of subject partitions.

Named in dagster.yaml (`event_log_storage`); same files, tables and migrations as Dagster's
`SqliteEventLogStorage`, which it extends in two ways (benchmarks/README.md has the numbers):

- A run over many partitions records one "materialization planned" event per asset, carrying the
  partition subset, instead of one per partition: what Dagster does when
  `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS` is set. Dagster's noted cost: the partitions
  of a run that fails are not marked failed in the UI (the run is); the subject sensor compares
  fingerprints and does not rely on that marking.
- Each process keeps one open connection per database file (the index and the most recent run
  databases) instead of creating an engine and a connection for every event. Closing a
  connection was what checkpointed the write-ahead log into the run's `.db` file, which is the
  file the UI watches for new events; so the run database is checkpointed after every event
  except the per-partition ones, and after those at most once a second.
- Whether a table exists, and whether the asset-key table has its index columns, is asked of the
  database once per process, not once per partition event.
- The materialization events of one output's partitions are stored as batches of up to
  `EVENT_BATCH_SIZE` (Dagster's `DAGSTER_EVENT_BATCH_SIZE`, which this storage sets for its process
  unless it is set): one transaction and one insert statement per database per batch instead of
  two transactions per event, and the asset's latest-materialization row updated once per batch
  instead of once per event.
- Its connections commit with `synchronous=NORMAL`, SQLite's recommended setting in WAL mode: no
  disk flush per commit (one per event), the database never corrupt; what an operating-system crash
  (not a process crash) may lose is the last events written.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster import DagsterEventType, Field, StringSource
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from biodata_cache_pipeline.dagster_internals import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConfigurableClassData,
    EventLogEntry,
    SqliteEventLogStorage,
    SqlEventLogStorageTable,
    create_engine,
)

EVENT_BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "1000"  # partition events per batch
OPEN_DATABASES = 8  # the index and the seven most recently used run databases
CHECKPOINT_INTERVAL_SECONDS = 1.0
# Written once per partition or output: a run over 10,000 subjects writes tens of thousands.
PER_PARTITION_EVENTS = frozenset({
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    DagsterEventType.STEP_OUTPUT,
    DagsterEventType.HANDLED_OUTPUT,
    DagsterEventType.LOADED_INPUT,
})


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log with partition-subset planned events and one connection per database.

    `base_dir` defaults to `$DAGSTER_HOME/history/runs`, where Dagster's default storage keeps
    its event logs, so an existing instance keeps its history.
    """

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "the project's dagster.yaml keeps the event log under $DAGSTER_HOME: set DAGSTER_HOME "
                    "(`make dev` and `make run` use .dagster_home/) or give the event log a `base_dir`"
                )
            base_dir = os.path.join(home, "history", "runs")
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._last_checkpoint: dict[str, float] = {}  # shard -> time, for the open engines
        self._tables_found: set[str] = set()
        self._asset_key_index_cols_found = False
        os.environ.setdefault(EVENT_BATCH_SIZE_VARIABLE, EVENT_BATCH_SIZE)  # read by Dagster at each event
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before storing each partitioned event's tags, on a new connection each
        time; a table found once stays (migrations only add tables), so it is asked once."""
        if table_name not in self._tables_found and super().has_table(table_name):
            self._tables_found.add(table_name)
        return table_name in self._tables_found

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        """Dagster inspects the asset-key table's columns for every materialization event; columns
        found once stay (migrations only add them), so they are looked for until found."""
        if not self._asset_key_index_cols_found:
            self._asset_key_index_cols_found = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols_found

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def _engine(self, shard: str) -> Engine:
        """The open engine of one database file (called under `_db_lock`)."""
        if os.getpid() != self._engines_pid:  # a forked child must not share its parent's connections
            self._engines = OrderedDict()
            self._last_checkpoint = {}
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=2,  # Dagster's schema set-up opens a second connection while holding one
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _commit_without_flush)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_DATABASES:
            oldest, closing = self._engines.popitem(last=False)
            closing.dispose()  # closing the last connection checkpoints too
            self._last_checkpoint.pop(oldest, None)
        return engine

    def store_event(self, event: EventLogEntry) -> None:
        super().store_event(event)
        self._checkpoint_if_due(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The materializations of one output's partitions (what Dagster batches), each in both
        databases as `store_event` writes it, in one transaction per database."""
        if len({event.run_id for event in events}) != 1 or any(
            event.dagster_event_type != DagsterEventType.ASSET_MATERIALIZATION for event in events
        ):
            super().store_event_batch(events)  # one by one
            return
        # One statement for all rows (executemany), not one compiled per event.
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            ids = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
            event_ids = [row[0] for row in conn.execute(ids, rows)]
            self._store_asset_event_tags(conn, events, event_ids)
            latest = {entry.dagster_event.asset_key: (entry, entry_id) for entry, entry_id in zip(events, event_ids)}
            for entry, entry_id in latest.values():  # the asset-key row keeps only the latest event
                self._store_asset_event(conn, entry, entry_id)
        self._checkpoint_if_due(events[-1])

    def _checkpoint_if_due(self, event: EventLogEntry) -> None:
        with self._db_lock:
            if self._checkpoint_due(event):
                with self._engine(event.run_id).connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpoint_due(self, event: EventLogEntry) -> bool:
        """Whether the run's `.db` file should now show this event to the UI's file watcher
        (called under `_db_lock`)."""
        now = time.monotonic()
        last = self._last_checkpoint.get(event.run_id, float("-inf"))
        if event.dagster_event_type in PER_PARTITION_EVENTS and now - last < CHECKPOINT_INTERVAL_SECONDS:
            return False
        self._last_checkpoint[event.run_id] = now
        return True

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            self._last_checkpoint.clear()

    def wipe(self) -> None:
        self._dispose_engines()
        self._tables_found.clear()
        self._asset_key_index_cols_found = False
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _commit_without_flush(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
