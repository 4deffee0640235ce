"""quality_control (per subject): one row per QC metric of every record, built from the record snapshot."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.schema.declaration import STRING, UTC_TIMESTAMP
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.records import parse_utc
from biodata_cache_pipeline.snapshot import json_values

# The record paths quality_control reads (its DocDB projection), 1.x fallbacks included.
QUALITY_CONTROL_FIELDS = (
    "_id", "name", "subject.subject_id", "quality_control",
    "acquisition.acquisition_start_time", "session.session_start_time", "acquisition.session_start_time",
)
# The `NormalizedRecord` attributes it reads (its record snapshot columns).
QUALITY_CONTROL_ATTRIBUTES = (
    "id", "name", "subject_id", "acquisition_start_time",
    "qc_metrics.name", "qc_metrics.modality", "qc_metrics.stage", "qc_metrics.value", "qc_metrics.status",
    "qc_metrics.object_type",
)


def metric_value(value) -> str | None:
    if isinstance(value, dict):
        return "{dict}"
    if value is None or isinstance(value, str):
        return value
    return str(value)


CURATION_METRIC = "Curation metric"  # an object type left out of quality_control


def build_quality_control(rows: pa.Table, subject_ids: Iterable[str]) -> dict[str, pa.Table | None]:
    """subject id -> its metrics table, for each requested subject, from record snapshot rows
    (`id`, `name`, `subject_id`, `acquisition_start_time`, `qc_metrics`) in key order.

    A subject's rows are its records' metrics (curation metrics left out), records ordered by name
    then id (a missing one counting as ""), metrics in their record's order. A subject with records
    but no metrics gets a zero-row table; a subject with no record at all gets None (its partition
    is to be removed). Arrow compute throughout, but the metric values: JSON text made Python
    values, then `metric_value`.
    """
    wanted = sorted(set(subject_ids))
    rows = rows.filter(pc.is_in(rows.column("subject_id"), pa.array(wanted, STRING)))
    order = pa.table({
        "subject": rows.column("subject_id"),
        "name": pc.fill_null(rows.column("name"), ""),
        "id": pc.fill_null(rows.column("id"), ""),
    })
    rows = rows.take(pc.sort_indices(order, [("subject", "ascending"), ("name", "ascending"), ("id", "ascending")]))
    metrics = rows.column("qc_metrics").combine_chunks()
    flat, record_of = pc.list_flatten(metrics), pc.list_parent_indices(metrics)
    kept = pc.invert(pc.fill_null(pc.equal(flat.field("object_type"), CURATION_METRIC), False))
    flat, record_of = flat.filter(kept), record_of.filter(kept)
    timestamps = pa.array([parse_utc(t) for t in rows.column("acquisition_start_time").to_pylist()], UTC_TIMESTAMP)
    table = pa.Table.from_arrays(
        [
            flat.field("name"),
            flat.field("modality"),
            flat.field("stage"),
            pa.array([metric_value(v) for v in json_values(flat.field("value"))], STRING),
            flat.field("status"),
            rows.column("name").take(record_of),
            rows.column("subject_id").take(record_of),
            timestamps.take(record_of),
        ],
        schema=QUALITY_CONTROL.schema,
    )
    tables: dict[str, pa.Table | None] = dict.fromkeys(wanted)
    for subject_id in rows.column("subject_id").unique().to_pylist():
        tables[subject_id] = QUALITY_CONTROL.empty()
    if table.num_rows:
        runs = pc.run_end_encode(table.column("subject_id").combine_chunks())
        start = 0
        for subject_id, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist()):
            tables[subject_id] = table.slice(start, end - start).combine_chunks()
            start = end
    return tables
