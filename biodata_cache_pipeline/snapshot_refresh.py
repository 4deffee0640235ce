"""Keeping the record snapshot up to date: read only what changed, on every core.

1. The source lists its keys, with a signature when it has one cheaply (DocDB: `_id` and
   `_last_modified` in one projected scan; asset folders: just the sorted folder names).
2. Keys whose listed signature equals the snapshot's are kept as they are. The others go, in
   consecutive chunks of the listing, to worker processes, which read and normalise a record only
   when its signature differs (an asset folder's signature is read from its file listing) and
   send back Arrow rows. Keys the snapshot has but the source no longer lists are dropped.
3. A first snapshot is written chunk by chunk in listing (= key) order as the workers answer, so
   memory never holds the parsed corpus. An update holds the changed rows (about 1% on a night),
   then writes the previous snapshot row group by row group without its dropped rows and with the
   changed rows slotted in; when nothing changed it writes nothing.

A snapshot made by other code (normaliser, readers), or from another source, is not reused: the
refresh then rebuilds it in full. The new snapshot is written to a file the caller publishes
only when the refresh succeeded, so a failed or killed refresh leaves the previous one in place.
No Dagster and no cache storage here.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache_client.collector import collector_paused
from biodata_cache_pipeline.snapshot import (
    CODE_VERSION_KEY,
    ROW_GROUP_SIZE,
    SCHEMA,
    SOURCE_KEY,
    RecordSnapshot,
    code_version,
    to_batch,
)
from biodata_cache_pipeline.sources import RecordSource

CHUNK_SIZE = 250  # listing entries per worker task
PARENT_CHECK_SECONDS = 1.0
REASONS_SHOWN = 5


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0))


@dataclass
class RefreshReport:
    """What a refresh did; `rebuilt` says why the previous snapshot was not reused, if it was not."""

    source: str
    records: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    read: int = 0  # records read and normalised by this refresh
    skipped: int = 0  # records with problems (wrong types, unreadable files)
    skipped_reasons: list[str] = field(default_factory=list)
    rebuilt: str | None = None

    @property
    def unchanged(self) -> bool:
        """Whether the new snapshot holds exactly the rows of the previous one."""
        return self.rebuilt is None and self.read == 0 and self.removed == 0

    def summary(self) -> str:
        text = (
            f"{self.records} records: {self.added} added, {self.changed} changed, {self.removed} removed, "
            f"{self.read} read"
        )
        return text + (f" (full rebuild: {self.rebuilt})" if self.rebuilt else "")


@dataclass
class _Chunk:
    """A worker's answer for one chunk: the new rows, and the keys kept."""

    rows: pa.RecordBatch | None
    unchanged: list[str]


def _read_chunk(source: RecordSource, entries: Sequence[tuple[str, str | None, str | None]]) -> _Chunk:
    """Runs in a worker: the source's changed records of `entries`, as snapshot rows."""
    with collector_paused():  # parsed JSON makes no reference cycles; the collector's passes cost 2x
        changed = source.read_changed(entries)
        rows = to_batch(changed.records) if changed.records else None
    return _Chunk(rows, changed.unchanged)


def _reusable(previous: RecordSnapshot | None, source: RecordSource) -> str | None:
    """Why `previous` cannot be updated in place (None: it can)."""
    if previous is None:
        return "no snapshot yet"
    if previous.code_version != code_version():
        return "the normaliser or the record readers changed"
    if previous.source != source.label:
        return f"the snapshot was made from {previous.source or 'an unknown source'}"
    return None


