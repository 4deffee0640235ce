"""quality_control (per subject) and platform_qc (per platform): QC metrics and statuses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_pipeline.records import NormalizedRecord, QcMetric, parse_utc
from biodata_cache_pipeline.snapshot import json_values
from biodata_cache_pipeline.tables.declaration import STRING, STRING_LIST, UTC_TIMESTAMP, Column, TableSpec

QUALITY_CONTROL = TableSpec(
    name="quality_control",
    description="One row per QC metric of every record, partitioned by subject.",
    type="asset",
    folder="qc",
    partition_key="subject_id",
    columns=(
        Column("name", STRING, "Metric name."),
        Column("modality", STRING, "Modality abbreviation of the metric."),
        Column("stage", STRING, "QC stage, as stored (e.g. Raw data, Processing)."),
        Column("value", STRING, "Metric value as text; objects become the literal '{dict}'."),
        Column(
            "status",
            STRING,
            "Latest status from the status history: Pass, Pending or Fail.",
            previous_names=("status_history",),
        ),
        Column("asset_name", STRING, "Name of the record the metric belongs to."),
        Column("subject_id", STRING, "Subject id (the partition key)."),
        Column("timestamp", UTC_TIMESTAMP, "Acquisition start time in UTC."),
    ),
)

PLATFORM_QC = TableSpec(
    name="platform_qc",
    description="QC statuses per tag for the assets of each platform, partitioned by platform.",
    type="platform",
    folder="platform_qc",
    partition_key="platform",
    static_partitions=("spim", "fib", "vr", "dynamic_foraging", "slap2"),
    columns=(
        Column("asset_name", STRING, "Asset name."),
        Column("tag", STRING, "Key of quality_control.status: a 'key:value' tag or a modality."),
        Column("status", STRING, "Status of that key: Pass, Pending or Fail."),
        Column("timestamp", STRING, "Acquisition start time, raw string."),
        Column("instrument_id_normalized", STRING, "Normalised instrument id (from asset_basics)."),
        Column("experimenters_normalized", STRING_LIST, "Normalised experimenters (from asset_basics)."),
    ),
)

# The record paths each table reads (its DocDB projection), 1.x fallbacks included.
QUALITY_CONTROL_FIELDS = (
    "_id", "name", "subject.subject_id", "quality_control",
    "acquisition.acquisition_start_time", "session.session_start_time", "acquisition.session_start_time",
)
PLATFORM_QC_FIELDS = ("name", "quality_control")
# The `NormalizedRecord` attributes each reads (its record snapshot columns).
QUALITY_CONTROL_ATTRIBUTES = (
    "id", "name", "subject_id", "acquisition_start_time",
    "qc_metrics.name", "qc_metrics.modality", "qc_metrics.stage", "qc_metrics.value", "qc_metrics.status",
    "qc_metrics.object_type",
)
PLATFORM_QC_ATTRIBUTES = ("name", "has_qc", "qc_metrics.modality", "qc_metrics.tags", "qc_status")
# The asset_basics columns platform_qc reads.
PLATFORM_QC_BASICS_COLUMNS = (
    "name", "modalities", "acquisition_type", "acquisition_start_time", "instrument_id_normalized",
    "experimenters_normalized",
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


@dataclass(frozen=True)
class Platform:
    modalities: frozenset[str]  # lower-case modality abbreviations that select an asset
    target_modalities: frozenset[str]  # modality abbreviations whose tags are kept
    acquisition_type: re.Pattern | None = None


PLATFORMS: dict[str, Platform] = {
    "spim": Platform(frozenset({"spim"}), frozenset({"SPIM"})),
    "fib": Platform(frozenset({"fib"}), frozenset({"fib"})),
    "vr": Platform(
        frozenset({"behavior", "behavior-videos"}),
        frozenset({"behavior", "behavior-videos"}),
        re.compile(r"^AindVrForaging$"),
    ),
    "dynamic_foraging": Platform(
        frozenset({"behavior", "behavior-videos"}),
        frozenset({"behavior", "behavior-videos"}),
        re.compile(r"^(Uncoupled|Coupled)( Without)? Baiting"),
    ),
    "slap2": Platform(frozenset({"slap2"}), frozenset({"slap2"})),
}
if tuple(PLATFORMS) != PLATFORM_QC.static_partitions:
    raise ValueError("platform_qc: PLATFORMS and the declared static partitions differ")


def platform_matches(platform: Platform, modalities: list[str], acquisition_type: str | None) -> bool:
    if not platform.modalities.intersection(m.lower() for m in modalities):
        return False
    if platform.acquisition_type is None:
        return True
    return acquisition_type is not None and platform.acquisition_type.search(acquisition_type) is not None


def tag_modalities(metrics: Iterable[QcMetric]) -> dict[str, set[str]]:
    """Status key -> the modalities of the metrics carrying it (`k:v` tag pairs and the modality)."""
    keys: dict[str, set[str]] = {}
    for metric in metrics:
        if metric.modality is None:
            continue
        keys.setdefault(metric.modality, set()).add(metric.modality)
        if isinstance(metric.tags, dict):
            for key, value in metric.tags.items():
                keys.setdefault(f"{key}:{value}", set()).add(metric.modality)
    return keys


@dataclass(frozen=True)
class AssetQc:
    """What platform_qc needs of one asset's QC: its status map and the modalities of each status key."""

    status: Mapping[str, str]
    tag_modalities: Mapping[str, set[str]]


def asset_qc(record: NormalizedRecord) -> AssetQc:
    return AssetQc(status=dict(record.qc_status), tag_modalities=tag_modalities(record.qc_metrics))


def build_platform_qc(asset_basics: pa.Table, qc_by_name: Mapping[str, AssetQc], platform: str) -> pa.Table:
    """The kept (tag, status) pairs of the platform's assets that have a QC object."""
    spec = PLATFORMS[platform]
    rows = []
    # Only the assets with a QC object can give rows: filter in Arrow before making Python rows.
    with_qc = pc.is_in(asset_basics.column("name"), value_set=pa.array(list(qc_by_name), pa.string()), skip_nulls=False)
    basics = asset_basics.filter(with_qc).select(list(PLATFORM_QC_BASICS_COLUMNS)).to_pylist()
    for asset in basics:
        qc = qc_by_name.get(asset["name"])
        if qc is None or not platform_matches(spec, asset["modalities"] or [], asset["acquisition_type"]):
            continue
        keys = qc.tag_modalities
        for tag, status in qc.status.items():
            if tag in spec.target_modalities or keys.get(tag, set()) & spec.target_modalities:
                rows.append(
                    {
                        "asset_name": asset["name"],
                        "tag": tag,
                        "status": status,
                        "timestamp": asset["acquisition_start_time"],
                        "instrument_id_normalized": asset["instrument_id_normalized"],
                        "experimenters_normalized": asset["experimenters_normalized"],
                    }
                )
    rows.sort(key=lambda row: (row["asset_name"], row["tag"]))
    return PLATFORM_QC.from_rows(rows)
