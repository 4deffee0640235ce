"""quality_control: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fixture_records import needs_fixture_records
from snapshot_rows import snapshot_rows
from table_records import UTC, all_records, assert_declared, column, load_fixture, metric, norm, parquet_bytes, rows, v2

from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.tables.quality_control import build_quality_control


def _qc_records():
    b_metrics = [
        metric("dict value", value={"a": 1}, history=("Pending", "Pass")),
        metric("null value", value=None, history=()),
        metric("int value", value=3, history=("Fail",)),
        dict(metric("curation", value="skip me"), object_type="Curation metric"),
        metric("text value", modality="fib", value="text", stage="Raw data"),
        metric("bool value", value=True),
        metric("float value", value=1.5),
        metric("list value", value=[1, 2]),
        metric("raw modality", modality="ecephys", value=0),
    ]
    b_metrics[-1]["modality"] = "ecephys"  # not an object: the raw value
    del b_metrics[1]["status_history"]
    b_metrics[2]["status_history"] = []
    return norm(
        v2("b_asset", {"subject.subject_id": "S1", "acquisition.acquisition_start_time": "2025-04-13T15:30:30-07:00",
                       "quality_control.metrics": b_metrics}),
        v2("a_asset", {"subject.subject_id": "S1", "acquisition.acquisition_start_time": "garbage",
                       "quality_control.metrics": [metric("first", value="v")]}),
        v2("c_asset", {"subject.subject_id": "S1", "acquisition.acquisition_start_time": "2024-01-01T00:00:00"}),
        v2("no_metrics", {"subject.subject_id": "S2"}),
        v2("empty_metrics", {"subject.subject_id": "S4", "quality_control.metrics": []}),
        v2("other", {"subject.subject_id": "S9", "quality_control.metrics": [metric("m")]}),
    )


def test_quality_control_rows_values_status_order():
    """Reading: a metric without status_history, and one with an empty history, both get null."""
    tables = build_quality_control(snapshot_rows(_qc_records()), ["S1", "S2", "S3", "S4"])
    assert set(tables) == {"S1", "S2", "S3", "S4"}
    s1 = tables["S1"]
    assert_declared(s1, QUALITY_CONTROL)
    when = datetime(2025, 4, 13, 22, 30, 30, tzinfo=timezone.utc)
    expected = [
        ("first", "behavior", "Processing", "v", "Pass", "a_asset", "S1", None),
        ("dict value", "behavior", "Processing", "{dict}", "Pass", "b_asset", "S1", when),
        ("null value", "behavior", "Processing", None, None, "b_asset", "S1", when),
        ("int value", "behavior", "Processing", "3", None, "b_asset", "S1", when),
        ("text value", "fib", "Raw data", "text", "Pass", "b_asset", "S1", when),
        ("bool value", "behavior", "Processing", "True", "Pass", "b_asset", "S1", when),
        ("float value", "behavior", "Processing", "1.5", "Pass", "b_asset", "S1", when),
        ("list value", "behavior", "Processing", "[1, 2]", "Pass", "b_asset", "S1", when),
        ("raw modality", "ecephys", "Processing", "0", "Pass", "b_asset", "S1", when),
    ]
    got = [tuple(r.values()) for r in rows(s1)]
    assert got == expected


def test_quality_control_partitions():
    tables = build_quality_control(snapshot_rows(_qc_records()), ["S1", "S2", "S3", "S4"])
    # records but no QC object / no metrics: a zero-row partition that exists
    for subject in ("S2", "S4"):
        assert tables[subject] is not None
        assert tables[subject].num_rows == 0
        assert_declared(tables[subject], QUALITY_CONTROL)
    # no record at all: None (the partition is removed)
    assert tables["S3"] is None
    # a subject that was not asked for is not built
    assert "S9" not in tables


def test_quality_control_timestamp_is_utc():
    records = norm(
        v2("a", {"subject.subject_id": "S", "acquisition.acquisition_start_time": "2024-01-01T00:00:00",
                 "quality_control.metrics": [metric("m")]}),
        v2("b", {"subject.subject_id": "S", "acquisition.acquisition_start_time": "2024-06-01T12:00:00+02:00",
                 "quality_control.metrics": [metric("m")]}),
    )
    table = build_quality_control(snapshot_rows(records), ["S"])["S"]
    assert table.schema.field("timestamp").type == UTC
    assert column(table, "timestamp") == [
        datetime(2024, 1, 1, tzinfo=timezone.utc),
        datetime(2024, 6, 1, 10, tzinfo=timezone.utc),
    ]


def test_quality_control_no_cap_on_records():
    records = norm(*(
        v2(f"asset_{i:04d}", {"subject.subject_id": "S", "quality_control.metrics": [metric(f"m{i}"), metric("x")]})
        for i in range(150)
    ))
    table = build_quality_control(snapshot_rows(list(reversed(records))), ["S"])["S"]
    assert table.num_rows == 300
    assert column(table, "asset_name")[:4] == ["asset_0000", "asset_0000", "asset_0001", "asset_0001"]
    assert column(table, "name")[:4] == ["m0", "x", "m1", "x"]


def _expected_value(value):
    if isinstance(value, dict):
        return "{dict}"
    if value is None or isinstance(value, str):
        return value
    return str(value)


@needs_fixture_records
def test_quality_control_fixture_v2_derived():
    raw, derived = load_fixture("v2/v2_raw.json"), load_fixture("v2/v2_derived.json")
    table = build_quality_control(snapshot_rows(norm(raw, derived)), ["828418"])["828418"]
    assert_declared(table, QUALITY_CONTROL)
    metrics = derived["quality_control"]["metrics"]
    assert table.num_rows == len(metrics) == 131
    assert column(table, "name") == [m["name"] for m in metrics]
    assert column(table, "value") == [_expected_value(m["value"]) for m in metrics]
    assert column(table, "status") == [m["status_history"][-1]["status"] for m in metrics]
    assert set(column(table, "asset_name")) == {derived["name"]}
    assert set(column(table, "modality")) == {"behavior"}
    assert set(column(table, "stage")) == {"Processing"}
    assert set(column(table, "timestamp")) == {datetime(2026, 2, 13, 18, 31, 13, 61848, tzinfo=timezone.utc)}
    assert column(table, "value").count("{dict}") == 9


@needs_fixture_records
def test_quality_control_fixture_v1_evaluations_and_empty_subjects():
    records = all_records()
    tables = build_quality_control(snapshot_rows(records), ["775510", "755252", "714527", "000000"])
    behavior = tables["775510"]
    assert column(behavior, "name")[:3] == ["dropped frames", "researcher name", "untracked local changes"]
    assert column(behavior, "modality")[:2] == ["behavior-videos", "behavior"]
    assert set(column(behavior, "stage")) == {"Raw data"}
    assert column(behavior, "value")[:4] == ["0", "Bowen Tan", "", "-0.07"]
    assert behavior.num_rows == 10
    assert set(column(behavior, "timestamp")) == {datetime(2025, 4, 13, 22, 30, 30, 162812, tzinfo=timezone.utc)}
    assert tables["755252"].num_rows == 0  # QC with no evaluations
    assert tables["714527"].num_rows == 0  # no QC object
    assert tables["000000"] is None


@needs_fixture_records
def test_quality_control_deterministic():
    records = all_records()
    subjects = sorted({r.subject_id for r in records})
    first = build_quality_control(snapshot_rows(records), subjects)
    second = build_quality_control(snapshot_rows(list(reversed(all_records()))), list(reversed(subjects)))
    assert set(first) == set(second) == set(subjects)
    for subject in subjects:
        assert first[subject].equals(second[subject]), subject
        assert parquet_bytes(first[subject]) == parquet_bytes(second[subject]), subject
