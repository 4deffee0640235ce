"""The eleven table build functions, against tables.md and the shared fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON
(read by hand or straight from the file), never from running the implementation.

Readings of ambiguous spec lines are written in the docstring of the test that relies on them.
"""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fixture_records import FIXTURE_RECORDS, needs_fixture_records
from snapshot_rows import snapshot_rows

from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.assets_smartspim import ASSETS_SMARTSPIM
from biodata_cache_client.schema.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS
from biodata_cache_client.schema.platform_fib import PLATFORM_FIB
from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_client.schema.source_data import SOURCE_DATA
from biodata_cache_client.schema.unique_values import UNIQUE_GENOTYPES, UNIQUE_PROJECT_NAMES, UNIQUE_SUBJECT_IDS
from biodata_cache_pipeline.records import normalize_record
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.tables.asset_basics import build_asset_basics
from biodata_cache_pipeline.tables.assets_smartspim import build_assets_smartspim
from biodata_cache_pipeline.tables.behavior_curriculum import build_behavior_curriculum
from biodata_cache_pipeline.tables.foraging_sessions import build_foraging_sessions
from biodata_cache_pipeline.tables.platform_fib import build_platform_fib
from biodata_cache_pipeline.tables.platform_qc import asset_qc, build_platform_qc
from biodata_cache_pipeline.tables.quality_control import build_quality_control
from biodata_cache_pipeline.tables.source_data import build_source_data
from biodata_cache_pipeline.tables.unique_values import build_unique_values


STRING = pa.string()
STRING_LIST = pa.list_(pa.string())
INT64 = pa.int64()
BOOL = pa.bool_()
UTC = pa.timestamp("us", tz="UTC")
PLATFORMS = ("spim", "fib", "vr", "dynamic_foraging", "slap2")
NG = "https://allen.neuroglass.io/new#!"


# --- helpers ----------------------------------------------------------------------------------


def _load(relative: str) -> dict:
    return json.loads((FIXTURE_RECORDS / relative).read_text())


def _all_raw() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURE_RECORDS.glob("v*/*.json"))]


def _all_records():
    return [normalize_record(raw) for raw in _all_raw()]


def _by_name(raws: list[dict], name: str) -> dict:
    return next(r for r in raws if r["name"] == name)


def v2(name: str, fields: dict[str, Any] | None = None, **top: Any) -> dict:
    """A record in the 2.x layout: `fields` maps dotted paths to values."""
    record: dict[str, Any] = {"_id": f"id-{name}", "name": name, "location": f"s3://aind-open-data/{name}", **top}
    for dotted, value in (fields or {}).items():
        node = record
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return record


def norm(*raws: dict):
    return [normalize_record(r) for r in raws]


def mods(*abbreviations: str) -> list[dict]:
    return [{"abbreviation": a, "name": a} for a in abbreviations]


def metric(name, modality="behavior", stage="Processing", value=None, history=("Pass",), tags=None, **extra):
    m = {
        "object_type": "QC metric",
        "name": name,
        "modality": {"abbreviation": modality, "name": modality} if isinstance(modality, str) else modality,
        "stage": stage,
        "value": value,
        "status_history": [{"status": s, "evaluator": "x", "timestamp": "2025-01-01T00:00:00Z"} for s in history],
    }
    if tags is not None:
        m["tags"] = tags
    m.update(extra)
    return m


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def assert_declared(table: pa.Table, spec) -> None:
    assert table.column_names == spec.column_names
    assert table.schema == spec.schema, (table.schema, spec.schema)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# --- declarations -----------------------------------------------------------------------------