def _in_order(work: Callable, tasks: Iterable, workers: int) -> Iterator:
    """`work(task)` for every task, in task order; in worker processes when `workers` > 1, with at
    most two tasks per worker in flight so that answers never pile up in memory."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        yield from map(work, tasks)
        return
    # spawn, not fork: the caller may be a threaded Dagster process.
    pool = ProcessPoolExecutor(
        min(workers, len(tasks)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.submit(work, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """In a worker: end the process soon after `parent` is gone (killed with -9, it cannot stop its
    workers, which would otherwise wait on their task queue forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def refresh_snapshot(
    source: RecordSource,
    previous: RecordSnapshot | None,
    out: str,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> RefreshReport:
    """Write the up-to-date snapshot of `source` to the parquet file `out`, reusing the rows of
    `previous` whose signature did not change. When nothing changed (`report.unchanged`), nothing
    is written: `previous` is up to date."""
    report = RefreshReport(source=source.label, rebuilt=_reusable(previous, source))
    reused = previous if report.rebuilt is None else None
    listing = sorted(dict(source.listing()).items())
    old = reused.table(["signature"]) if reused else SCHEMA.empty_table()
    old_keys = old.column("key").to_pylist()
    old_signature = dict(zip(old_keys, old.column("signature").to_pylist()))

    kept, tasks = set(), []
    for start in range(0, len(listing), chunk_size):
        to_read = []
        for key, listed in listing[start : start + chunk_size]:
            stored = old_signature.get(key)
            if listed is not None and key in old_signature and listed == stored:
                kept.add(key)
            else:
                to_read.append((key, listed, stored))
        if to_read:
            tasks.append(to_read)

    schema = SCHEMA.with_metadata({CODE_VERSION_KEY: code_version().encode(), SOURCE_KEY: source.label.encode()})
    with _SnapshotWriter(out, schema, report) as writer:
        new_rows = []
        for chunk in _in_order(partial(_read_chunk, source), tasks, workers or default_workers()):
            kept.update(chunk.unchanged)
            if chunk.rows is None:
                continue
            rows = pa.Table.from_batches([chunk.rows])
            report.read += rows.num_rows
            for key in rows.column("key").to_pylist():
                report.added += key not in old_signature
                report.changed += key in old_signature
            if reused is None:
                writer.write(rows)  # no previous rows to merge: written as they come, in key order
            else:
                new_rows.append(rows)
        report.removed = sum(key not in kept for key in old_keys) - report.changed
        report.records = len(kept) + report.read
        if reused is not None:
            if report.unchanged:
                writer.cancel()
                _count_problems(report, reused.table(["name", "id", "problems"]))
            else:
                _merge(reused, kept, _sorted(pa.concat_tables(new_rows) if new_rows else None), writer)
    return report


def _sorted(table: pa.Table | None) -> pa.Table | None:
    return None if table is None else table.take(pc.sort_indices(table, [("key", "ascending")]))


def _merge(previous: RecordSnapshot, kept: set[str], new_rows: pa.Table | None, writer: _SnapshotWriter) -> None:
    """Write the kept rows of `previous`, one row group at a time, with the new rows (sorted by key)
    slotted in before the first kept key greater than theirs."""
    new_keys = [] if new_rows is None else new_rows.column("key").to_pylist()
    taken = 0
    groups = previous.file.num_row_groups
    for group in range(groups):
        rows = previous.file.read_row_group(group)
        keys = rows.column("key").to_pylist()
        rows = rows.filter(pa.array([key in kept for key in keys], pa.bool_()))
        if group + 1 < groups:
            boundary = previous.file.read_row_group(group + 1, ["key"]).column(0)[0].as_py()
            until = bisect_right(new_keys, boundary, lo=taken)
        else:
            until = len(new_keys)
        if until > taken:
            rows = _sorted(pa.concat_tables([rows, new_rows.slice(taken, until - taken)]))
            taken = until
        writer.write(rows)
    if taken < len(new_keys):  # an empty previous snapshot
        writer.write(new_rows.slice(taken))


class _SnapshotWriter:
    """Writes snapshot rows in key order, in row groups of `ROW_GROUP_SIZE`, counting problems."""

    def __init__(self, out: str, schema: pa.Schema, report: RefreshReport):
        self.out, self.schema, self.report = out, schema, report
        self.writer: pq.ParquetWriter | None = None
        self.buffered: list[pa.Table] = []
        self.cancelled = False

    def write(self, rows: pa.Table) -> None:
        rows = rows.cast(SCHEMA)
        _count_problems(self.report, rows)
        self.buffered.append(rows)
        if sum(t.num_rows for t in self.buffered) >= ROW_GROUP_SIZE:
            self._flush()

    def cancel(self) -> None:
        """Write nothing (the previous snapshot is up to date)."""
        self.cancelled = True

    def _flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.out, self.schema, compression="zstd")
        if self.buffered:
            table = pa.concat_tables(self.buffered).replace_schema_metadata(self.schema.metadata)
            self.writer.write_table(table, ROW_GROUP_SIZE)
        self.buffered = []

    def __enter__(self) -> _SnapshotWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None and not self.cancelled:
            self._flush()  # also writes an empty snapshot when the source holds no records
        if self.writer is not None:
            self.writer.close()


def _count_problems(report: RefreshReport, part: pa.Table) -> None:
    with_problems = part.filter(pc.greater(pc.list_value_length(part.column("problems")), 0))
    report.skipped += with_problems.num_rows
    for row in with_problems.select(["key", "name", "id", "problems"]).slice(0, REASONS_SHOWN).to_pylist():
        if len(report.skipped_reasons) < REASONS_SHOWN:
            label = row["name"] or row["id"] or row["key"]  # an unreadable record has only its key
            report.skipped_reasons.append(f"{label}: {'; '.join(row['problems'][:3])}")
