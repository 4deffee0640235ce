"""Run a benchmark child with an *experimental* Dagster setting (benchmarks only, not the product).

    python benchmarks/dagster_variants.py VARIANT -m biodata_cache_pipeline.cli materialize
    python benchmarks/dagster_variants.py VARIANT benchmarks/run.py _qc_child --subjects 5000

Variants (`+` combines them):
- `planned-subset`: `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1`, a Dagster setting: a run
  over many partitions writes one "materialization planned" event per asset instead of one per
  partition. Dagster's documented cost: partitions of a failed run are not marked failed.
- `pooled-sqlite`: the SQLite event log keeps one engine (and one open connection) per database
  file instead of creating an engine and a connection for every event, whose close also
  checkpoints the WAL. A monkeypatch of a private Dagster method, to size what Dagster's
  per-event connection costs; nothing in the pipeline does this.
"""

from __future__ import annotations

import os
import runpy
import sys
from contextlib import contextmanager

VARIANTS = ("planned-subset", "pooled-sqlite")


def pooled_sqlite() -> None:
    import sqlalchemy as db
    from dagster._core.storage.event_log.sqlite import sqlite_event_log
    from sqlalchemy.pool import QueuePool

    engines: dict = {}

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:
            engine = engines.get((id(self), shard))
            if engine is None:
                engine = db.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=QueuePool,
                    pool_size=1,
                    max_overflow=4,
                    connect_args={"timeout": sqlite_event_log.SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                engines[(id(self), shard)] = engine
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    sqlite_event_log.SqliteEventLogStorage._connect = _connect


def main() -> None:
    variant, target, *rest = sys.argv[1:]
    for name in variant.split("+"):
        if name == "planned-subset":
            os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "1"
        elif name == "pooled-sqlite":
            pooled_sqlite()
        else:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    if target == "-m":
        module, *args = rest
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *rest]
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