DECLARED_COLUMNS = {
    "unique_project_names": ["project_name"],
    "unique_subject_ids": ["subject_id"],
    "unique_genotypes": ["genotype"],
    "asset_basics": [
        "_id", "_last_modified", "modalities", "project_name", "data_level", "subject_id",
        "acquisition_start_time", "acquisition_end_time", "code_ocean", "process_date", "genotype", "age",
        "acquisition_type", "location", "name", "experimenters", "experimenters_normalized", "instrument_id",
        "instrument_id_normalized", "investigators", "investigators_normalized",
    ],
    "source_data": ["name", "source_data", "pipeline_name", "processing_time"],
    "quality_control": ["name", "modality", "stage", "value", "status", "asset_name", "subject_id", "timestamp"],
    "platform_qc": ["asset_name", "tag", "status", "timestamp", "instrument_id_normalized",
                    "experimenters_normalized"],
    "assets_smartspim": [
        "name", "raw_name", "processed", "institution", "processing_end_time", "stitched_link", "raw_link",
        "channel", "segmentation_link", "quantification_link", "alignment_link",
    ],
    "platform_fib": ["asset_name", "fiber", "patch_cord", "channel", "intended_measurement", "targeted_structure"],
    "foraging_sessions": [
        "subject_id", "session_date", "session", "nwb_suffix", "rig", "trainer", "trainer_normalized", "task",
        "curriculum_name", "curriculum_version", "current_stage_actual", "foraging_eff",
        "foraging_eff_random_seed", "finished_trials", "finished_rate", "total_trials", "bias_naive",
    ],
    "behavior_curriculum": ["asset_name", "curriculum_name", "stage_name", "stage_node_id"],
}

# Types the spec states (list columns, the age, the QC timestamp, booleans, ids as strings).
DECLARED_TYPES = {
    ("asset_basics", "modalities"): STRING_LIST,
    ("asset_basics", "code_ocean"): STRING_LIST,
    ("asset_basics", "age"): INT64,
    ("asset_basics", "experimenters"): STRING_LIST,
    ("asset_basics", "experimenters_normalized"): STRING_LIST,
    ("asset_basics", "investigators"): STRING_LIST,
    ("asset_basics", "investigators_normalized"): STRING_LIST,
    ("asset_basics", "subject_id"): STRING,
    ("asset_basics", "process_date"): STRING,
    ("asset_basics", "acquisition_start_time"): STRING,
    ("quality_control", "timestamp"): UTC,
    ("quality_control", "status"): STRING,
    ("quality_control", "value"): STRING,
    ("platform_qc", "timestamp"): STRING,
    ("platform_qc", "experimenters_normalized"): STRING_LIST,
    ("assets_smartspim", "processed"): BOOL,
    ("behavior_curriculum", "stage_node_id"): INT64,
    ("foraging_sessions", "subject_id"): STRING,
    ("foraging_sessions", "session_date"): STRING,
    ("foraging_sessions", "trainer_normalized"): STRING,
    ("unique_subject_ids", "subject_id"): STRING,
}


def test_eleven_tables_with_the_spec_columns_in_order():
    assert set(TABLES) == set(DECLARED_COLUMNS)
    for name, columns in DECLARED_COLUMNS.items():
        assert TABLES[name].column_names == columns, name


def test_declared_types_stated_by_the_spec():
    for (table, column_name), expected in DECLARED_TYPES.items():
        declared = {c.name: c.type for c in TABLES[table].columns}
        assert declared[column_name] == expected, (table, column_name)
    # everything else of source_data, platform_fib and the string-only tables is a string
    for table in ("source_data", "platform_fib", "unique_project_names", "unique_genotypes"):
        assert all(c.type == STRING for c in TABLES[table].columns), table


def test_partitioned_tables():
    qc, pqc = TABLES["quality_control"], TABLES["platform_qc"]
    assert (qc.folder, qc.partition_key) == ("qc", "subject_id")
    assert (pqc.folder, pqc.partition_key) == ("platform_qc", "platform")
    assert pqc.static_partitions == PLATFORMS
    assert "subject_id" in qc.column_names
    for name, spec in TABLES.items():
        if name not in ("quality_control", "platform_qc"):
            assert not spec.partitioned, name


# --- unique values ----------------------------------------------------------------------------


def test_unique_values_distinct_non_null_sorted():
    table = build_unique_values(UNIQUE_SUBJECT_IDS, ["2", None, "10", "1", "2"])
    assert_declared(table, UNIQUE_SUBJECT_IDS)
    assert column(table, "subject_id") == ["1", "10", "2"]  # strings sort as strings


def test_unique_values_empty():
    table = build_unique_values(UNIQUE_PROJECT_NAMES, [None])
    assert_declared(table, UNIQUE_PROJECT_NAMES)
    assert table.num_rows == 0


