"""assets_smartspim: raw SmartSPIM assets, their latest stitched asset, channels and viewer links."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.schema.assets_smartspim import ASSETS_SMARTSPIM
from biodata_cache_pipeline.sources.open_data import OpenDataStore


# The record paths assets_smartspim reads (its DocDB projection), 1.x fallbacks included.
ASSETS_SMARTSPIM_FIELDS = (
    "name", "location", "data_description.data_level", "data_description.modalities", "data_description.modality",
    "data_description.institution", "acquisition.instrument_id", "session.rig_id", "rig.rig_id",
    "processing.data_processes.end_date_time", "processing.processing_pipeline.data_processes.end_date_time",
)
# The `NormalizedRecord` attributes it reads (its record snapshot columns).
ASSETS_SMARTSPIM_ATTRIBUTES = (
    "name", "location", "data_level", "modalities", "institution", "instrument_id", "process_times",
)

NEUROGLANCER = "https://allen.neuroglass.io/new#!"


def is_raw_smartspim(asset: dict) -> bool:
    """Whether a snapshot row (as a dict) is a raw SmartSPIM asset."""
    return (
        asset["data_level"] == "raw"
        and any("SPIM" in m for m in asset["modalities"] or [])
        and "exa" not in (asset["instrument_id"] or "").lower()
    )


def latest_stitched(source_data: pa.Table) -> dict[str, str]:
    """raw name -> newest stitched derived name (newest processing_time, ties: larger name)."""
    best: dict[str, tuple[str, str]] = {}
    for row in source_data.select(["name", "source_data", "processing_time"]).to_pylist():
        if "stitched" in row["name"].lower():
            candidate = (row["processing_time"], row["name"])
            if candidate > best.get(row["source_data"], ("", "")):
                best[row["source_data"]] = candidate
    return {raw: name for raw, (_, name) in best.items()}


def raw_link(store: OpenDataStore, raw_location: str | None) -> str | None:
    config = store.read_json(raw_location, "SPIM", "derivatives", "neuroglancer_config.json")
    link = config.get("ng_link") if isinstance(config, dict) else None
    return link if isinstance(link, str) else None


def _candidates(rows: pa.Table, stitched_names: set[str]) -> pa.Array:
    """A mask of the rows the table may use: raw with a SPIM modality, or a stitched asset's (the
    others are never made Python rows, which is most of the build's time)."""
    modalities = rows.column("modalities").combine_chunks()
    spim = pc.match_substring(pc.list_flatten(modalities), "SPIM")
    has_spim = pc.is_in(
        pa.array(range(rows.num_rows), pa.int64()),
        value_set=pc.list_parent_indices(modalities).filter(spim).cast(pa.int64()),
    )
    raw_spim = pc.and_(pc.equal(rows.column("data_level"), "raw"), has_spim)
    stitched = pc.is_in(rows.column("name"), value_set=pa.array(sorted(stitched_names), pa.string()))
    return pc.fill_null(pc.or_(raw_spim, stitched), False)


def build_assets_smartspim(rows: pa.Table, source_data: pa.Table, store: OpenDataStore) -> pa.Table:
    """The table from record snapshot rows (`ASSETS_SMARTSPIM_ATTRIBUTES`), the source_data table
    and the open-data files."""
    stitched_by_raw = latest_stitched(source_data)
    stitched_names = set(stitched_by_raw.values())
    raw_assets: list[dict] = []
    stitched: dict[str, dict] = {}
    for asset in rows.filter(_candidates(rows, stitched_names)).select(list(ASSETS_SMARTSPIM_ATTRIBUTES)).to_pylist():
        if asset["name"] is None:
            continue
        if is_raw_smartspim(asset):
            raw_assets.append(asset)
        elif asset["name"] in stitched_names:
            stitched[asset["name"]] = asset

    rows = []
    for raw in raw_assets:
        row = dict.fromkeys(ASSETS_SMARTSPIM.column_names)
        row.update(name=raw["name"], raw_name=raw["name"], processed=False, raw_link=raw_link(store, raw["location"]))
        processed = stitched.get(stitched_by_raw.get(raw["name"]))
        if processed is None:
            rows.append(row)
            continue
        base = NEUROGLANCER + (processed["location"] or "")
        last_process = (processed["process_times"] or [None])[-1]  # None: no processes, or an unreadable one
        row.update(
            name=processed["name"],
            processed=True,
            institution=processed["institution"],
            processing_end_time=last_process["end"] if last_process else None,
            stitched_link=f"{base}/neuroglancer_config.json",
            alignment_link=f"{base}/image_atlas_alignment/neuroglancer_config.json",
        )
        channels = store.list_dirs(processed["location"], "image_cell_segmentation")
        if not channels:
            rows.append(row)
        for channel in channels:
            rows.append(
                {
                    **row,
                    "channel": channel,
                    "segmentation_link": f"{base}/image_cell_segmentation/{channel}/visualization/neuroglancer_config.json",
                    "quantification_link": f"{base}/image_cell_quantification/{channel}/visualization/neuroglancer_config.json",
                }
            )
    rows.sort(key=lambda row: (row["raw_name"], row["channel"] is not None, row["channel"] or ""))
    return ASSETS_SMARTSPIM.from_rows(rows)
