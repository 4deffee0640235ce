"""asset_basics: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pytest

from fixture_records import needs_fixture_records
from snapshot_rows import snapshot_rows
from table_records import (
    all_raw,
    all_records,
    assert_declared,
    column,
    load_fixture,
    mods,
    norm,
    parquet_bytes,
    rows,
    v2,
)

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.tables.asset_basics import build_asset_basics


@needs_fixture_records
def test_asset_basics_fixtures_one_row_per_record_sorted():
    raws = all_raw()
    table = build_asset_basics(snapshot_rows(all_records()))
    assert_declared(table, ASSET_BASICS)
    assert table.num_rows == len(raws) == 15
    expected_order = sorted((r["name"], r["_id"]) for r in raws)
    assert list(zip(column(table, "name"), column(table, "_id"))) == expected_order


@needs_fixture_records
def test_asset_basics_v2_raw_row():
    raw = load_fixture("v2/v2_raw.json")
    [row] = rows(build_asset_basics(snapshot_rows(norm(raw))))
    assert row == {
        "_id": "ad668ba9-326a-4b5d-abc1-63ddefaf0a41",
        "_last_modified": "2026-02-14T12:34:44.410Z",
        "modalities": ["behavior", "behavior-videos"],
        "project_name": "Cognitive flexibility in patch foraging",
        "data_level": "raw",
        "subject_id": "828418",
        "acquisition_start_time": "2026-02-13T18:31:13.061848Z",
        "acquisition_end_time": "2026-02-13T19:43:41.982725Z",
        "code_ocean": ["7afcf17c-a33d-47e1-b95d-4cd000bbea33"],
        "process_date": "2026-02-14",
        "genotype": "wt/wt",
        "age": 199,  # 2025-07-29 -> 2026-02-13T18:31Z, whole days
        "acquisition_type": "AindVrForaging",
        "location": "s3://aind-open-data/828418_2026-02-13_18-31-13",
        "name": "828418_2026-02-13_18-31-13",
        "experimenters": ["huy.nguyen"],
        "experimenters_normalized": ["Huy Nguyen"],
        "instrument_id": "4A",
        "instrument_id_normalized": "4A",
        "investigators": ["Bruno Cruz", "Cindy Poo", "Tiffany Ona"],
        "investigators_normalized": ["Bruno Cruz", "Cindy Poo", "Tiffany Ona"],
    }


@needs_fixture_records
def test_asset_basics_fixture_spot_checks():
    table = build_asset_basics(snapshot_rows(all_records()))
    by_name = {r["name"]: r for r in rows(table)}
    behavior = by_name["behavior_775510_2025-04-13_15-30-30_processed_2025-04-14_04-09-06"]
    # 2024-11-02 -> 2025-04-13T15:30:30-07:00 = 2025-04-13T22:30:30Z
    assert behavior["age"] == 162
    assert behavior["instrument_id_normalized"] == "8A"
    assert behavior["process_date"] is None  # processing_pipeline.data_processes is empty
    assert behavior["acquisition_type"] == "Uncoupled Baiting"
    assert behavior["code_ocean"] == ["bbccfa89-7dd0-439c-8b23-cf896990ea64"]
    assert behavior["_last_modified"] == "2025-04-14T04:10:39.724Z"
    # space separator in start_date_time
    hcr = by_name["HCR_813864_2025-09-04_13-30-00_processed_2025-09-12_23-06-45"]
    assert hcr["process_date"] == "2025-09-12"
    assert hcr["experimenters"] == ["Unknown Zeiss User"]
    vr = by_name["795133_2026-02-10_11-06-18"]
    assert vr["experimenters_normalized"] == ["Yoni Browning", "Katrina Nguyen", "Tiffany Ona"]
    assert vr["instrument_id_normalized"] == "NDEphys.5"
    stitched = by_name["SmartSPIM_784354_2025-04-16_21-39-58_stitched_2025-05-21_16-45-59"]
    assert stitched["instrument_id_normalized"] == "SmartSPIM1"
    assert stitched["process_date"] == "2025-05-22"
    exa = by_name["exaSPIM_750318_2025-02-03_12-13-09"]
    assert exa["investigators"] == [" Karel Svoboda", "Jayaram Chandrashekar"]
    assert exa["investigators_normalized"] == ["Karel Svoboda", "Jayaram Chandrashekar"]
    assert exa["instrument_id_normalized"] == "exaspim01"
    slap = by_name["SLAP2_801381_2025-10-02_15-23-18"]
    assert slap["experimenters"] == [] and slap["experimenters_normalized"] == []


def _age(dob=None, start=None, acquisition_dob=None, year=None) -> int | None:
    fields: dict[str, Any] = {}
    if dob is not None:
        fields["subject.subject_details.date_of_birth"] = dob
    if year is not None:
        fields["subject.subject_details.year_of_birth"] = year
    if acquisition_dob is not None:
        fields["acquisition.subject_details.date_of_birth"] = acquisition_dob
    if start is not None:
        fields["acquisition.acquisition_start_time"] = start
    [row] = rows(build_asset_basics(snapshot_rows(norm(v2("a", fields)))))
    return row["age"]


def test_age_whole_days():
    assert _age("2024-01-01", "2024-01-11T23:59:59Z") == 10
    assert _age("2024-01-01", "2024-01-01T00:00:00Z") == 0
    # leap year
    assert _age("2024-02-01", "2024-03-01T00:00:00Z") == 29


def test_age_offsets_are_converted_to_utc():
    # 2024-01-11T23:30-07:00 is 2024-01-12T06:30Z: 11 whole days after 2024-01-01
    assert _age("2024-01-01", "2024-01-11T23:30:00-07:00") == 11
    # a birth time with an offset moves too: 2024-01-01T00:00+05:00 = 2023-12-31T19:00Z
    assert _age("2024-01-01T00:00:00+05:00", "2024-01-11T18:00:00Z") == 10
    assert _age("2024-01-01T00:00:00+05:00", "2024-01-11T19:00:00Z") == 11


def test_age_naive_times_are_utc_whatever_the_local_zone(monkeypatch):
    """A naive time is UTC, not the machine's local time: checked under a non-UTC local zone."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available on this platform")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        # naive birth 2024-01-01T00:00 UTC, aware start 2024-01-02T03:00Z: 1 day (not 0 as in local time)
        assert _age("2024-01-01", "2024-01-02T03:00:00+00:00") == 1
        # aware birth 2024-01-02T04:00Z, naive start 2024-01-11T02:00 UTC: 8 days (9 in local time)
        assert _age("2024-01-01T20:00:00-08:00", "2024-01-11T02:00:00") == 8
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_age_birth_fallbacks():
    # acquisition.subject_details.date_of_birth when the subject has none
    assert _age(None, "2020-03-01T00:00:00Z", acquisition_dob="2020-02-01") == 29
    # the subject's date wins over the acquisition's
    assert _age("2020-01-01", "2020-03-01T00:00:00Z", acquisition_dob="2020-02-01") == 60
    # else Jan 1 of year_of_birth
    assert _age(None, "2020-03-01T00:00:00Z", year=2020) == 60
    assert _age(None, "2021-01-01T00:00:00Z", year=2020) == 366