@needs_fixture_records
def test_unique_values_from_fixtures():
    raws = _all_raw()
    records = _all_records()
    projects = build_unique_values(UNIQUE_PROJECT_NAMES, (r.project_name for r in records))
    assert column(projects, "project_name") == sorted({r["data_description"]["project_name"] for r in raws})
    subjects = build_unique_values(UNIQUE_SUBJECT_IDS, (r.subject_id for r in records))
    assert column(subjects, "subject_id") == sorted({str(r["subject"]["subject_id"]) for r in raws})
    genotypes = build_unique_values(UNIQUE_GENOTYPES, (r.genotype for r in records))
    expected = sorted(
        {(r["subject"].get("subject_details") or {}).get("genotype") or r["subject"].get("genotype") for r in raws}
    )
    assert column(genotypes, "genotype") == expected
    # verbatim, no normalisation
    assert "Sim1-Cre_KJ18/wt;Ai32(RCL-ChR2(H134R)_EYFP)/wt" in expected


# --- asset_basics -----------------------------------------------------------------------------


@needs_fixture_records
def test_asset_basics_fixtures_one_row_per_record_sorted():
    raws = _all_raw()
    table = build_asset_basics(_all_records())
    assert_declared(table, ASSET_BASICS)
    assert table.num_rows == len(raws) == 15
    expected_order = sorted((r["name"], r["_id"]) for r in raws)
    assert list(zip(column(table, "name"), column(table, "_id"))) == expected_order


@needs_fixture_records
def test_asset_basics_v2_raw_row():
    raw = _load("v2/v2_raw.json")
    [row] = rows(build_asset_basics(norm(raw)))
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
    table = build_asset_basics(_all_records())
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
    [row] = rows(build_asset_basics(norm(v2("a", fields))))
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
    [row] = rows(build_asset_basics(norm(v2("a", {"processing.data_processes": processes}))))
    return row["process_date"]


def test_process_date():
    """Date of the last data process start. Reading: the last in document order (with these
    inputs also the latest, so both readings agree)."""
    assert _process_date(["2024-01-01T10:00:00Z", "2024-03-05T08:00:00Z"]) == "2024-03-05"
    assert _process_date(["2024-01-01T10:00:00Z", "2024-03-05 08:00:00"]) == "2024-03-05"
    assert _process_date(["2024-03-05 23:59:59.123+00:00"]) == "2024-03-05"
    assert _process_date([]) is None
    [row] = rows(build_asset_basics(norm(v2("a"))))
    assert row["process_date"] is None


def test_code_ocean_null_when_absent():
    records = norm(
        v2("a", other_identifiers={"Code Ocean": ["x", "y"]}),
        v2("b"),
        v2("c", other_identifiers={}),
        v2("d", other_identifiers={"Code Ocean": []}),
    )
    by_name = {r["name"]: r["code_ocean"] for r in rows(build_asset_basics(records))}
    assert by_name == {"a": ["x", "y"], "b": None, "c": None, "d": []}


def test_asset_basics_sorted_by_name_then_id_and_one_row_per_record():
    records = norm(
        v2("b", _id="2"),
        v2("a", _id="9"),
        v2("b", _id="1"),
        v2("A", _id="5"),
    )
    table = build_asset_basics(records)
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
    [row] = rows(build_asset_basics(norm(raw)))
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
    [row] = rows(build_asset_basics(norm(v2("a"))))
    assert row["instrument_id"] is None
    assert row["instrument_id_normalized"] == ""
    assert row["experimenters"] == [] and row["experimenters_normalized"] == []


def test_asset_basics_empty_input_is_a_typed_empty_table():
    table = build_asset_basics([])
    assert_declared(table, ASSET_BASICS)
    assert table.num_rows == 0


# --- determinism ------------------------------------------------------------------------------


@needs_fixture_records
def test_asset_basics_deterministic():
    first = build_asset_basics(_all_records())
    second = build_asset_basics(list(reversed(_all_records())))
    assert first.equals(second)
    assert parquet_bytes(first) == parquet_bytes(build_asset_basics(_all_records()))


