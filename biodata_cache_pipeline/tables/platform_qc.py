"""platform_qc (per platform): the QC statuses per tag of each platform's assets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_pipeline.records import NormalizedRecord, QcMetric

# The record paths platform_qc reads (its DocDB projection).
PLATFORM_QC_FIELDS = ("name", "quality_control")
# The `NormalizedRecord` attributes it reads (its record snapshot columns).
PLATFORM_QC_ATTRIBUTES = ("name", "has_qc", "qc_metrics.modality", "qc_metrics.tags", "qc_status")
# The asset_basics columns platform_qc reads.
PLATFORM_QC_BASICS_COLUMNS = (
    "name", "modalities", "acquisition_type", "acquisition_start_time", "instrument_id_normalized",
    "experimenters_normalized",
)


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