def test_age_null_when_missing_or_unparsable():
    assert _age(None, "2020-03-01T00:00:00Z") is None
    assert _age("2020-01-01", None) is None
    assert _age("not a date", "2020-03-01T00:00:00Z") is None
    assert _age("2020-01-01", "garbage") is None


def _process_date(starts) -> str | None:
    processes = [{"start_date_time": s, "end_date_time": s, "name": "p"} for s in starts]
    [row] = rows(build_asset_basics(snapshot_rows(norm(v2("a", {"processing.data_processes": processes})))))
    return row["process_date"]


def test_process_date():
    """Date of the last data process start. Reading: the last in document order (with these
    inputs also the latest, so both readings agree)."""
    assert _process_date(["2024-01-01T10:00:00Z", "2024-03-05T08:00:00Z"]) == "2024-03-05"
    assert _process_date(["2024-01-01T10:00:00Z", "2024-03-05 08:00:00"]) == "2024-03-05"
    assert _process_date(["2024-03-05 23:59:59.123+00:00"]) == "2024-03-05"
    assert _process_date([]) is None
    [row] = rows(build_asset_basics(snapshot_rows(norm(v2("a")))))
    assert row["process_date"] is None


def test_process_date_is_the_last_start_with_a_date_row_by_row():
    """Undated last starts are passed over; rows without processes between others shift nothing."""

    def record(name, starts):
        processes = [{"start_date_time": s, "end_date_time": s, "name": "p"} for s in starts]
        return v2(name, {"processing.data_processes": processes})

    records = norm(
        record("a", ["2024-01-01T10:00:00Z", "2024-02-02T10:00:00Z", "not a date"]),
        record("b", []),
        v2("c"),
        record("d", ["2024-04-04 01:00:00", "x", "y"]),
        record("e", ["x"]),
        record("f", ["2024-06-06T00:00:00Z"]),
    )
    dates = {r["name"]: r["process_date"] for r in rows(build_asset_basics(snapshot_rows(records)))}
    assert dates == {"a": "2024-02-02", "b": None, "c": None, "d": "2024-04-04", "e": None, "f": "2024-06-06"}


