"""quality_control (per subject) and platform_qc (per platform): QC metrics and statuses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_pipeline.records import NormalizedRecord, QcMetric, parse_utc
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


def quality_control_rows(record: NormalizedRecord) -> list[dict]:
    timestamp = parse_utc(record.acquisition_start_time)
    return [
        {
            "name": metric.name,
            "modality": metric.modality,
            "stage": metric.stage,
            "value": metric_value(metric.value),
            "status": metric.status,
            "asset_name": record.name,
            "subject_id": record.subject_id,
            "timestamp": timestamp,
        }
        for metric in record.qc_metrics
        if metric.object_type != "Curation metric"
    ]


def build_quality_control(
    records: Iterable[NormalizedRecord], subject_ids: Iterable[str]
) -> dict[str, pa.Table | None]:
    """subject id -> its metrics table, for each requested subject.

    A subject with records but no metrics gets a zero-row table; a subject with no record at all
    gets None (its partition is to be removed).
    """
    wanted = set(subject_ids)
    rows_by_subject: dict[str, list[tuple]] = {}
    for record in records:
        if record.subject_id in wanted:
            rows = rows_by_subject.setdefault(record.subject_id, [])
            rows.append((record.name or "", record.id or "", quality_control_rows(record)))
    tables: dict[str, pa.Table | None] = {}
    for subject_id in sorted(wanted):
        if subject_id not in rows_by_subject:
            tables[subject_id] = None
            continue
        ordered = sorted(rows_by_subject[subject_id], key=lambda item: (item[0], item[1]))
        tables[subject_id] = QUALITY_CONTROL.from_rows([row for _, _, rows in ordered for row in rows])
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
