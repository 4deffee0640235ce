"""Keeping the record snapshot up to date: read only what changed, on every core.

1. The source lists its keys, with a signature when it has one cheaply (DocDB: `_id` and
   `_last_modified` in one projected scan; asset folders: just the sorted folder names).
2. Keys whose listed signature equals the snapshot's are kept as they are. The others go, in
   consecutive chunks of the listing, to worker processes, which read and normalise a record only
   when its signature differs (an asset folder's signature is read from its file listing) and
   send back Arrow rows. Keys the snapshot has but the source no longer lists are dropped.
3. Chunks are written in listing (= key) order as they arrive; the kept rows are read from the
   previous snapshot row group by row group as the listing advances, so memory holds a few row
   groups and chunks, never the corpus.

A snapshot made by other code (normaliser, readers), or from another source, is not reused: the
refresh then rebuilds it in full. The new snapshot is written to a file the caller publishes
only when the refresh succeeded, so a failed or killed refresh leaves the previous one in place.
No Dagster and no cache storage here.
"""

from __future__ import annotations

import multiprocessing
import os
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate, groupby

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache_pipeline.collector import collector_paused
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
    """A worker's answer for one chunk: the new rows, and the keys kept or gone."""

    rows: pa.RecordBatch | None
    unchanged: list[str]
    gone: list[str]


def _read_chunk(source: RecordSource, entries: Sequence[tuple[str, str | None, str | None]]) -> _Chunk:
    """Runs in a worker: the source's changed records of `entries`, as snapshot rows."""
    with collector_paused():  # parsed JSON makes no reference cycles; the collector's passes cost 2x
        changed = source.read_changed(entries)
        rows = to_batch(changed.records) if changed.records else None
    return _Chunk(rows, changed.unchanged, changed.gone)


class _PreviousRows:
    """Rows of the previous snapshot by row number, read one row group at a time; rows must be
    asked for in increasing order (the listing's), so row groups already passed are let go."""

    def __init__(self, snapshot: RecordSnapshot):
        self.file = snapshot.file
        sizes = [self.file.metadata.row_group(i).num_rows for i in range(self.file.num_row_groups)]
        self.starts = list(accumulate([0, *sizes]))
        self.loaded: dict[int, pa.Table] = {}

    def take(self, rows: list[int]) -> pa.Table:
        parts = []
        for group, in_group in groupby(sorted(rows), key=lambda row: bisect_right(self.starts, row) - 1):
            if group not in self.loaded:
                self.loaded = {g: table for g, table in self.loaded.items() if g >= group}
                self.loaded[group] = self.file.read_row_group(group)
            parts.append(self.loaded[group].take([row - self.starts[group] for row in in_group]))
        return pa.concat_tables(parts)


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
    pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"))
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


def refresh_snapshot(
    source: RecordSource,
    previous: RecordSnapshot | None,
    out: str,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> RefreshReport:
    """Write the up-to-date snapshot of `source` to the parquet file `out`, reusing the rows of
    `previous` whose signature did not change."""
    report = RefreshReport(source=source.label, rebuilt=_reusable(previous, source))
    listing = sorted(dict(source.listing()).items())
    old = previous.table(["signature"]) if report.rebuilt is None else SCHEMA.empty_table()
    old_keys = old.column("key").to_pylist()
    old_row = {key: row for row, key in enumerate(old_keys)}
    old_signature = dict(zip(old_keys, old.column("signature").to_pylist()))
    previous_rows = _PreviousRows(previous) if report.rebuilt is None else None

    segments, tasks = [], []
    for start in range(0, len(listing), chunk_size):
        kept, to_read = [], []
        for key, listed in listing[start : start + chunk_size]:
            stored = old_signature.get(key)
            if listed is not None and key in old_signature and listed == stored:
                kept.append(key)
            else:
                to_read.append((key, listed, stored))
        segments.append(kept)
        tasks.append(to_read)

    schema = SCHEMA.with_metadata({CODE_VERSION_KEY: code_version().encode(), SOURCE_KEY: source.label.encode()})
    listed_keys = set()
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        buffered: list[pa.Table] = []
        for kept, chunk in zip(segments, _in_order(partial(_read_chunk, source), tasks, workers or default_workers())):
            kept = kept + chunk.unchanged
            parts = [previous_rows.take([old_row[key] for key in kept])] if kept else []
            if chunk.rows is not None:
                parts.append(pa.Table.from_batches([chunk.rows]))
                for key in chunk.rows.column(0).to_pylist():
                    report.added += key not in old_row
                    report.changed += key in old_row
            report.read += 0 if chunk.rows is None else chunk.rows.num_rows
            if parts:
                part = pa.concat_tables(parts).cast(SCHEMA)
                part = part.take(pc.sort_indices(part, [("key", "ascending")]))
                listed_keys.update(part.column("key").to_pylist())
                _count_problems(report, part)
                buffered.append(part)
            if sum(t.num_rows for t in buffered) >= ROW_GROUP_SIZE:
                writer.write_table(pa.concat_tables(buffered).replace_schema_metadata(schema.metadata), ROW_GROUP_SIZE)
                buffered = []
        if buffered:
            writer.write_table(pa.concat_tables(buffered).replace_schema_metadata(schema.metadata), ROW_GROUP_SIZE)
    report.records = len(listed_keys)
    report.removed = sum(key not in listed_keys for key in old_keys)
    return report


def _count_problems(report: RefreshReport, part: pa.Table) -> None:
    with_problems = part.filter(pc.greater(pc.list_value_length(part.column("problems")), 0))
    report.skipped += with_problems.num_rows
    for row in with_problems.select(["name", "id", "problems"]).slice(0, REASONS_SHOWN).to_pylist():
        if len(report.skipped_reasons) < REASONS_SHOWN:
            label = row["name"] or row["id"] or "record without name"
            report.skipped_reasons.append(f"{label}: {'; '.join(row['problems'][:3])}")
