"""Keeping the record snapshot up to date: read only what changed, on every core.

1. The source lists its keys, with a signature when it has one cheaply (DocDB: `_id` and
   `_last_modified` in one projected scan; asset folders on a local disk: the sorted folder names
   and a `stat` of each record file; on S3: the folder names only).
2. Keys whose listed signature equals the snapshot's are kept as they are. The others go, in
   consecutive chunks of the listing, to worker processes (or, when they are few, to this one),
   which read and normalise a record only when its signature differs (read again there) and send
   back Arrow rows. Keys the snapshot has but the source no longer lists are dropped.
3. A first snapshot is written chunk by chunk in listing (= key) order as the workers answer, so
   memory never holds the parsed corpus. An update holds the changed rows (about 1% on a night).
   While the rows differing from the stored rows file (these, the earlier changes still current,
   the keys removed) are under `CHANGES_FRACTION` of it, only they are written, as a changes file
   naming the rows file they change (`RecordSnapshot` reads the two as one). Past it, the stored
   rows are written again row group by row group, without the dropped rows and with the changed
   rows slotted in. When nothing changed, nothing is written.

A snapshot made by other code (normaliser, readers), or from another source, is not reused: the
refresh then rebuilds it in full. The new snapshot is written to a file the caller publishes
only when the refresh succeeded, so a failed or killed refresh leaves the previous one in place.
No Dagster and no cache storage here.
"""

from __future__ import annotations

import hashlib
import json
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
    CHANGES,
    CODE_VERSION_KEY,
    REMOVED_KEY,
    ROW_GROUP_SIZE,
    ROWS,
    ROWS_ID_KEY,
    SCHEMA,
    SOURCE_KEY,
    RecordSnapshot,
    code_version,
    to_batch,
)
from biodata_cache_pipeline.sources import RecordSource

CHUNK_SIZE = 250  # listing entries per worker task
# An update whose changes (rows added or changed, keys removed) stay under this fraction of the
# stored rows writes only them (changes.parquet); above it, every row is written again.
CHANGES_FRACTION = 0.1
# Up to this many records to read, the refresh reads them itself: starting the workers (about
# 0.6 s) would cost more than they save (about 1 ms of work per record).
IN_PROCESS_RECORDS = 1_000
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
    written: str | None = None  # ROWS, CHANGES, or None: nothing (the previous snapshot is up to date)

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
    changes_out: str | None = None,
) -> RefreshReport:
    """Write the up-to-date snapshot of `source`, reusing the rows of `previous` whose signature
    did not change: all its rows to the parquet file `out`, or, when `changes_out` is given and the
    changes since `previous.file` are few (`CHANGES_FRACTION`), only those to `changes_out`
    (`report.written` says which). When nothing changed (`report.unchanged`), nothing is written:
    `previous` is up to date. `workers`: processes reading the records (default: every core, or
    this process alone when at most `IN_PROCESS_RECORDS` are to be read)."""
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
    workers = workers or (1 if sum(map(len, tasks)) <= IN_PROCESS_RECORDS else default_workers())

    def read() -> Iterator[pa.Table]:
        """The rows read, chunk by chunk in key order, counted in the report."""
        for chunk in _in_order(partial(_read_chunk, source), tasks, workers):
            kept.update(chunk.unchanged)
            if chunk.rows is not None:
                rows = pa.Table.from_batches([chunk.rows])
                report.read += rows.num_rows
                report.changed += sum(key in old_signature for key in rows.column("key").to_pylist())
                yield rows
        report.added = report.read - report.changed
        report.removed = sum(key not in kept for key in old_keys) - report.changed
        report.records = len(kept) + report.read

    schema = SCHEMA.with_metadata({CODE_VERSION_KEY: code_version().encode(), SOURCE_KEY: source.label.encode()})
    if reused is None:  # no previous rows to merge: written as they come, in key order
        with _SnapshotWriter(out, schema, report) as writer:
            for rows in read():
                writer.write(rows)
        report.written = ROWS
        return report
    new_rows = list(read())
    if report.unchanged:
        _count_problems(report, reused.table(["name", "id", "problems"]))
        return report
    # The rows that are not (or no longer) those of the stored rows file: the rows read now, and
    # the earlier changes whose records did not change again.
    earlier = reused.changes.read() if reused.changes is not None else SCHEMA.empty_table()
    earlier_kept = earlier.filter(pc.is_in(earlier.column("key"), value_set=pa.array(sorted(kept), pa.string())))
    upserts = _sorted(pa.concat_tables([rows.cast(SCHEMA) for rows in new_rows] + [earlier_kept.cast(SCHEMA)]))
    stored_keys = reused.file.read(["key"]).column(0).to_pylist()
    current = kept.union(upserts.column("key").to_pylist())
    removed = [key for key in stored_keys if key not in current]
    if changes_out is not None and upserts.num_rows + len(removed) <= CHANGES_FRACTION * len(stored_keys):
        _write_changes(changes_out, schema, reused.rows_id, upserts, removed)
        report.written = CHANGES
        updated = RecordSnapshot(reused.file, pq.ParquetFile(changes_out))
        _count_problems(report, updated.table(["name", "id", "problems"]))
    else:
        with _SnapshotWriter(out, schema, report) as writer:
            _merge(reused, kept.difference(earlier.column("key").to_pylist()), upserts, writer)
        report.written = ROWS
    return report


def _write_changes(out: str, schema: pa.Schema, rows_id: str, upserts: pa.Table, removed: list[str]) -> None:
    """The changes file of the rows `rows_id`: the rows added or changed since, and the keys removed."""
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        writer.write_table(upserts.replace_schema_metadata(schema.metadata), ROW_GROUP_SIZE)
        writer.add_key_value_metadata({ROWS_ID_KEY: rows_id.encode(), REMOVED_KEY: json.dumps(removed).encode()})


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
    """Writes snapshot rows in key order, in row groups of `ROW_GROUP_SIZE`, counting problems;
    the file is named (`ROWS_ID_KEY`) by a digest of its keys and signatures."""

    def __init__(self, out: str, schema: pa.Schema, report: RefreshReport):
        self.out, self.schema, self.report = out, schema, report
        self.writer: pq.ParquetWriter | None = None
        self.buffered: list[pa.Table] = []
        self.rows_id = hashlib.sha256(schema.metadata[CODE_VERSION_KEY])

    def write(self, rows: pa.Table) -> None:
        rows = rows.cast(SCHEMA)
        _count_problems(self.report, rows)
        for key, signature in zip(rows.column("key").to_pylist(), rows.column("signature").to_pylist()):
            self.rows_id.update(f"{key}\t{signature}\n".encode())
        self.buffered.append(rows)
        if sum(t.num_rows for t in self.buffered) >= ROW_GROUP_SIZE:
            self._flush()

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
        if kind is None:
            self._flush()  # also writes an empty snapshot when the source holds no records
            self.writer.add_key_value_metadata({ROWS_ID_KEY: self.rows_id.hexdigest()[:32].encode()})
        if self.writer is not None:
            self.writer.close()


def _count_problems(report: RefreshReport, part: pa.Table) -> None:
    with_problems = part.filter(pc.greater(pc.list_value_length(part.column("problems")), 0))
    report.skipped += with_problems.num_rows
    for row in with_problems.select(["key", "name", "id", "problems"]).slice(0, REASONS_SHOWN).to_pylist():
        if len(report.skipped_reasons) < REASONS_SHOWN:
            label = row["name"] or row["id"] or row["key"]  # an unreadable record has only its key
            report.skipped_reasons.append(f"{label}: {'; '.join(row['problems'][:3])}")
