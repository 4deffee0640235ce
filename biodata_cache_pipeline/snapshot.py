"""The record snapshot: every normalised record of the source, one parquet row each.

Every table is built from the snapshot instead of the source, reading only the columns it needs
(`RecordSnapshot.records(columns)` gives `NormalizedRecord`s carrying just those attributes, so
the table code is the same whatever the source; `RecordSnapshot.table` and `rows_by` give the rows
themselves, for tables built with Arrow compute). The snapshot is kept up to date
incrementally by `snapshot_refresh.py`; its rows are sorted by `key` (the asset folder name, or
the DocDB `_id`), the order the source lists records in, so a table sees records in the same order
as a direct read of the source would give.

Columns: `key`, `signature` (what a change is detected by: the asset folder's file names, sizes and
modification times, or DocDB's `_last_modified`) and one column per `NormalizedRecord` attribute.
A QC metric's `value` and `tags` can hold any JSON value, so they are stored as JSON text and read
back as the same Python values. `fingerprint` digests what a table is built from, so an unchanged
table need not be built again. No Dagster and no storage here: rows in, Arrow out, and back.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache_pipeline.records import DataStream, NormalizedRecord, PatchCordConfig, QcMetric

STRING = pa.string()
STRINGS = pa.list_(pa.string())
_PAIR = lambda a, b: pa.struct([(a, STRING), (b, STRING)])  # noqa: E731 - a type shorthand
QC_METRIC = pa.struct(
    [(name, STRING) for name in QcMetric._fields]
)  # value and tags as JSON text
DATA_STREAM = pa.struct(
    [
        ("connections", pa.list_(_PAIR("source_device", "target_device"))),
        (
            "patch_cords",
            pa.list_(
                pa.struct(
                    [
                        ("patch_cord", STRING),
                        ("channels", pa.list_(_PAIR("channel_name", "intended_measurement"))),
                    ]
                )
            ),
        ),
    ]
)
# NormalizedRecord attribute -> its Arrow type (the attributes not listed are strings).
ATTRIBUTE_TYPES: dict[str, pa.DataType] = {
    "modalities": STRINGS,
    "investigators": STRINGS,
    "source_data": STRINGS,
    "year_of_birth": pa.int64(),
    "experimenters": STRINGS,
    "data_streams": pa.list_(DATA_STREAM),
    "code_ocean": STRINGS,
    "process_times": pa.list_(_PAIR("start", "end")),
    "probe_implants": pa.list_(_PAIR("fiber", "acronym")),
    "has_qc": pa.bool_(),
    "qc_metrics": pa.list_(QC_METRIC),
    "qc_status": pa.list_(_PAIR("key", "status")),
    "problems": STRINGS,
}
ATTRIBUTES = tuple(f.name for f in fields(NormalizedRecord))
SCHEMA = pa.schema(
    [("key", STRING), ("signature", STRING)]
    + [(name, ATTRIBUTE_TYPES.get(name, STRING)) for name in ATTRIBUTES]
)
# Parquet key-value metadata of a snapshot file.
CODE_VERSION_KEY = b"biodata_cache.code_version"
SOURCE_KEY = b"biodata_cache.source"
ROWS_ID_KEY = b"biodata_cache.rows_id"  # of a snapshot's rows; a changes file names the rows it changes
REMOVED_KEY = b"biodata_cache.removed"  # of a changes file: the JSON list of keys removed from the rows
ROWS, CHANGES = "rows", "changes"  # what a refresh writes: every row, or the changes to the stored rows
ROW_GROUP_SIZE = 2_000


def code_version() -> str:
    """Identifies the code a snapshot was made by (normaliser, source readers, this module, Python):
    a snapshot made by other code is rebuilt in full."""
    from biodata_cache_pipeline import records
    from biodata_cache_pipeline.sources import docdb, local_folder

    digest = hashlib.sha256(sys.version.encode())
    for module in (records, local_folder, docdb, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(*parts: pa.Table | str) -> str:
    """A digest of tables' values (each column made contiguous, in Arrow's stream format) and of
    strings. Equal values give an equal digest; an unequal digest for equal values can only cost a
    rebuild, never skip one."""
    digest = hashlib.sha256()
    sink = pa.PythonFile(_Digesting(digest), mode="w")  # hashed as written, never held whole
    for part in parts:
        if isinstance(part, str):
            digest.update(part.encode())
            continue
        for name, column in zip(part.column_names, part.columns):
            array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            batch = pa.record_batch([array], names=[name])
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
    return digest.hexdigest()[:32]


class _Digesting:
    """A writable file that feeds what is written to a digest."""

    def __init__(self, digest):
        self.digest = digest
        self.closed = False

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        pass


# -- records -> rows ---------------------------------------------------------------------------


def json_text(value: Any) -> str | None:
    """A JSON value as text that `json_value` reads back as the same Python value."""
    if value is None:
        return None
    if type(value) is not float:  # floats go to json: NaN and Infinity as it reads them back
        try:
            text = orjson.dumps(value)
        except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits, lone surrogates
            pass
        else:
            if b"null" not in text or type(value) not in (dict, list):  # orjson writes NaN as null
                return text.decode()
    return json.dumps(value, separators=(",", ":"))


def json_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, Infinity, integers beyond 64 bits
        return json.loads(text)


def _qc_metrics_array(records: list[NormalizedRecord]) -> pa.ListArray:
    """The qc_metrics column, made field by field: one flat list per metric field and the offsets
    of each record's metrics (Arrow converts flat lists of scalars much faster than tuples)."""
    offsets, metrics = [0], []
    for record in records:
        metrics += record.qc_metrics
        offsets.append(len(metrics))
    fields = list(zip(*metrics)) if metrics else [()] * len(QcMetric._fields)
    arrays = [
        pa.array([json_text(v) for v in values] if name in ("value", "tags") else values, STRING)
        for name, values in zip(QcMetric._fields, fields)
    ]
    struct = pa.StructArray.from_arrays(arrays, fields=list(QC_METRIC))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct)


