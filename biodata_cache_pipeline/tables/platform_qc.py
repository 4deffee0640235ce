"""platform_qc (per platform): the QC statuses per tag of each platform's assets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_pipeline.snapshot import json_value, status_maps

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


def platform_assets(asset_basics: pa.Table, platforms: Iterable[str]) -> set[str]:
    """The names of the assets (asset_basics rows) of any of `platforms`: the snapshot rows platform_qc
    reads. An asset without a name has no platform_qc rows."""
    specs = [PLATFORMS[platform] for platform in platforms]

    @cache  # few distinct (modalities, acquisition type): each is worked out once
    def matched(modalities: tuple[str, ...], acquisition_type: str | None) -> bool:
        return any(platform_matches(spec, list(modalities), acquisition_type) for spec in specs)

    columns = [asset_basics.column(name).to_pylist() for name in ("name", "modalities", "acquisition_type")]
    return {
        name for name, modalities, kind in zip(*columns) if name is not None and matched(tuple(modalities or ()), kind)
    }


@dataclass(frozen=True)
class AssetQc:
    """What platform_qc needs of one asset's QC: its status map and the modalities of each status key."""

    status: Mapping[str, str]
    tag_modalities: Mapping[str, set[str]]


def _tag_keys(tags) -> list[str]:
    """The status keys a metric's tags give: `key:value` for each pair of a dict (other tags give none)."""
    return [f"{key}:{value}" for key, value in tags.items()] if isinstance(tags, dict) else []


def qc_by_name(rows: pa.Table) -> dict[str, AssetQc]:
    """Asset name -> `AssetQc`, for the snapshot rows (`name`, `has_qc`, `qc_metrics` with `modality`
    and `tags`, `qc_status`) that have a name and a QC object; a later row of a name replaces an
    earlier one (platform_qc rows are keyed by asset name: a record without one gives none).

    A status key's modalities are those of the metrics carrying it: a metric's modality is a key of
    its own, and so is each `key:value` pair of its tags (metrics without a modality count for
    none). Each distinct (row, modality, tags) is read once, and each distinct tags text parsed once.
    """
    rows = rows.filter(pc.and_(pc.fill_null(rows.column("has_qc"), False), pc.is_valid(rows.column("name"))))
    metrics = rows.column("qc_metrics").combine_chunks()
    flat = pc.list_flatten(metrics)
    carried = pa.table(
        {"row": pc.list_parent_indices(metrics), "modality": flat.field("modality"), "tags": flat.field("tags")}
    )
    carried = carried.filter(pc.is_valid(carried.column("modality")))
    carried = carried.group_by(["row", "modality", "tags"]).aggregate([])
    modalities: list[dict[str, set[str]]] = [{} for _ in range(rows.num_rows)]
    tag_keys: dict[str | None, list[str]] = {}
    for row, modality, tags in zip(*(carried.column(name).to_pylist() for name in ("row", "modality", "tags"))):
        if tags not in tag_keys:
            tag_keys[tags] = _tag_keys(json_value(tags))
        for key in (modality, *tag_keys[tags]):
            modalities[row].setdefault(key, set()).add(modality)
    status = status_maps(rows.column("qc_status").combine_chunks())
    return {
        name: AssetQc(status=status[row], tag_modalities=modalities[row])
        for row, name in enumerate(rows.column("name").to_pylist())
    }


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