@needs_fixture_records
def test_quality_control_deterministic():
    records = _all_records()
    subjects = sorted({r.subject_id for r in records})
    first = build_quality_control(snapshot_rows(records), subjects)
    second = build_quality_control(snapshot_rows(list(reversed(_all_records()))), list(reversed(subjects)))
    assert set(first) == set(second) == set(subjects)
    for subject in subjects:
        assert first[subject].equals(second[subject]), subject
        assert parquet_bytes(first[subject]) == parquet_bytes(second[subject]), subject


# --- source_data ------------------------------------------------------------------------------


@needs_fixture_records
def test_source_data_fixtures():
    """Derived fixture records (data_level `derived`; the 0.2.7 `..._stitched_...` record says `raw`)."""
    table = build_source_data(_all_records())
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
    raw, derived = _load("v2/v2_raw.json"), _load("v2/v2_derived.json")
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


# --- quality_control --------------------------------------------------------------------------


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
    raw, derived = _load("v2/v2_raw.json"), _load("v2/v2_derived.json")
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
    records = _all_records()
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


# --- platform_qc ------------------------------------------------------------------------------


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
    basics = build_asset_basics(records)
    qc = {r.name: asset_qc(r) for r in records if r.has_qc}
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
    raws = _all_raw()
    records = [normalize_record(r) for r in raws]
    fiber_raw, derived_raw = _load("v2/fiber_example3.json"), _load("v2/v2_derived.json")

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


# --- assets_smartspim -------------------------------------------------------------------------