def to_batch(entries: Iterable[tuple[str, str | None, NormalizedRecord]]) -> pa.RecordBatch:
    """(key, signature, record) entries as snapshot rows, in the order given.

    Column by column: the parts of a record are (named) tuples, which Arrow takes as structs.
    """
    entries = list(entries)
    records = [record for _, _, record in entries]
    columns = {
        "key": [key for key, _, _ in entries],
        "signature": [signature for _, signature, _ in entries],
        **{name: [getattr(record, name) for record in records] for name in ATTRIBUTES if name != "qc_metrics"},
        "qc_status": [list(record.qc_status.items()) for record in records],
    }
    arrays = [
        _qc_metrics_array(records) if f.name == "qc_metrics" else pa.array(columns[f.name], f.type) for f in SCHEMA
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


# -- rows -> records ---------------------------------------------------------------------------


def _lists(array: pa.ListArray, convert) -> list:
    """A list column as Python lists, each item made by `convert` from the flattened values."""
    values = convert(array.flatten())
    offsets = array.offsets.to_pylist()
    base = offsets[0] if offsets else 0  # a sliced array's offsets start past zero; flatten() does not
    valid = array.is_valid().to_pylist()
    return [values[offsets[i] - base : offsets[i + 1] - base] if valid[i] else None for i in range(len(array))]


def status_maps(column: pa.ListArray) -> list[dict[str, str]]:
    """A `qc_status` column as one `{key: status}` per row (a null list: an empty one)."""
    return [dict(pairs or []) for pairs in _lists(column, _pairs)]


def _pairs(struct: pa.StructArray) -> list[tuple]:
    return list(zip(*(struct.field(i).to_pylist() for i in range(struct.type.num_fields))))


def json_values(texts: pa.StringArray) -> list:
    """`json_value` of every text of a column, parsed as one JSON array (one call, not one per text)."""
    try:
        return orjson.loads("[" + ",".join(pc.fill_null(texts, "null").to_pylist()) + "]")
    except orjson.JSONDecodeError:  # NaN, Infinity, integers beyond 64 bits
        return [json_value(text) for text in texts.to_pylist()]


def _qc_metrics(struct: pa.StructArray) -> list[QcMetric]:
    """Metrics with the fields the struct holds (see `RecordSnapshot.table`); the others are None."""
    present = {struct.type.field(i).name for i in range(struct.type.num_fields)}
    empty = [None] * len(struct)
    columns = {
        name: (json_values if name in ("value", "tags") else pa.Array.to_pylist)(struct.field(name))
        if name in present
        else empty
        for name in QcMetric._fields
    }
    return [QcMetric(*values) for values in zip(*(columns[name] for name in QcMetric._fields))]


def _data_streams(struct: pa.StructArray) -> list[DataStream]:
    connections = _lists(struct.field("connections"), lambda pairs: [tuple(p) for p in _pairs(pairs)])
    configs = _lists(
        struct.field("patch_cords"),
        lambda cords: [
            PatchCordConfig(patch_cord, tuple(channels))
            for patch_cord, channels in zip(
                cords.field("patch_cord").to_pylist(), _lists(cords.field("channels"), _pairs)
            )
        ],
    )
    return [DataStream(tuple(c), tuple(p)) for c, p in zip(connections, configs)]


def _metric_fields(metrics: pa.ListArray, names: list[str]) -> pa.ListArray:
    """A qc_metrics list array keeping only the `names` fields of each metric."""
    values = metrics.values
    kept = pa.StructArray.from_arrays([values.field(name) for name in names], names=names)
    return pa.ListArray.from_arrays(metrics.offsets, kept, mask=metrics.is_null())


# Columns that need more than `to_pylist` to become `NormalizedRecord` attribute values.
_CONVERTERS = {
    "data_streams": lambda column: [s or [] for s in _lists(column, _data_streams)],
    "process_times": lambda column: [p or [] for p in _lists(column, _pairs)],
    "probe_implants": lambda column: [p or [] for p in _lists(column, _pairs)],
    "qc_metrics": lambda column: [m or [] for m in _lists(column, _qc_metrics)],
    "qc_status": status_maps,
}
_NEVER_NULL_LISTS = ("modalities", "investigators", "source_data", "experimenters", "problems")


def to_records(table: pa.Table, slice_rows: int = 4_096) -> Iterator[NormalizedRecord]:
    """The rows of a snapshot table (any subset of the attribute columns) as records; attributes
    whose column is absent keep their defaults. Converted `slice_rows` rows at a time, so a
    consumer that keeps little of each record keeps memory flat."""
    names = [name for name in table.column_names if name in ATTRIBUTES]
    for start in range(0, table.num_rows, slice_rows):
        part = table.slice(start, slice_rows)
        values = []
        for name in names:
            column = part.column(name).combine_chunks()
            if name in _CONVERTERS:
                values.append(_CONVERTERS[name](column))
            elif name in _NEVER_NULL_LISTS:
                values.append([v or [] for v in column.to_pylist()])
            else:
                values.append(column.to_pylist())
        for row in zip(*values):
            yield NormalizedRecord(**dict(zip(names, row)))


class RecordSnapshot:
    """A stored snapshot: `source` is where its records came from.

    Its rows are `file`; `changes`, when given, holds the rows added or changed since (with the
    same columns) and names the keys removed since (`REMOVED_KEY`). Reads give the rows of `file`
    with those changes made, in key order. A changes file made for other rows (its `ROWS_ID_KEY`
    is not that of `file`) is ignored: the rows were written again since, with the changes in them.
    """

    def __init__(self, file: pq.ParquetFile, changes: pq.ParquetFile | None = None):
        self.file = file
        metadata = file.metadata.metadata or {}
        self.code_version = metadata.get(CODE_VERSION_KEY, b"").decode()
        self.source = metadata.get(SOURCE_KEY, b"").decode()
        self.rows_id = metadata.get(ROWS_ID_KEY, b"").decode()
        changes_metadata = (changes.metadata.metadata or {}) if changes is not None else {}
        applies = bool(self.rows_id) and changes_metadata.get(ROWS_ID_KEY, b"").decode() == self.rows_id
        self.changes = changes if applies else None
        if applies:  # the keys whose rows in `file` the changes replace or remove
            removed = json.loads(changes_metadata.get(REMOVED_KEY, b"[]"))
            self._replaced = pa.array(sorted({*removed, *changes.read(["key"]).column(0).to_pylist()}), STRING)

    def table(self, columns: Sequence[str], where: tuple[str, Iterable[str]] | None = None) -> pa.Table:
        """Some columns (and `key`), in key order; `where=(column, values)`: only the rows whose
        `column` is one of `values`, read row group by row group. `qc_metrics.<field>` columns keep
        only those fields of each metric (the others read back as None)."""
        metric_fields = [c.split(".", 1)[1] for c in columns if c.startswith("qc_metrics.")]
        plain = [c for c in columns if not c.startswith("qc_metrics.")]
        # Only the metric fields' own parquet columns are read (a metric's tags and value are most of its bytes).
        leaves = [f"qc_metrics.list.element.{name}" for name in metric_fields]
        wanted = list(dict.fromkeys(["key", *plain, *leaves]))
        table = _read(self.file, wanted, where)
        if self.changes is not None:
            table = _with_changes(table, self._replaced, _read(self.changes, wanted, where))
        if metric_fields:  # the fields as asked for: parquet gives them in the file's order
            metrics = table.column("qc_metrics")
            projected = pa.chunked_array(
                [_metric_fields(chunk, metric_fields) for chunk in metrics.chunks],
                pa.list_(pa.struct([QC_METRIC.field(f) for f in metric_fields])),
            )
            table = table.set_column(table.column_names.index("qc_metrics"), "qc_metrics", projected)
        return table

    def records(self, columns: Sequence[str], where: tuple[str, Iterable[str]] | None = None) -> Iterator[NormalizedRecord]:
        """`NormalizedRecord`s holding the attributes in `columns`, in key order."""
        return to_records(self.table(columns, where))

    def rows_by(
        self, column: str, values: Iterable[str], columns: Sequence[str], rows: int = 2_000
    ) -> Iterator[tuple[list[str], pa.Table]]:
        """The rows whose `column` is one of `values`, in groups of about `rows` rows that never
        split a value: (the values in the group, their rows in key order)."""
        table = self.table([*columns, column], where=(column, values))
        table = table.take(pc.sort_indices(table, [(column, "ascending"), ("key", "ascending")]))
        found = table.column(column).to_pylist()
        start = 0
        while start < len(found):
            end = min(start + rows, len(found))
            while end < len(found) and found[end] == found[end - 1]:
                end += 1
            yield sorted(set(found[start:end])), table.slice(start, end - start)
            start = end


def _with_changes(rows: pa.Table, replaced: pa.Array, changed: pa.Table) -> pa.Table:
    """`rows` without the `replaced` keys, with the `changed` rows, in key order: one copy of the
    columns (a `take` over both), not one to drop the replaced rows and another to sort."""
    kept = pc.indices_nonzero(pc.invert(pc.is_in(rows.column("key"), value_set=replaced)))
    if not changed.num_rows:
        return rows.take(kept)
    positions = pa.concat_arrays([kept, pa.array(range(rows.num_rows, rows.num_rows + changed.num_rows), kept.type)])
    keys = pa.concat_arrays([rows.column("key").take(kept).combine_chunks(), changed.column("key").combine_chunks()])
    return pa.concat_tables([rows, changed.cast(rows.schema)]).take(positions.take(pc.sort_indices(keys)))


def _read(file: pq.ParquetFile, wanted: list[str], where: tuple[str, Iterable[str]] | None) -> pa.Table:
    """The `wanted` parquet columns of a snapshot file; `where`: see `RecordSnapshot.table`. Two
    reads: the `where` column of the row groups its statistics allow, then the `wanted` columns of
    those holding a match, all at once (a read per row group costs more when most of them match)."""
    if where is None:
        return file.read(wanted)
    column, values = where
    ordered = sorted(set(values))
    groups = [group for group in range(file.num_row_groups) if _may_hold(file, group, column, ordered)]
    mask = pc.is_in(file.read_row_groups(groups, [column]).column(0), value_set=pa.array(ordered, STRING))
    matched, masks, start = [], [], 0
    for group in groups:
        rows = file.metadata.row_group(group).num_rows
        if pc.any(part := mask.slice(start, rows)).as_py():
            matched.append(group)
            masks.append(part)
        start += rows
    if not matched:
        return SCHEMA.empty_table().select(list(dict.fromkeys(name.split(".", 1)[0] for name in wanted)))
    return file.read_row_groups(matched, wanted).filter(pa.chunked_array([c for m in masks for c in m.chunks]))


def _may_hold(file: pq.ParquetFile, group: int, column: str, ordered: list[str]) -> bool:
    """Whether row group `group` may hold one of the `ordered` (sorted) values of `column`: not
    when its statistics bound the column to a range holding none of them. The rows are sorted
    by key, which starts with the modality and the subject id, so a run over a range of
    subjects reads a fraction of the row groups."""
    leaf = next((i for i in range(len(file.schema)) if file.schema.column(i).path == column), None)
    if leaf is None:
        return True
    statistics = file.metadata.row_group(group).column(leaf).statistics
    if statistics is None or not statistics.has_min_max:
        return True
    first = bisect.bisect_left(ordered, statistics.min)
    return first < len(ordered) and ordered[first] <= statistics.max
