"""platform_qc: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from fixture_records import needs_fixture_records
from snapshot_rows import snapshot_rows
from table_records import all_raw, assert_declared, column, load_fixture, metric, mods, norm, rows, v2

from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_pipeline.records import normalize_record
from biodata_cache_pipeline.tables.asset_basics import build_asset_basics
from biodata_cache_pipeline.tables.platform_qc import build_platform_qc, qc_by_name


def _pqc_records(acquisition_type="AindVrForaging", modalities=("behavior", "behavior-videos", "ecephys")):
    metrics = [
        metric("a", modality="behavior", tags={"Camera": "Side", "Shared": "x"}),
        metric("b", modality="ecephys", tags={"Probe": "A", "Shared": "x"}),
        metric("c", modality="ecephys", tags={"Only": "ephys"}),
        metric("d", modality="behavior-videos", tags=["Camera:Front"]),
        metric("e", modality="ecephys", tags={"Raw data": "x"}),
    ]
    status = {
        "Camera:Side": "Pass",
        "Shared:x": "Fail",
        "Probe:A": "Fail",
        "Only:ephys": "Pass",
        "Camera:Front": "Pending",
        "behavior": "Pass",
        "behavior-videos": "Pending",
        "ecephys": "Fail",
        "Raw data": "Pass",
        "Processing": "Fail",
        "Unknown:tag": "Pass",
    }
    return norm(
        v2("asset_b", {"data_description.modalities": mods(*modalities),
                       "acquisition.acquisition_type": acquisition_type,
                       "acquisition.acquisition_start_time": "2025-01-01T10:00:00-08:00",
                       "acquisition.instrument_id": "446_8A_20250409",
                       "acquisition.experimenters": ["jane.doe"],
                       "quality_control.metrics": metrics,
                       "quality_control.status": status}),
        # `behavior` is kept because the key itself is a target modality (no behavior metric)
        v2("asset_a", {"data_description.modalities": mods(*modalities),
                       "acquisition.acquisition_type": acquisition_type,
                       "quality_control.metrics": [metric("m", modality="ecephys")],
                       "quality_control.status": {"behavior": "Fail", "ecephys": "Pass"}}),
        v2("asset_no_qc", {"data_description.modalities": mods(*modalities),
                           "acquisition.acquisition_type": acquisition_type}),
    )


def _platform_qc(records, platform):
    basics = build_asset_basics(snapshot_rows(records))
    qc = qc_by_name(snapshot_rows(records))
    return build_platform_qc(basics, qc, platform)


def test_platform_qc_tag_rule():
    """Kept: tags whose metric modalities meet the targets, and target-modality keys. Stage keys
    (`Raw data`, `Processing`) drop out; list-style tags (`Camera:Front`) never match; a tag also
    carried by a non-target metric (`Shared:x`) is kept because its set meets the targets."""
    table = _platform_qc(_pqc_records(), "vr")
    assert_declared(table, PLATFORM_QC)
    assert [(r["asset_name"], r["tag"], r["status"]) for r in rows(table)] == [
        ("asset_a", "behavior", "Fail"),
        ("asset_b", "Camera:Side", "Pass"),
        ("asset_b", "Shared:x", "Fail"),
        ("asset_b", "behavior", "Pass"),
        ("asset_b", "behavior-videos", "Pending"),
    ]
    b = rows(table)[1]
    assert b["timestamp"] == "2025-01-01T10:00:00-08:00"  # raw string
    assert b["instrument_id_normalized"] == "8A"
    assert b["experimenters_normalized"] == ["Jane Doe"]


def test_platform_qc_acquisition_type_filter():
    vr_records = _pqc_records("AindVrForaging")
    assert _platform_qc(vr_records, "vr").num_rows == 5
    assert _platform_qc(vr_records, "dynamic_foraging").num_rows == 0
    for acquisition_type in ("Coupled Baiting", "Uncoupled Baiting", "Uncoupled Without Baiting",
                             "Coupled Without Baiting", "Coupled Baiting 2"):
        records = _pqc_records(acquisition_type)
        assert _platform_qc(records, "dynamic_foraging").num_rows == 5, acquisition_type
        assert _platform_qc(records, "vr").num_rows == 0, acquisition_type
    for acquisition_type in ("Not Coupled Baiting", "coupled baiting", "AindVrForaging2", None):
        records = _pqc_records(acquisition_type)
        assert _platform_qc(records, "dynamic_foraging").num_rows == 0, acquisition_type
        assert _platform_qc(records, "vr").num_rows == 0, acquisition_type


def test_platform_qc_modalities_exact_lower_case_equality():
    assert _platform_qc(_pqc_records(modalities=("Behavior",)), "vr").num_rows == 5
    assert _platform_qc(_pqc_records(modalities=("behavior-videos",)), "vr").num_rows == 5
    assert _platform_qc(_pqc_records(modalities=("behaviour", "behavior-video")), "vr").num_rows == 0
    # other platforms select on their own modality
    assert _platform_qc(_pqc_records(), "fib").num_rows == 0


def test_platform_qc_spim_targets_and_empty_partitions():
    records = norm(
        v2("spim_asset", {"data_description.modalities": mods("SPIM"),
                          "quality_control.metrics": [metric("m", modality="SPIM", tags={"Channel": "488"})],
                          "quality_control.status": {"SPIM": "Pass", "Channel:488": "Fail", "Processing": "Pass"}}),
        v2("exaspim_asset", {"data_description.modalities": mods("exaSPIM"),
                             "quality_control.metrics": [metric("m", modality="exaSPIM")],
                             "quality_control.status": {"exaSPIM": "Pass"}}),
    )
    table = _platform_qc(records, "spim")
    assert [(r["asset_name"], r["tag"], r["status"]) for r in rows(table)] == [
        ("spim_asset", "Channel:488", "Fail"),
        ("spim_asset", "SPIM", "Pass"),
    ]
    for platform in ("fib", "vr", "dynamic_foraging", "slap2"):
        empty = _platform_qc(records, platform)
        assert empty.num_rows == 0
        assert_declared(empty, PLATFORM_QC)


def _expected_platform_tags(raw: dict, targets: set[str]) -> dict[str, str]:
    keys: dict[str, set[str]] = {}
    for m in raw["quality_control"]["metrics"]:
        modality = m["modality"]["abbreviation"]
        keys.setdefault(modality, set()).add(modality)
        for k, v in (m.get("tags") or {}).items():
            keys.setdefault(f"{k}:{v}", set()).add(modality)
    return {
        key: status
        for key, status in raw["quality_control"]["status"].items()
        if key in targets or keys.get(key, set()) & targets
    }


@needs_fixture_records
def test_platform_qc_fixtures():
    raws = all_raw()
    records = [normalize_record(r) for r in raws]
    fiber_raw, derived_raw = load_fixture("v2/fiber_example3.json"), load_fixture("v2/v2_derived.json")

    fib = _platform_qc(records, "fib")
    assert_declared(fib, PLATFORM_QC)
    expected = _expected_platform_tags(fiber_raw, {"fib"})
    assert "fib" in expected and "Processing" not in expected and "Raw data" not in expected
    assert [(r["asset_name"], r["tag"], r["status"]) for r in rows(fib)] == [
        (fiber_raw["name"], tag, expected[tag]) for tag in sorted(expected)
    ]
    assert set(column(fib, "timestamp")) == {"2026-04-16T19:38:24.983132Z"}
    assert set(column(fib, "instrument_id_normalized")) == {"13A"}
    assert column(fib, "experimenters_normalized")[0] == ["Olivia Unokesan"]

    vr = _platform_qc(records, "vr")
    expected = _expected_platform_tags(derived_raw, {"behavior", "behavior-videos"})
    assert "behavior" in expected and "Processing" not in expected
    assert [(r["asset_name"], r["tag"], r["status"]) for r in rows(vr)] == [
        (derived_raw["name"], tag, expected[tag]) for tag in sorted(expected)
    ]
    assert set(column(vr, "experimenters_normalized")[0]) == {"Huy Nguyen"}

    # 1.x QC has no status map: nothing to keep, but the partitions exist (zero rows)
    for platform in ("spim", "dynamic_foraging", "slap2"):
        table = _platform_qc(records, platform)
        assert table.num_rows == 0
        assert_declared(table, PLATFORM_QC)