def _write_json(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


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
    _write_json(root / S1_NEW / "image_cell_segmentation" / "not_a_channel.json", {})
    (root / S1_OLD / "image_cell_segmentation" / "Ex_561_Em_593").mkdir(parents=True)
    (root / S2_B).mkdir(parents=True)
    _write_json(root / R1 / "SPIM" / "derivatives" / "neuroglancer_config.json", {"ng_link": "https://ng/r1"})
    _write_json(root / R2 / "SPIM" / "derivatives" / "neuroglancer_config.json", "{not json")
    _write_json(root / R3 / "SPIM" / "derivatives" / "neuroglancer_config.json", {"other": 1})
    _write_json(root / R4 / "SPIM" / "derivatives" / "neuroglancer_config.json", {"ng_link": "https://ng/r4"})
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
    table = build_assets_smartspim(records, build_source_data(records), store)
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


def test_assets_smartspim_link_strings_literal(tmp_path):
    records, store = _smartspim_corpus(tmp_path)
    first = rows(build_assets_smartspim(records, build_source_data(records), store))[0]
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
    table = build_assets_smartspim([], build_source_data([]), OpenDataStore(str(tmp_path)))
    assert_declared(table, ASSETS_SMARTSPIM)
    assert table.num_rows == 0


@needs_fixture_records
def test_assets_smartspim_fixtures(tmp_path):
    """Raw SPIM fixtures: the 0.2.7 records (data_level `raw data` read as raw, and the `..._stitched_...`
    record whose data_level says `raw`). exaSPIM (instrument `exaspim-01`) is excluded. Their stitched
    assets are not among the fixtures: unprocessed rows."""
    root = tmp_path / "open-data"
    _write_json(root / "SmartSPIM_658355_2023-02-28_15-17-45" / "SPIM" / "derivatives" / "neuroglancer_config.json",
                {"ng_link": "https://neuroglancer/658355"})
    records = _all_records()
    table = build_assets_smartspim(records, build_source_data(records), OpenDataStore(str(root)))
    assert [(r["raw_name"], r["name"], r["processed"], r["raw_link"]) for r in rows(table)] == [
        ("SmartSPIM_654092_2023-01-26_10-45-12_stitched_2023-02-02_21-58-54",
         "SmartSPIM_654092_2023-01-26_10-45-12_stitched_2023-02-02_21-58-54", False, None),
        ("SmartSPIM_658355_2023-02-28_15-17-45", "SmartSPIM_658355_2023-02-28_15-17-45", False,
         "https://neuroglancer/658355"),
    ]


# --- platform_fib -----------------------------------------------------------------------------


@needs_fixture_records
def test_platform_fib_fiber_example3():
    raw = _load("v2/fiber_example3.json")
    table = build_platform_fib(norm(raw))
    assert_declared(table, PLATFORM_FIB)
    name = raw["name"]
    measurements = {0: ("calcium", "control", "missing"), 1: ("calcium", "control", "missing"),
                    2: ("dopamine", "control", "acetylcholine"), 3: ("dopamine", "control", "acetylcholine")}
    structures = {0: "PL", 1: "PL", 2: "ACB", 3: "ACB"}
    expected = []
    for i in range(4):
        for colour, measurement in zip(("Green", "Isosbestic", "Red"), measurements[i]):
            expected.append({"asset_name": name, "fiber": f"Fiber {i}", "patch_cord": f"Patch Cord {i}",
                             "channel": f"Fiber_{i}_{colour}", "intended_measurement": measurement,
                             "targeted_structure": structures[i]})
    assert rows(table) == expected
    assert table.num_rows == 12


@needs_fixture_records
def test_platform_fib_only_fib_assets_from_fixtures():
    table = build_platform_fib(_all_records())
    assert set(column(table, "asset_name")) == {"808054_2026-04-16_19-38-24_processed_2026-04-17_15-47-55"}


def _fib_record(name="fib_asset", modalities=("fib",), level="raw"):
    def implant(fiber, structure):
        p = {"object_type": "Probe implant", "implanted_device": {"name": fiber}}
        if structure is not None:
            p["device_config"] = {"primary_targeted_structure": {"acronym": structure, "name": "x"}}
        return p

    procedures = [
        {"procedures": [implant("Fiber_0", "root"), implant("Fiber_1", None),
                        {"object_type": "Brain injection"}]},
        {"procedures": [implant("Fiber_2", "VTA"), implant("Fiber_3", "NAc")]},
    ]
    streams = [
        {"connections": [{"source_device": "Patch Cord A", "target_device": "Fiber_0"},
                         {"source_device": "Patch Cord B", "target_device": "Fiber 1"},
                         {"source_device": "Patch Cord D", "target_device": "Fiber 9"},
                         {"source_device": "Patch Cord E", "target_device": "Fiber 3"}],
         "configurations": [
             {"object_type": "Light emitting diode config", "device_name": "Patch Cord A",
              "channels": [{"channel_name": "LED", "intended_measurement": "x"}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord B",
              "channels": [{"channel_name": "Iso", "intended_measurement": "control"}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord A",
              "channels": [{"channel_name": "Red", "intended_measurement": "None"},
                           {"channel_name": "Green", "intended_measurement": "dopamine"},
                           {"intended_measurement": None}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord D",
              "channels": [{"channel_name": "Green", "intended_measurement": "calcium"}]},
             {"object_type": "Patch cord config", "device_name": "Patch Cord Z",
              "channels": [{"channel_name": "Green", "intended_measurement": "calcium"}]},
         ]},
        {"connections": [{"source_device": "Patch Cord C", "target_device": "Fiber_2"}],
         "configurations": [{"object_type": "Patch cord config", "device_name": "Patch Cord C",
                             "channels": [{"channel_name": "Green", "intended_measurement": "dopamine"}]}]},
    ]
    return v2(name, {"data_description.modalities": mods(*modalities), "data_description.data_level": level,
                     "procedures.subject_procedures": procedures, "acquisition.data_streams": streams})


def test_platform_fib_rules():
    """Fibers compared with underscores as spaces; `missing` for root/absent structures and absent
    channel strings; channels whose intended_measurement is the string "None" are skipped; patch
    cords with no connection to a known fiber give no row; Fiber 3 has no patch cord config."""
    table = build_platform_fib(norm(_fib_record()))
    assert_declared(table, PLATFORM_FIB)
    assert [tuple(r.values()) for r in rows(table)] == [
        ("fib_asset", "Fiber 0", "Patch Cord A", "Green", "dopamine", "missing"),
        ("fib_asset", "Fiber 0", "Patch Cord A", "missing", "missing", "missing"),
        ("fib_asset", "Fiber 1", "Patch Cord B", "Iso", "control", "missing"),
        ("fib_asset", "Fiber 2", "Patch Cord C", "Green", "dopamine", "VTA"),
    ]


def test_platform_fib_asset_selection_and_order():
    records = norm(
        _fib_record("z_asset", modalities=("FIB", "behavior"), level="derived"),
        _fib_record("a_asset", modalities=("fib",)),
        _fib_record("behavior_only", modalities=("behavior",)),
        _fib_record("fiber_like", modalities=("fiber",)),
    )
    table = build_platform_fib(records)
    assert sorted(set(column(table, "asset_name"))) == ["a_asset", "z_asset"]
    assert column(table, "asset_name") == ["a_asset"] * 4 + ["z_asset"] * 4


def test_platform_fib_unnamed_patch_cord_never_crashes():
    """Reading: a connection without a source device, or a patch cord config without a device name,
    cannot tie a patch cord to a fiber: no row (and no crash)."""
    raw = _fib_record()
    stream = raw["acquisition"]["data_streams"][1]
    stream["connections"].append({"target_device": "Fiber 2"})
    stream["configurations"].append({"object_type": "Patch cord config",
                                     "channels": [{"channel_name": "Red", "intended_measurement": "x"}]})
    table = build_platform_fib(norm(raw))
    assert None not in column(table, "patch_cord")
    assert table.num_rows == 4


# --- foraging_sessions ------------------------------------------------------------------------


def _source(**columns) -> pa.Table:
    return pa.table(columns)


FULL_SOURCE = dict(
    subject_id=pa.array(["B", "A", "A", "A"], STRING),
    session_date=pa.array(["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"], STRING),
    session=pa.array([7, 3, 2, 1], INT64),
    nwb_suffix=pa.array([0, 0, 5, 0], INT64),
    rig=pa.array(["447_1A", "447_1B", None, "r"], STRING),
    trainer=pa.array(["jane.doe", None, "BOB  SMITH", "o'brien"], STRING),
    task=pa.array(["Uncoupled Baiting"] * 4, STRING),
    curriculum_name=pa.array(["c"] * 4, STRING),
    curriculum_version=pa.array(["1.0"] * 4, STRING),
    current_stage_actual=pa.array(["STAGE_1"] * 4, STRING),
    foraging_eff=pa.array([0.5, 0.6, None, 0.8], pa.float64()),
    foraging_eff_random_seed=pa.array([0.1, 0.2, 0.3, 0.4], pa.float64()),
    finished_trials=pa.array([100, 200, 300, 400], INT64),
    finished_rate=pa.array([0.9, 0.8, 0.7, 0.6], pa.float64()),
    total_trials=pa.array([110, 220, 330, 440], INT64),
    bias_naive=pa.array([0.0, 0.1, -0.1, 0.2], pa.float64()),
    extra_column=pa.array([1, 2, 3, 4], INT64),
)


def test_foraging_sessions_full_source():
    table, warnings = build_foraging_sessions(_source(**FULL_SOURCE))
    assert_declared(table, FORAGING_SESSIONS)
    assert warnings == []
    # sorted by subject_id, session_date, nwb_suffix
    assert [(r["subject_id"], r["session_date"], r["nwb_suffix"]) for r in rows(table)] == [
        ("A", "2024-01-01", 0), ("A", "2024-01-01", 5), ("A", "2024-01-02", 0), ("B", "2024-01-01", 0),
    ]
    # the source's session column is used as is
    assert column(table, "session") == [1, 2, 3, 7]
    assert column(table, "trainer") == ["o'brien", "BOB  SMITH", None, "jane.doe"]
    assert column(table, "trainer_normalized") == ["O Brien", "Bob Smith", "", "Jane Doe"]
    assert column(table, "foraging_eff") == [0.8, None, 0.6, 0.5]
    assert column(table, "rig") == ["r", None, "447_1B", "447_1A"]


def test_foraging_sessions_missing_columns_are_typed_nulls_with_warnings():
    source = {k: v for k, v in FULL_SOURCE.items() if k not in ("bias_naive", "rig", "finished_trials", "session")}
    table, warnings = build_foraging_sessions(_source(**source))
    assert_declared(table, FORAGING_SESSIONS)
    for name in ("bias_naive", "rig", "finished_trials"):
        assert column(table, name) == [None] * 4
        assert any(name in w for w in warnings), (name, warnings)
    # session is not "lacking": it falls back to the rank of (session_date, nwb_suffix) per subject
    assert not any("session " in w or w.endswith("session") for w in warnings), warnings
    assert column(table, "session") == [1, 2, 3, 1]


def test_foraging_sessions_session_rank_fallback():
    source = _source(
        subject_id=pa.array(["A", "A", "B", "A", "B"], STRING),
        session_date=pa.array(["2024-03-01", "2024-01-01", "2024-02-01", "2024-01-01", "2023-12-31"], STRING),
        nwb_suffix=pa.array([0, 2, 0, 1, 0], INT64),
        trainer=pa.array(["x"] * 5, STRING),
    )
    table, warnings = build_foraging_sessions(source)
    assert [(r["subject_id"], r["session_date"], r["nwb_suffix"], r["session"]) for r in rows(table)] == [
        ("A", "2024-01-01", 1, 1),
        ("A", "2024-01-01", 2, 2),
        ("A", "2024-03-01", 0, 3),
        ("B", "2023-12-31", 0, 1),
        ("B", "2024-02-01", 0, 2),
    ]
    assert warnings  # many columns are missing


def test_foraging_sessions_missing_trainer():
    source = {k: v for k, v in FULL_SOURCE.items() if k != "trainer"}
    table, warnings = build_foraging_sessions(_source(**source))
    assert column(table, "trainer") == [None] * 4
    assert column(table, "trainer_normalized") == [""] * 4
    assert any("trainer" in w for w in warnings)


def test_foraging_sessions_subject_id_as_string():
    source = dict(FULL_SOURCE, subject_id=pa.array([700002, 700001, 700001, 700001], INT64))
    table, _ = build_foraging_sessions(_source(**source))
    assert table.schema.field("subject_id").type == STRING
    assert column(table, "subject_id") == ["700001", "700001", "700001", "700002"]


def test_foraging_sessions_empty_source():
    table, warnings = build_foraging_sessions(pa.table({"subject_id": pa.array([], STRING)}))
    assert_declared(table, FORAGING_SESSIONS)
    assert table.num_rows == 0
    assert warnings


# --- behavior_curriculum ----------------------------------------------------------------------


def _state(curriculum="Uncoupled Baiting", stage="STAGE_2", nodes=None) -> dict:
    if nodes is None:
        nodes = {"0": {"name": "STAGE_1"}, "1": {"name": "STAGE_2"}, "2": {"name": "STAGE_2"}}
    return {"curriculum": {"name": curriculum, "graph": {"nodes": nodes}}, "stage": {"name": stage}}


def _behavior_basics(names_and_modalities) -> pa.Table:
    return build_asset_basics(norm(*(
        v2(name, {"data_description.modalities": mods(*modalities)}) for name, modalities in names_and_modalities
    )))


def _curriculum_store(tmp_path: Path) -> tuple[Path, OpenDataStore]:
    root = tmp_path / "open-data"
    # A1: behavior/trainer_state.json; stage_node_id = first node named like the stage
    _write_json(root / "A1" / "behavior" / "trainer_state.json", _state())
    # A2: several objects under the trainer_state prefix: lexicographically first (a.json);
    # the Logs/.launcher fallback is not used while trainer_state exists
    _write_json(root / "A2" / "behavior" / "trainer_state" / "b.json", _state(stage="STAGE_1"))
    _write_json(root / "A2" / "behavior" / "trainer_state" / "a.json",
                _state(curriculum="A2 curriculum", stage="STAGE_3",
                       nodes={"7": {"name": "STAGE_1"}, "12": {"name": "STAGE_3"}}))
    _write_json(root / "A2" / "behavior" / "Logs" / ".launcher" / "TrainerState_0.json", _state(curriculum="no"))
    # A3: only the launcher log; names without the TrainerState_ prefix are ignored
    _write_json(root / "A3" / "behavior" / "Logs" / ".launcher" / "TrainerState_20250102.json",
                _state(curriculum="launcher", stage="STAGE_1"))
    _write_json(root / "A3" / "behavior" / "Logs" / ".launcher" / "TrainerState_20250101.txt", _state(curriculum="txt"))
    _write_json(root / "A3" / "behavior" / "Logs" / ".launcher" / "AAA.json", _state(curriculum="wrong prefix"))
    # A4: nothing
    (root / "A4" / "behavior").mkdir(parents=True)
    # A6: behavior-videos only (substring match); stage not among the nodes
    _write_json(root / "A6" / "behavior" / "trainer_state.json", _state(curriculum="c6", stage="GRADUATED"))
    # A5 (ecephys) has a trainer state but is not a behavior asset
    _write_json(root / "A5" / "behavior" / "trainer_state.json", _state())
    return root, OpenDataStore(str(root))


ASSETS = [("A1", ["behavior"]), ("A2", ["Behavior", "fib"]), ("A3", ["behavior"]), ("A4", ["behavior"]),
          ("A5", ["ecephys"]), ("A6", ["behavior-videos"])]


def test_behavior_curriculum(tmp_path):
    _, store = _curriculum_store(tmp_path)
    table, reused = build_behavior_curriculum(_behavior_basics(ASSETS), store, None)
    assert_declared(table, BEHAVIOR_CURRICULUM)
    assert reused == 0
    assert [tuple(r.values()) for r in rows(table)] == [
        ("A1", "Uncoupled Baiting", "STAGE_2", 1),
        ("A2", "A2 curriculum", "STAGE_3", 12),
        ("A3", "launcher", "STAGE_1", 0),
        ("A4", None, None, None),
        ("A6", "c6", "GRADUATED", None),
    ]


def test_behavior_curriculum_trainer_state_file_and_folder_prefix(tmp_path):
    """`<location>/behavior/trainer_state` is a prefix: `trainer_state.json` sorts before
    `trainer_state/...` ('.' < '/'), so it is the first object."""
    root = tmp_path / "open-data"
    _write_json(root / "B1" / "behavior" / "trainer_state" / "a.json", _state(curriculum="folder"))
    _write_json(root / "B1" / "behavior" / "trainer_state.json", _state(curriculum="file"))
    _write_json(root / "B2" / "behavior" / "trainer_state_2025.json", _state(curriculum="suffix"))
    table, _ = build_behavior_curriculum(
        _behavior_basics([("B1", ["behavior"]), ("B2", ["behavior"])]), OpenDataStore(str(root))
    )
    assert column(table, "curriculum_name") == ["file", "suffix"]


def test_behavior_curriculum_incremental(tmp_path):
    root, store = _curriculum_store(tmp_path)
    first, _ = build_behavior_curriculum(_behavior_basics(ASSETS), store, None)
    # the store changes: A1's state is rewritten (a known, complete row: reused, not re-read),
    # A4 gets a trainer state (re-checked), A6 leaves asset_basics (dropped), A7 is new
    _write_json(root / "A1" / "behavior" / "trainer_state.json", _state(curriculum="changed"))
    _write_json(root / "A4" / "behavior" / "trainer_state.json", _state(curriculum="late", stage="STAGE_1"))
    _write_json(root / "A7" / "behavior" / "trainer_state.json", _state(curriculum="new", stage="STAGE_1"))
    assets = [a for a in ASSETS if a[0] != "A6"] + [("A7", ["behavior"])]
    second, reused = build_behavior_curriculum(_behavior_basics(assets), store, first)
    assert_declared(second, BEHAVIOR_CURRICULUM)
    assert [tuple(r.values()) for r in rows(second)] == [
        ("A1", "Uncoupled Baiting", "STAGE_2", 1),
        ("A2", "A2 curriculum", "STAGE_3", 12),
        ("A3", "launcher", "STAGE_1", 0),
        ("A4", "late", "STAGE_1", 0),
        ("A7", "new", "STAGE_1", 0),
    ]
    assert reused == 3  # A1, A2, A3


def test_behavior_curriculum_no_behavior_assets(tmp_path):
    table, reused = build_behavior_curriculum(_behavior_basics([("E", ["ecephys"])]), OpenDataStore(str(tmp_path)))
    assert_declared(table, BEHAVIOR_CURRICULUM)
    assert table.num_rows == 0 and reused == 0


@needs_fixture_records
def test_behavior_curriculum_fixtures(tmp_path):
    """Fixture behavior assets (modality containing `behavior`) with an empty open-data store: all null."""
    records = _all_records()
    table, _ = build_behavior_curriculum(build_asset_basics(records), OpenDataStore(str(tmp_path)))
    expected = sorted(r.name for r in records if any("behavior" in m.lower() for m in r.modalities))
    assert column(table, "asset_name") == expected
    assert "828418_2026-02-13_18-31-13" in expected  # v2_raw
    assert set(column(table, "curriculum_name")) == {None}
