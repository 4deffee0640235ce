"""assets_smartspim: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from fixture_records import needs_fixture_records
from snapshot_rows import snapshot_rows
from table_records import NG, all_records, assert_declared, mods, norm, rows, v2, write_json

from biodata_cache_client.schema.assets_smartspim import ASSETS_SMARTSPIM
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.tables.assets_smartspim import build_assets_smartspim
from biodata_cache_pipeline.tables.source_data import build_source_data


def _spim_raw(name, instrument="440_SmartSPIM1_20240325", modality="SPIM", level="raw"):
    return v2(name, {"data_description.modalities": mods(modality), "data_description.data_level": level,
                     "acquisition.instrument_id": instrument})


def _spim_derived(name, source, end="2024-02-02T00:00:00Z", institution="AIND"):
    return v2(name, {"data_description.modalities": mods("SPIM"), "data_description.data_level": "derived",
                     "data_description.source_data": [source],
                     "data_description.institution": {"abbreviation": institution, "name": "x"},
                     "processing.data_processes": [
                         {"start_date_time": "2024-02-01T00:00:00Z", "end_date_time": "2024-02-01T05:00:00Z"},
                         {"start_date_time": "2024-02-01T06:00:00Z", "end_date_time": end},
                     ]})


R1 = "SmartSPIM_100001_2024-01-01_10-00-00"
R2 = "SmartSPIM_100002_2024-01-01_10-00-00"
R3 = "SmartSPIM_100003_2024-01-01_10-00-00"
R4 = "SmartSPIM_100004_2024-01-01_10-00-00"
S1_OLD = f"{R1}_stitched_2024-01-05_00-00-00"
S1_NEW = f"{R1}_stitched_2024-02-01_00-00-00"
P1 = f"{R1}_processed_2024-03-01_00-00-00"
S2_A = f"{R2}_stitched_a_2024-01-05_00-00-00"
S2_B = f"{R2}_stitched_b_2024-01-05_00-00-00"
S3 = f"{R3}_STITCHED_2024-01-05_00-00-00"


def _smartspim_corpus(tmp_path: Path):
    records = norm(
        _spim_raw(R1),
        _spim_raw(R2, modality="SmartSPIM"),
        _spim_raw(R3),
        _spim_raw(R4),
        _spim_raw("exaSPIM_100005_2024-01-01_10-00-00", instrument="exaSPIM1"),
        _spim_raw("SmartSPIM_100006_2024-01-01_10-00-00", instrument="440_EXASPIM_20240101"),
        _spim_raw("SmartSPIM_100009_2024-01-01_10-00-00", instrument="440_Exa1_20240101"),
        _spim_raw("ecephys_100007_2024-01-01_10-00-00", modality="ecephys"),
        _spim_raw("SmartSPIM_100008_2024-01-01_10-00-00", level="derived"),
        _spim_derived(S1_OLD, R1, end="2024-01-06T00:00:00Z"),
        _spim_derived(S1_NEW, R1, end="2024-02-02T12:00:00Z"),
        _spim_derived(P1, R1),
        _spim_derived(S2_A, R2),
        _spim_derived(S2_B, R2, institution="AIBS"),
        _spim_derived(S3, R3),
    )
    root = tmp_path / "open-data"
    for channel in ("Ex_639_Em_667", "Ex_488_Em_525"):
        (root / S1_NEW / "image_cell_segmentation" / channel).mkdir(parents=True)
    write_json(root / S1_NEW / "image_cell_segmentation" / "not_a_channel.json", {})
    (root / S1_OLD / "image_cell_segmentation" / "Ex_561_Em_593").mkdir(parents=True)
    (root / S2_B).mkdir(parents=True)
    write_json(root / R1 / "SPIM" / "derivatives" / "neuroglancer_config.json", {"ng_link": "https://ng/r1"})
    write_json(root / R2 / "SPIM" / "derivatives" / "neuroglancer_config.json", "{not json")
    write_json(root / R3 / "SPIM" / "derivatives" / "neuroglancer_config.json", {"other": 1})
    write_json(root / R4 / "SPIM" / "derivatives" / "neuroglancer_config.json", {"ng_link": "https://ng/r4"})
    return records, OpenDataStore(str(root))


def _links(location: str, channel: str | None) -> dict:
    base = NG + location
    return {
        "stitched_link": f"{base}/neuroglancer_config.json",
        "segmentation_link": None if channel is None
        else f"{base}/image_cell_segmentation/{channel}/visualization/neuroglancer_config.json",
        "quantification_link": None if channel is None
        else f"{base}/image_cell_quantification/{channel}/visualization/neuroglancer_config.json",
        "alignment_link": f"{base}/image_atlas_alignment/neuroglancer_config.json",
    }


def test_assets_smartspim(tmp_path):
    """Raw SmartSPIM assets, latest stitched asset (newest processing_time, ties: larger name,
    `stitched` matched case-insensitively), channels sorted, viewer links exactly as specified."""
    records, store = _smartspim_corpus(tmp_path)
    table = build_assets_smartspim(snapshot_rows(records), build_source_data(records), store)
    assert_declared(table, ASSETS_SMARTSPIM)
    loc = "s3://aind-open-data/"
    expected = [
        {"name": S1_NEW, "raw_name": R1, "processed": True, "institution": "AIND",
         "processing_end_time": "2024-02-02T12:00:00Z", "raw_link": "https://ng/r1",
         "channel": "Ex_488_Em_525", **_links(loc + S1_NEW, "Ex_488_Em_525")},
        {"name": S1_NEW, "raw_name": R1, "processed": True, "institution": "AIND",
         "processing_end_time": "2024-02-02T12:00:00Z", "raw_link": "https://ng/r1",
         "channel": "Ex_639_Em_667", **_links(loc + S1_NEW, "Ex_639_Em_667")},
        # no channel folder: one row, channel and per-channel links null; unreadable config: null
        {"name": S2_B, "raw_name": R2, "processed": True, "institution": "AIBS",
         "processing_end_time": "2024-02-02T00:00:00Z", "raw_link": None,
         "channel": None, **_links(loc + S2_B, None)},
        {"name": S3, "raw_name": R3, "processed": True, "institution": "AIND",
         "processing_end_time": "2024-02-02T00:00:00Z", "raw_link": None,
         "channel": None, **_links(loc + S3, None)},
        # unprocessed: only raw_link
        {"name": R4, "raw_name": R4, "processed": False, "institution": None, "processing_end_time": None,
         "stitched_link": None, "raw_link": "https://ng/r4", "channel": None, "segmentation_link": None,
         "quantification_link": None, "alignment_link": None},
    ]
    assert rows(table) == [{c: row[c] for c in ASSETS_SMARTSPIM.column_names} for row in expected]


def test_a_stitched_asset_whose_last_process_entry_is_null_has_no_processing_end_time(tmp_path):
    """A snapshot file written by hand (or by another tool) may hold a null process entry: the
    stitched asset keeps its row, without an end time."""
    records, store = _smartspim_corpus(tmp_path)
    snapshot = snapshot_rows(records)
    names = snapshot.column("name").to_pylist()
    times = snapshot.column("process_times").to_pylist()
    times[names.index(S3)] = [{"start": "2024-02-01T00:00:00Z", "end": "2024-02-02T00:00:00Z"}, None]
    index = snapshot.column_names.index("process_times")
    snapshot = snapshot.set_column(index, "process_times", pa.array(times, snapshot.schema.field(index).type))
    table = rows(build_assets_smartspim(snapshot, build_source_data(records), store))
    assert [(r["name"], r["processing_end_time"]) for r in table if r["raw_name"] == R3] == [(S3, None)]


def test_assets_smartspim_link_strings_literal(tmp_path):
    records, store = _smartspim_corpus(tmp_path)
    first = rows(build_assets_smartspim(snapshot_rows(records), build_source_data(records), store))[0]
    assert first["stitched_link"] == (
        "https://allen.neuroglass.io/new#!s3://aind-open-data/"
        "SmartSPIM_100001_2024-01-01_10-00-00_stitched_2024-02-01_00-00-00/neuroglancer_config.json"
    )
    assert first["segmentation_link"] == (
        "https://allen.neuroglass.io/new#!s3://aind-open-data/"
        "SmartSPIM_100001_2024-01-01_10-00-00_stitched_2024-02-01_00-00-00"
        "/image_cell_segmentation/Ex_488_Em_525/visualization/neuroglancer_config.json"
    )


def test_assets_smartspim_no_records(tmp_path):
    table = build_assets_smartspim(snapshot_rows([]), build_source_data([]), OpenDataStore(str(tmp_path)))
    assert_declared(table, ASSETS_SMARTSPIM)
    assert table.num_rows == 0


@needs_fixture_records
def test_assets_smartspim_fixtures(tmp_path):
    """Raw SPIM fixtures: the 0.2.7 records (data_level `raw data` read as raw, and the `..._stitched_...`
    record whose data_level says `raw`). exaSPIM (instrument `exaspim-01`) is excluded. Their stitched
    assets are not among the fixtures: unprocessed rows."""
    root = tmp_path / "open-data"
    write_json(root / "SmartSPIM_658355_2023-02-28_15-17-45" / "SPIM" / "derivatives" / "neuroglancer_config.json",
                {"ng_link": "https://neuroglancer/658355"})
    records = all_records()
    table = build_assets_smartspim(snapshot_rows(records), build_source_data(records), OpenDataStore(str(root)))
    assert [(r["raw_name"], r["name"], r["processed"], r["raw_link"]) for r in rows(table)] == [
        ("SmartSPIM_654092_2023-01-26_10-45-12_stitched_2023-02-02_21-58-54",
         "SmartSPIM_654092_2023-01-26_10-45-12_stitched_2023-02-02_21-58-54", False, None),
        ("SmartSPIM_658355_2023-02-28_15-17-45", "SmartSPIM_658355_2023-02-28_15-17-45", False,
         "https://neuroglancer/658355"),
    ]
