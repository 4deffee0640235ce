"""source_data: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from fixture_records import needs_fixture_records
from table_records import all_records, assert_declared, column, load_fixture, norm, rows, v2

from biodata_cache_client.schema.source_data import SOURCE_DATA
from biodata_cache_pipeline.tables.source_data import build_source_data


@needs_fixture_records
def test_source_data_fixtures():
    """Derived fixture records (data_level `derived`; the 0.2.7 `..._stitched_...` record says `raw`)."""
    table = build_source_data(all_records())
    assert_declared(table, SOURCE_DATA)
    fiber = "Fiberphotometry Schema 2.0 Processing Pipeline"
    assert rows(table) == [
        {"name": "808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55",
         "source_data": "808054_2026-04-16_19-38-24", "pipeline_name": fiber,
         "processing_time": "2026-04-17_15-47-55"},
        {"name": "828418_2026-02-13_18-31-13_processed_2026-02-14_12-44-45",
         "source_data": "828418_2026-02-13_18-31-13", "pipeline_name": "",
         "processing_time": "2026-02-14_12-44-45"},
        {"name": "HCR_813864_2025-09-04_13-30-00_processed_2025-09-12_23-06-45",
         "source_data": "HCR_813864_2025-09-04_13-30-00", "pipeline_name": "",
         "processing_time": "2025-09-12_23-06-45"},
        {"name": "SmartSPIM_784354_2025-04-16_21-39-58_stitched_2025-05-21_16-45-59",
         "source_data": "SmartSPIM_784354_2025-04-16_21-39-58", "pipeline_name": "",
         "processing_time": "2025-05-21_16-45-59"},
        {"name": "behavior_775510_2025-04-13_15-30-30_processed_2025-04-14_04-09-06",
         "source_data": "behavior_775510_2025-04-13_15-30-30", "pipeline_name": "",
         "processing_time": "2025-04-14_04-09-06"},
        {"name": "ecephys_668755_2023-08-31_12-33-31_nwb_2026-05-01_13-19-39",
         "source_data": "", "pipeline_name": "", "processing_time": "2026-05-01_13-19-39"},
        {"name": "multiplane-ophys_755252_2024-12-17_08-56-37_processed_2025-09-05_14-21-47",
         "source_data": "multiplane-ophys_755252_2024-12-17_08-56-37", "pipeline_name": "",
         "processing_time": "2025-09-05_14-21-47"},
    ]


@needs_fixture_records
def test_source_data_v2_derived_points_at_v2_raw():
    raw, derived = load_fixture("v2/v2_raw.json"), load_fixture("v2/v2_derived.json")
    table = build_source_data(norm(raw, derived))
    assert rows(table) == [
        {"name": derived["name"], "source_data": raw["name"], "pipeline_name": "",
         "processing_time": derived["name"][-19:]}
    ]
    assert derived["name"].endswith("_processed_" + derived["name"][-19:])


def test_source_data_hand_built():
    records = norm(
        v2("d_2024-01-02_03-04-05", {"data_description.data_level": "derived",
                                     "data_description.source_data": ["z_raw", "a_raw"],
                                     "processing.pipelines": [{"name": "pipe"}, {"name": "other"}]}),
        v2("e_no_time", {"data_description.data_level": "derived", "data_description.source_data": []}),
        v2("c_raw_asset", {"data_description.data_level": "raw", "data_description.source_data": ["x"]}),
        v2("b_no_level", {"data_description.source_data": ["x"]}),
    )
    assert rows(build_source_data(records)) == [
        {"name": "d_2024-01-02_03-04-05", "source_data": "a_raw", "pipeline_name": "pipe",
         "processing_time": "2024-01-02_03-04-05"},
        {"name": "d_2024-01-02_03-04-05", "source_data": "z_raw", "pipeline_name": "pipe",
         "processing_time": "2024-01-02_03-04-05"},
        {"name": "e_no_time", "source_data": "", "pipeline_name": "", "processing_time": ""},
    ]


def test_source_data_processing_time_only_at_the_end():
    records = norm(
        v2("x_2024-01-02_03-04-05_suffix", {"data_description.data_level": "derived"}),
        v2("y_2024-01-02_03-04-05", {"data_description.data_level": "derived"}),
    )
    assert column(build_source_data(records), "processing_time") == ["", "2024-01-02_03-04-05"]