def test_code_ocean_null_when_absent():
    records = norm(
        v2("a", other_identifiers={"Code Ocean": ["x", "y"]}),
        v2("b"),
        v2("c", other_identifiers={}),
        v2("d", other_identifiers={"Code Ocean": []}),
    )
    by_name = {r["name"]: r["code_ocean"] for r in rows(build_asset_basics(snapshot_rows(records)))}
    assert by_name == {"a": ["x", "y"], "b": None, "c": None, "d": []}


def test_asset_basics_sorted_by_name_then_id_and_one_row_per_record():
    records = norm(
        v2("b", _id="2"),
        v2("a", _id="9"),
        v2("b", _id="1"),
        v2("A", _id="5"),
    )
    table = build_asset_basics(snapshot_rows(records))
    assert list(zip(column(table, "name"), column(table, "_id"))) == [("A", "5"), ("a", "9"), ("b", "1"), ("b", "2")]


def test_asset_basics_hand_built_row():
    raw = v2(
        "behavior_1_2025-01-01_00-00-00",
        {
            "data_description.modalities": mods("behavior", "fib"),
            "data_description.project_name": "P",
            "data_description.data_level": "raw",
            "data_description.investigators": [{"name": "jane.doe"}, "Bob"],
            "subject.subject_id": 123456,
            "subject.subject_details.genotype": "Ai14/wt",
            "subject.subject_details.date_of_birth": "2024-12-01",
            "acquisition.acquisition_start_time": "2025-01-01T00:00:00",
            "acquisition.acquisition_end_time": "2025-01-01T01:00:00",
            "acquisition.acquisition_type": "Coupled Baiting",
            "acquisition.instrument_id": "447_FIP_1_20250101",
            "acquisition.experimenters": [{"name": "Jane"}, "o'brien"],
        },
        _last_modified="2025-01-02T00:00:00Z",
    )
    [row] = rows(build_asset_basics(snapshot_rows(norm(raw))))
    assert row["modalities"] == ["behavior", "fib"]
    assert row["subject_id"] == "123456"
    assert row["age"] == 31
    assert row["investigators"] == ["jane.doe", "Bob"]
    assert row["investigators_normalized"] == ["Jane Doe", "Bob"]
    assert row["experimenters"] == ["Jane", "o'brien"]
    # the table-wide map turns Jane into Jane Doe (from the investigators column)
    assert row["experimenters_normalized"] == ["Jane Doe", "O Brien"]
    assert row["instrument_id_normalized"] == "FIP1"
    assert row["_last_modified"] == "2025-01-02T00:00:00Z"
    assert row["acquisition_type"] == "Coupled Baiting"


def test_asset_basics_missing_instrument_is_empty_string():
    [row] = rows(build_asset_basics(snapshot_rows(norm(v2("a")))))
    assert row["instrument_id"] is None
    assert row["instrument_id_normalized"] == ""
    assert row["experimenters"] == [] and row["experimenters_normalized"] == []


def test_asset_basics_rows_without_a_name_come_last_by_id_and_records_without_either_are_left_out():
    """A record with an `_id` but no name still gets its row, after the named ones, ordered by
    `_id`; one with neither cannot be told apart from another and gets none."""
    named_b, named_a = v2("b"), v2("a")
    nameless = [{**v2("x"), "_id": "id-2", "name": None}, {**v2("y"), "_id": "id-1", "name": None}]
    neither = {**v2("z"), "_id": None, "name": None}
    table = build_asset_basics(snapshot_rows(norm(nameless[0], named_b, neither, nameless[1], named_a)))
    assert list(zip(column(table, "name"), column(table, "_id"))) == [
        ("a", "id-a"), ("b", "id-b"), (None, "id-1"), (None, "id-2"),
    ]


def test_asset_basics_reads_a_missing_list_as_empty():
    """Snapshot rows whose modalities, experimenters or investigators list is missing (null) give
    empty lists, as a record's missing lists are empty."""
    stored = snapshot_rows(norm(v2("a")))
    for name in ("modalities", "experimenters", "investigators"):
        stored = stored.set_column(stored.column_names.index(name), name, pa.nulls(1, stored.schema.field(name).type))
    [row] = rows(build_asset_basics(stored))
    assert (row["modalities"], row["experimenters"], row["investigators"]) == ([], [], [])
    assert (row["experimenters_normalized"], row["investigators_normalized"]) == ([], [])


def test_asset_basics_empty_input_is_a_typed_empty_table():
    table = build_asset_basics(snapshot_rows([]))
    assert_declared(table, ASSET_BASICS)
    assert table.num_rows == 0


@needs_fixture_records
def test_asset_basics_deterministic():
    first = build_asset_basics(snapshot_rows(all_records()))
    second = build_asset_basics(snapshot_rows(list(reversed(all_records()))))
    assert first.equals(second)
    assert parquet_bytes(first) == parquet_bytes(build_asset_basics(snapshot_rows(all_records())))
