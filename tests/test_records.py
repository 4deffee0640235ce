"""The record normaliser (tables.md: general rules and "v1 records").

Expected values are read straight from the fixture JSON (2.x paths, or the spec's 1.x field map),
or written by hand from the spec; never taken from running the implementation.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fixture_records import FIXTURE_RECORDS, needs_fixture_records
from snapshot_rows import snapshot_rows

from biodata_cache_pipeline.records import (
    DataStream,
    RECORD_SECTIONS,
    NormalizedRecord,
    PatchCordConfig,
    QcMetric,
    RecordTally,
    date_prefix,
    is_usable,
    normalize_record,
    parse_utc,
)
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.tables.asset_basics import build_asset_basics
from biodata_cache_pipeline.tables.assets_smartspim import build_assets_smartspim
from biodata_cache_pipeline.tables.platform_fib import build_platform_fib
from biodata_cache_pipeline.tables.platform_qc import build_platform_qc, qc_by_name
from biodata_cache_pipeline.tables.quality_control import build_quality_control
from biodata_cache_pipeline.tables.source_data import build_source_data



def _fixture_paths(version: str) -> list[Path]:
    return sorted((FIXTURE_RECORDS / version).glob("*.json")) if FIXTURE_RECORDS.is_dir() else []


V1_PATHS = _fixture_paths("v1")
V2_PATHS = _fixture_paths("v2")
ALL_PATHS = V1_PATHS + V2_PATHS


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _ids(paths):
    return [f"{p.parent.name}/{p.stem[:12]}" for p in paths]


def _get(node, dotted: str):
    for key in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _is_v2_layout(raw: dict) -> bool:
    return str(raw.get("schema_version", "")).startswith("2.")


class _ReadKeys(dict):
    """A record that writes down which of its top-level keys are read."""

    def __init__(self, raw: dict):
        super().__init__(raw)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


@needs_fixture_records
@pytest.mark.parametrize("path", ALL_PATHS, ids=_ids(ALL_PATHS))
def test_only_the_record_sections_are_read(path):
    """A source may hand the normaliser only `RECORD_SECTIONS` (the asset folders do): the record
    is the same, and no other top-level field is read."""
    raw = _load(path)
    watched = _ReadKeys(raw)
    whole = normalize_record(watched)
    assert watched.read <= set(RECORD_SECTIONS)
    assert normalize_record({key: value for key, value in raw.items() if key in RECORD_SECTIONS}) == whole
    assert set(raw) - set(RECORD_SECTIONS), "the fixture holds sections no table reads (its instrument, say)"


# --- fixtures: never raise, no problems on valid records --------------------------------------


@needs_fixture_records
def test_fixture_folder_holds_the_documented_records():
    assert len(V1_PATHS) == 12
    assert {p.name for p in V2_PATHS} == {"fiber_example3.json", "v2_derived.json", "v2_raw.json"}


@needs_fixture_records
@pytest.mark.parametrize("path", ALL_PATHS, ids=_ids(ALL_PATHS))
def test_fixture_normalises_cleanly(path):
    """Real, schema-valid records normalise without exception and without any problem."""
    record = normalize_record(_load(path))
    assert isinstance(record, NormalizedRecord)
    assert record.problems == []
    assert is_usable(record)
    _assert_well_typed(record)


# --- 2.x fixtures: every field straight from the JSON -----------------------------------------


V2_LAYOUT_PATHS = V2_PATHS + [p for p in V1_PATHS if p.name.startswith("9215a9e9")]


def _expected_v2_metric(m: dict) -> dict:
    history = m.get("status_history") or []
    return {
        "name": m["name"],
        "modality": m["modality"]["abbreviation"],
        "stage": m["stage"],
        "value": m["value"],
        "status": history[-1]["status"] if history else None,
        "tags": m.get("tags"),
        "object_type": m.get("object_type"),
    }


def _metric_dict(metric: QcMetric) -> dict:
    return {
        "name": metric.name,
        "modality": metric.modality,
        "stage": metric.stage,
        "value": metric.value,
        "status": metric.status,
        "tags": metric.tags,
        "object_type": metric.object_type,
    }


@needs_fixture_records
@pytest.mark.parametrize("path", V2_LAYOUT_PATHS, ids=_ids(V2_LAYOUT_PATHS))
def test_v2_fields_read_straight_from_json(path):
    raw = _load(path)
    assert _is_v2_layout(raw)
    r = normalize_record(raw)
    dd, subject, acq = raw["data_description"], raw["subject"], raw["acquisition"]
    details = subject["subject_details"]
    assert r.id == raw["_id"]
    assert r.name == raw["name"]
    assert r.location == raw["location"]
    assert r.last_modified == raw["_last_modified"]
    assert r.modalities == [m["abbreviation"] for m in dd["modalities"]]
    assert r.project_name == dd["project_name"]
    assert r.data_level == dd["data_level"]
    assert r.investigators == [i["name"] for i in dd["investigators"]]
    assert r.institution == dd["institution"]["abbreviation"]
    assert r.source_data == (dd.get("source_data") or [])
    assert r.subject_id == subject["subject_id"]
    assert r.genotype == details["genotype"]
    assert r.date_of_birth == details["date_of_birth"]
    assert r.acquisition_start_time == acq["acquisition_start_time"]
    assert r.acquisition_end_time == acq["acquisition_end_time"]
    assert r.acquisition_type == acq["acquisition_type"]
    assert r.instrument_id == acq["instrument_id"]
    assert r.experimenters == [e if isinstance(e, str) else e["name"] for e in acq["experimenters"]]
    assert r.code_ocean == raw["other_identifiers"]["Code Ocean"]
    processes = raw["processing"]["data_processes"]
    assert r.process_times == [(p["start_date_time"], p["end_date_time"]) for p in processes]
    assert r.pipeline_name == raw["processing"]["pipelines"][0]["name"]
    qc = raw.get("quality_control")
    assert r.has_qc == (qc is not None)
    if qc is None:
        assert r.qc_metrics == [] and r.qc_status == {}
    else:
        assert [_metric_dict(m) for m in r.qc_metrics] == [_expected_v2_metric(m) for m in qc["metrics"]]
        assert r.qc_status == qc["status"]


@needs_fixture_records
def test_v2_readme_facts():
    derived = normalize_record(_load(FIXTURE_RECORDS / "v2" / "v2_derived.json"))
    raw = normalize_record(_load(FIXTURE_RECORDS / "v2" / "v2_raw.json"))
    assert derived.source_data == ["828418_2026-02-13_18-31-13"] == [raw.name]
    assert raw.acquisition_type == "AindVrForaging"
    assert raw.modalities == ["behavior", "behavior-videos"]
    assert len(derived.qc_metrics) == 131
    assert all(isinstance(m.tags, dict) for m in derived.qc_metrics)
    fiber = normalize_record(_load(FIXTURE_RECORDS / "v2" / "fiber_example3.json"))
    assert len(fiber.qc_metrics) == 66
    assert [fiber_name for fiber_name, _ in fiber.probe_implants] == ["Fiber_0", "Fiber_1", "Fiber_2", "Fiber_3"]
    assert [acronym for _, acronym in fiber.probe_implants] == ["PL", "PL", "ACB", "ACB"]


@needs_fixture_records
def test_v2_fiber_data_streams():
    fiber = normalize_record(_load(FIXTURE_RECORDS / "v2" / "fiber_example3.json"))
    fib_stream = fiber.data_streams[0]
    assert fib_stream.connections == tuple((f"Patch Cord {i}", f"Fiber {i}") for i in range(4))
    assert [pc.patch_cord for pc in fib_stream.patch_cords] == [f"Patch Cord {i}" for i in range(4)]
    assert fib_stream.patch_cords[0].channels == (
        ("Fiber_0_Green", "calcium"),
        ("Fiber_0_Isosbestic", "control"),
        ("Fiber_0_Red", None),
    )
    # the behavior stream has no patch cord config
    assert fiber.data_streams[1].patch_cords == ()


# --- 1.x fixtures: the spec's field map -------------------------------------------------------


def _names(value, key: str) -> list[str]:
    """The spec reading of a list of names: strings as they are, objects give `key`."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):  # 0.x records store a single value instead of a list
        value = [value]
    return [v if isinstance(v, str) else v[key] for v in value]


def _expected_v1(raw: dict) -> dict:
    """tables.md "v1 records": 2.x paths where a record already has them, else the 1.x ones."""
    dd = raw["data_description"]
    subject = raw["subject"]
    session = raw.get("session") or {}
    acq = raw.get("acquisition") or {}
    rig = raw.get("rig") or {}
    processing = raw.get("processing") or {}
    pipeline = processing.get("processing_pipeline") or {}
    processes = processing.get("data_processes") or pipeline.get("data_processes") or []
    sources = dd.get("source_data") or dd.get("input_data_name")
    links = raw.get("other_identifiers") or raw.get("external_links") or {}
    institution = dd.get("institution")
    return {
        "id": raw["_id"],
        "name": raw["name"],
        "location": raw["location"],
        "last_modified": raw.get("_last_modified") or raw.get("last_modified"),
        "modalities": _names(dd.get("modalities") or dd.get("modality"), "abbreviation"),
        "project_name": dd.get("project_name"),
        "investigators": _names(dd.get("investigators"), "name"),
        "institution": institution["abbreviation"] if isinstance(institution, dict) else institution,
        "source_data": _names(sources, "name"),
        "subject_id": subject["subject_id"],
        "genotype": _get(subject, "subject_details.genotype") or subject.get("genotype"),
        "date_of_birth": _get(subject, "subject_details.date_of_birth") or subject.get("date_of_birth"),
        "acquisition_start_time": acq.get("acquisition_start_time")
        or session.get("session_start_time")
        or acq.get("session_start_time"),
        "acquisition_end_time": acq.get("acquisition_end_time")
        or session.get("session_end_time")
        or acq.get("session_end_time"),
        "acquisition_type": acq.get("acquisition_type") or session.get("session_type") or acq.get("session_type"),
        "instrument_id": acq.get("instrument_id") or session.get("rig_id") or rig.get("rig_id"),
        "experimenters": _names(
            acq.get("experimenters") or session.get("experimenter_full_name") or acq.get("experimenter_full_name"),
            "name",
        ),
        "code_ocean": links.get("Code Ocean"),
        "process_times": [(p.get("start_date_time"), p.get("end_date_time")) for p in processes],
    }


def _expected_v1_metrics(raw: dict) -> list[dict]:
    qc = raw.get("quality_control")
    if qc is None:
        return []
    if "metrics" in qc:
        return [_expected_v2_metric(m) for m in qc["metrics"]]
    metrics = []
    for evaluation in qc.get("evaluations") or []:
        for m in evaluation["metrics"]:
            history = m.get("status_history") or []
            metrics.append(
                {
                    "name": m["name"],
                    "modality": evaluation["modality"]["abbreviation"],
                    "stage": evaluation["stage"],
                    "value": m["value"],
                    "status": history[-1]["status"] if history else None,
                }
            )
    return metrics


@needs_fixture_records
@pytest.mark.parametrize("path", V1_PATHS, ids=_ids(V1_PATHS))
def test_v1_field_map(path):
    raw = _load(path)
    r = normalize_record(raw)
    for field_name, expected in _expected_v1(raw).items():
        assert getattr(r, field_name) == expected, field_name
    got = [
        {k: v for k, v in _metric_dict(m).items() if k not in ("tags", "object_type")} for m in r.qc_metrics
    ]
    assert got == _expected_v1_metrics(raw)
    assert r.has_qc == (raw.get("quality_control") is not None)


@needs_fixture_records
def test_v1_spot_checks_by_hand():
    """Hand-read values of two 1.x records (one 1.1.1 behavior record, one 0.2.7 SmartSPIM record)."""
    behavior = normalize_record(_load(FIXTURE_RECORDS / "v1" / "000099c0-eab2-4d83-bcdc-440954c1e60d.json"))
    assert behavior.modalities == ["behavior"]
    assert behavior.genotype == "Drd1a-Cre/wt;Oi9(H11-CAG-LSL-Cas9)/wt"
    assert behavior.date_of_birth == "2024-11-02"
    assert behavior.experimenters == ["Bowen Tan"]
    assert behavior.acquisition_start_time == "2025-04-13T15:30:30.162812-07:00"
    assert behavior.acquisition_end_time == "2025-04-13T16:45:35.279194-07:00"
    assert behavior.acquisition_type == "Uncoupled Baiting"
    assert behavior.instrument_id == "446_8A_20250409"
    assert behavior.code_ocean == ["bbccfa89-7dd0-439c-8b23-cf896990ea64"]
    assert behavior.last_modified == "2025-04-14T04:10:39.724Z"
    assert behavior.source_data == ["behavior_775510_2025-04-13_15-30-30"]
    assert behavior.process_times == []
    assert behavior.has_qc
    assert len(behavior.qc_metrics) == 10
    first = behavior.qc_metrics[0]
    assert (first.name, first.modality, first.stage, first.value, first.status) == (
        "dropped frames", "behavior-videos", "Raw data", 0, "Pass",
    )
    assert behavior.qc_metrics[1].modality == "behavior"
    assert behavior.qc_status == {}  # 1.x QC has no status map

    smartspim = normalize_record(_load(FIXTURE_RECORDS / "v1" / "07e83ff1-63b6-4389-8e85-5d23ecf6d9f9.json"))
    assert smartspim.modalities == ["SmartSPIM"]  # 0.x: a single modality string
    assert smartspim.experimenters == ["Erica Peterson"]  # 0.x: a single name string
    assert smartspim.acquisition_start_time == "2023-02-28T15:17:04"
    assert smartspim.instrument_id == "SmartSPIM1-1"
    assert smartspim.institution == "AIBS"
    assert smartspim.has_qc is False

    # session.rig_id wins over rig.rig_id (the spec's order)
    ophys = normalize_record(_load(FIXTURE_RECORDS / "v1" / "11b100c5-676f-4909-8d3b-3819b9de850c.json"))
    assert ophys.instrument_id == "MESO.1"
    assert ophys.has_qc and ophys.qc_metrics == []

    # 0.2.7 processing keeps data_processes at the top of processing
    stitched = normalize_record(_load(FIXTURE_RECORDS / "v1" / "0b6751de-091c-41d4-8740-ea210a0cb5d2.json"))
    assert len(stitched.process_times) == 14
    assert stitched.process_times[-1] == ("2023-02-03T17:56:09.870840", "2023-02-04T07:35:27.260981")


@needs_fixture_records
def test_v1_legacy_data_level_names():
    """0.x `raw data` is the 2.x `raw` (ambiguity: the spec is silent; a scientist reads it as raw)."""
    smartspim = normalize_record(_load(FIXTURE_RECORDS / "v1" / "07e83ff1-63b6-4389-8e85-5d23ecf6d9f9.json"))
    assert smartspim.data_level == "raw"


# --- hand-built 1.x records -------------------------------------------------------------------


def test_v1_session_fields_map_onto_acquisition():
    raw = {
        "_id": "1",
        "name": "behavior_1_2024-01-01_00-00-00",
        "created": "2024-01-01T00:00:00",
        "last_modified": "2024-02-01T00:00:00Z",
        "external_links": {"Code Ocean": ["abc"]},
        "data_description": {
            "modality": [{"abbreviation": "behavior"}, {"abbreviation": "fib"}],
            "input_data_name": "behavior_1_2023-12-31_00-00-00",
        },
        "subject": {"subject_id": "1", "genotype": "wt/wt", "date_of_birth": "2023-01-01"},
        "session": {
            "experimenter_full_name": ["Jane Doe", "bob"],
            "session_start_time": "2024-01-01T00:00:00-08:00",
            "session_end_time": "2024-01-01T01:00:00-08:00",
            "session_type": "Coupled Baiting",
            "rig_id": "447_1A_20240101",
        },
        "rig": {"rig_id": "other"},
        "processing": {"processing_pipeline": {"data_processes": [{"start_date_time": "2024-01-02 03:04:05"}]}},
        "quality_control": {
            "evaluations": [
                {
                    "modality": {"abbreviation": "fib"},
                    "stage": "Processing",
                    "metrics": [{"name": "m", "value": 1, "status_history": [{"status": "Fail"}, {"status": "Pass"}]}],
                }
            ]
        },
    }
    r = normalize_record(raw)
    assert r.problems == []
    assert r.last_modified == "2024-02-01T00:00:00Z"
    assert r.modalities == ["behavior", "fib"]
    assert r.source_data == ["behavior_1_2023-12-31_00-00-00"]
    assert r.genotype == "wt/wt" and r.date_of_birth == "2023-01-01"
    assert r.experimenters == ["Jane Doe", "bob"]
    assert r.acquisition_start_time == "2024-01-01T00:00:00-08:00"
    assert r.acquisition_end_time == "2024-01-01T01:00:00-08:00"
    assert r.acquisition_type == "Coupled Baiting"
    assert r.instrument_id == "447_1A_20240101"
    assert r.code_ocean == ["abc"]
    assert r.process_times == [("2024-01-02 03:04:05", None)]
    assert [(m.name, m.modality, m.stage, m.value, m.status) for m in r.qc_metrics] == [
        ("m", "fib", "Processing", 1, "Pass")
    ]


def test_v1_rig_id_when_session_has_none():
    r = normalize_record({"name": "x", "session": {"session_type": "t"}, "rig": {"rig_id": "323_EPHYS1_20230101"}})
    assert r.instrument_id == "323_EPHYS1_20230101"


def test_v1_acquisition_layout_fields():
    """A 1.x `acquisition` (SmartSPIM, exaSPIM) carries experimenter_full_name, session times and type."""
    r = normalize_record(
        {
            "name": "SmartSPIM_1_2024-01-01_00-00-00",
            "acquisition": {
                "experimenter_full_name": ["John Rohde"],
                "session_start_time": "2024-01-01T00:00:00",
                "session_end_time": "2024-01-02T00:00:00",
                "session_type": "Whole brain",
                "instrument_id": "440_SmartSPIM1_20240101",
            },
        }
    )
    assert r.experimenters == ["John Rohde"]
    assert r.acquisition_start_time == "2024-01-01T00:00:00"
    assert r.acquisition_end_time == "2024-01-02T00:00:00"
    assert r.acquisition_type == "Whole brain"
    assert r.instrument_id == "440_SmartSPIM1_20240101"


def test_two_x_field_wins_over_one_x_field():
    r = normalize_record(
        {
            "name": "x",
            "_last_modified": "2025-01-01T00:00:00Z",
            "last_modified": "2000-01-01T00:00:00Z",
            "data_description": {"modalities": [{"abbreviation": "fib"}], "modality": [{"abbreviation": "ecephys"}]},
            "subject": {"subject_details": {"genotype": "new"}, "genotype": "old"},
            "acquisition": {"experimenters": ["New Person"], "acquisition_start_time": "2025-01-01T00:00:00Z"},
            "session": {"experimenter_full_name": ["Old Person"], "session_start_time": "2000-01-01T00:00:00Z"},
            "other_identifiers": {"Code Ocean": ["new"]},
            "external_links": {"Code Ocean": ["old"]},
        }
    )
    assert r.last_modified == "2025-01-01T00:00:00Z"
    assert r.modalities == ["fib"]
    assert r.genotype == "new"
    assert r.experimenters == ["New Person"]
    assert r.acquisition_start_time == "2025-01-01T00:00:00Z"
    assert r.code_ocean == ["new"]


# --- malformed records ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, [], [{"name": "x"}], "record", 42, 1.5, True])
def test_non_dict_record(raw):
    r = normalize_record(raw)
    assert isinstance(r, NormalizedRecord)
    assert r.problems
    assert not is_usable(r)
    assert r.name is None and r.id is None and r.modalities == [] and r.qc_metrics == []


def test_null_sections_are_missing_not_problems():
    raw = {
        "_id": "id",
        "name": "n",
        "location": None,
        "data_description": None,
        "subject": None,
        "acquisition": None,
        "session": None,
        "rig": None,
        "processing": None,
        "procedures": None,
        "quality_control": None,
        "other_identifiers": None,
    }
    r = normalize_record(raw)
    assert r.problems == []
    assert (r.id, r.name, r.location) == ("id", "n", None)
    assert r.modalities == [] and r.experimenters == [] and r.investigators == [] and r.source_data == []
    assert r.subject_id is None and r.genotype is None and r.acquisition_start_time is None
    assert r.code_ocean is None and r.process_times == [] and r.pipeline_name is None
    assert r.has_qc is False and r.qc_metrics == [] and r.qc_status == {}
    assert r.data_streams == [] and r.probe_implants == []


def test_subject_id_integer_becomes_its_digits():
    r = normalize_record({"name": "x", "subject": {"subject_id": 828418}})
    assert r.subject_id == "828418"
    assert r.problems == []


def _metric_record(**metric) -> dict:
    return {"name": "x", "quality_control": {"metrics": [metric]}}


# (raw record, attribute, expected missing value, a word the problem must mention)
WRONG_TYPES = [
    ({"name": 5}, "name", None, "name"),
    ({"name": "x", "_id": ["a"]}, "id", None, "_id"),
    ({"name": "x", "_id": 1.5}, "id", None, "_id"),
    ({"name": "x", "location": {"a": 1}}, "location", None, "location"),
    ({"name": "x", "_last_modified": 1700000000}, "last_modified", None, "last_modified"),
    ({"name": "x", "data_description": "dd"}, "modalities", [], "data_description"),
    ({"name": "x", "data_description": ["dd"]}, "project_name", None, "data_description"),
    ({"name": "x", "data_description": {"modalities": 5}}, "modalities", [], "modalities"),
    ({"name": "x", "data_description": {"modalities": [{"abbreviation": 5}, {"abbreviation": "fib"}]}},
     "modalities", ["fib"], "modalities"),
    ({"name": "x", "data_description": {"modalities": [7, {"abbreviation": "fib"}]}}, "modalities", ["fib"],
     "modalities"),
    ({"name": "x", "data_description": {"project_name": ["p"]}}, "project_name", None, "project_name"),
    ({"name": "x", "data_description": {"data_level": 1}}, "data_level", None, "data_level"),
    ({"name": "x", "data_description": {"investigators": 3}}, "investigators", [], "investigators"),
    ({"name": "x", "data_description": {"investigators": [{"name": 3}, "Jane"]}}, "investigators", ["Jane"],
     "investigators"),
    ({"name": "x", "data_description": {"institution": 7}}, "institution", None, "institution"),
    ({"name": "x", "data_description": {"institution": {"abbreviation": 7}}}, "institution", None, "institution"),
    ({"name": "x", "data_description": {"source_data": 7}}, "source_data", [], "source_data"),
    ({"name": "x", "data_description": {"source_data": [7, "raw"]}}, "source_data", ["raw"], "source_data"),
    ({"name": "x", "data_description": {"input_data_name": 7}}, "source_data", [], "source_data"),
    ({"name": "x", "subject": []}, "subject_id", None, "subject"),
    ({"name": "x", "subject": {"subject_id": 1.5}}, "subject_id", None, "subject_id"),
    ({"name": "x", "subject": {"subject_id": True}}, "subject_id", None, "subject_id"),
    ({"name": "x", "subject": {"subject_details": "d"}}, "genotype", None, "subject_details"),
    ({"name": "x", "subject": {"subject_details": {"genotype": 3}}}, "genotype", None, "genotype"),
    ({"name": "x", "subject": {"subject_details": {"date_of_birth": 20200101}}}, "date_of_birth", None,
     "date_of_birth"),
    ({"name": "x", "subject": {"subject_details": {"year_of_birth": "2020"}}}, "year_of_birth", None,
     "year_of_birth"),
    ({"name": "x", "subject": {"subject_details": {"year_of_birth": True}}}, "year_of_birth", None,
     "year_of_birth"),
    ({"name": "x", "acquisition": 5}, "acquisition_start_time", None, "acquisition"),
    ({"name": "x", "acquisition": {"acquisition_start_time": 1234}}, "acquisition_start_time", None,
     "acquisition_start_time"),
    ({"name": "x", "acquisition": {"acquisition_end_time": [1]}}, "acquisition_end_time", None,
     "acquisition_end_time"),
    ({"name": "x", "acquisition": {"acquisition_type": {}}}, "acquisition_type", None, "acquisition_type"),
    ({"name": "x", "acquisition": {"instrument_id": 4}}, "instrument_id", None, "instrument_id"),
    ({"name": "x", "acquisition": {"experimenters": 5}}, "experimenters", [], "experimenters"),
    ({"name": "x", "acquisition": {"experimenters": [5, {"name": 6}, "Jane"]}}, "experimenters", ["Jane"],
     "experimenters"),
    ({"name": "x", "acquisition": {"subject_details": {"date_of_birth": 5}}}, "acquisition_date_of_birth", None,
     "date_of_birth"),
    ({"name": "x", "acquisition": {"data_streams": "streams"}}, "data_streams", [], "data_streams"),
    ({"name": "x", "other_identifiers": []}, "code_ocean", None, "other_identifiers"),
    ({"name": "x", "other_identifiers": {"Code Ocean": 5}}, "code_ocean", None, "Code Ocean"),
    ({"name": "x", "processing": "p"}, "process_times", [], "processing"),
    ({"name": "x", "processing": {"data_processes": {"a": 1}}}, "process_times", [], "data_processes"),
    ({"name": "x", "processing": {"data_processes": [5]}}, "process_times", [], "data_processes"),
    ({"name": "x", "processing": {"data_processes": [{"start_date_time": 7, "end_date_time": "e"}]}},
     "process_times", [(None, "e")], "start_date_time"),
    ({"name": "x", "processing": {"data_processes": [{"start_date_time": "s", "end_date_time": 7}]}},
     "process_times", [("s", None)], "end_date_time"),
    ({"name": "x", "processing": {"pipelines": "p"}}, "pipeline_name", None, "pipelines"),
    ({"name": "x", "processing": {"pipelines": [{"name": 3}]}}, "pipeline_name", None, "pipelines"),
    ({"name": "x", "procedures": {"subject_procedures": 5}}, "probe_implants", [], "subject_procedures"),
    ({"name": "x", "procedures": {"subject_procedures": [{"procedures": [
        {"object_type": "Probe implant", "implanted_device": 5}]}]}}, "probe_implants", [(None, None)],
     "implanted_device"),
    ({"name": "x", "procedures": {"subject_procedures": [{"procedures": [
        {"object_type": "Probe implant", "implanted_device": {"name": 5}}]}]}}, "probe_implants", [(None, None)],
     "name"),
    ({"name": "x", "quality_control": "qc"}, "has_qc", False, "quality_control"),
    ({"name": "x", "quality_control": {"metrics": 5}}, "qc_metrics", [], "metrics"),
    ({"name": "x", "quality_control": {"metrics": [5]}}, "qc_metrics", [], "metrics"),
    ({"name": "x", "quality_control": {"evaluations": 5}}, "qc_metrics", [], "evaluations"),
    ({"name": "x", "quality_control": {"evaluations": [{"metrics": "m"}]}}, "qc_metrics", [], "metrics"),
    ({"name": "x", "quality_control": {"status": ["Pass"]}}, "qc_status", {}, "status"),
    ({"name": "x", "quality_control": {"status": {"a": 5, "b": "Pass"}}}, "qc_status", {"b": "Pass"}, "status"),
    ({"name": "x", "session": 5}, "experimenters", [], "session"),
    ({"name": "x", "session": {"experimenter_full_name": 5}}, "experimenters", [], "experimenters"),
    ({"name": "x", "session": {"session_start_time": 5}}, "acquisition_start_time", None, "session_start_time"),
    ({"name": "x", "session": {"rig_id": 5}}, "instrument_id", None, "rig_id"),
    ({"name": "x", "external_links": "links"}, "code_ocean", None, "other_identifiers|external_links"),
]


@pytest.mark.parametrize(("raw", "attribute", "expected", "mentions"), WRONG_TYPES,
                         ids=[f"{i}-{w[1]}" for i, w in enumerate(WRONG_TYPES)])
def test_wrong_type_is_missing_and_a_problem(raw, attribute, expected, mentions):
    r = normalize_record(raw)
    assert getattr(r, attribute) == expected
    assert r.problems, "a wrong type must be written down in problems"
    words = mentions.lower().split("|")
    assert any(word in p.lower() for p in r.problems for word in words), r.problems
    _assert_well_typed(r)


METRIC_WRONG_TYPES = [
    ({"name": 5, "status_history": []}, "name", None, "name"),
    ({"name": "m", "modality": 7}, "modality", None, "modality"),
    ({"name": "m", "modality": {"abbreviation": 7}}, "modality", None, "modality"),
    ({"name": "m", "stage": 8}, "stage", None, "stage"),
    ({"name": "m", "object_type": 9}, "object_type", None, "object_type"),
    ({"name": "m", "status_history": "Pass"}, "status", None, "status_history"),
    ({"name": "m", "status_history": [{"status": 1}]}, "status", None, "status"),
    ({"name": "m", "status_history": [5]}, "status", None, "status_history"),
    ({"name": "m", "tags": 5}, "tags", None, "tags"),
]


@pytest.mark.parametrize(("metric", "attribute", "expected", "mentions"), METRIC_WRONG_TYPES,
                         ids=[w[1] + str(i) for i, w in enumerate(METRIC_WRONG_TYPES)])
def test_wrong_type_inside_a_qc_metric(metric, attribute, expected, mentions):
    r = normalize_record(_metric_record(**metric))
    assert len(r.qc_metrics) == 1
    assert getattr(r.qc_metrics[0], attribute) == expected
    assert any(mentions.lower() in p.lower() for p in r.problems), r.problems


def test_qc_metric_value_is_kept_as_stored():
    """`value` can be anything (the table turns it to text): no problem for a dict, list or number."""
    for value in ({"a": 1}, [1, 2], 3, 1.5, True, None, "text"):
        r = normalize_record(_metric_record(name="m", value=value))
        assert r.qc_metrics[0].value == value
        assert r.problems == []


def test_status_is_the_last_entry_of_the_history():
    r = normalize_record(_metric_record(name="m", status_history=[{"status": "Pending"}, {"status": "Fail"}]))
    assert r.qc_metrics[0].status == "Fail"
    r = normalize_record(_metric_record(name="m", status_history=[]))
    assert r.qc_metrics[0].status is None
    r = normalize_record(_metric_record(name="m"))
    assert r.qc_metrics[0].status is None


def test_wrong_types_inside_data_streams():
    raw = {
        "name": "x",
        "acquisition": {
            "data_streams": [
                5,
                {
                    "connections": [{"source_device": 5, "target_device": "Fiber 0"}, "c"],
                    "configurations": [
                        {"object_type": "Patch cord config", "device_name": 6,
                         "channels": [{"channel_name": 7, "intended_measurement": 8}, "ch"]},
                        "cfg",
                    ],
                },
            ]
        },
    }
    r = normalize_record(raw)
    assert r.problems
    _assert_well_typed(r)
    assert len(r.data_streams) == 1
    stream = r.data_streams[0]
    assert stream.connections == ((None, "Fiber 0"),)
    assert stream.patch_cords[0].patch_cord is None
    assert stream.patch_cords[0].channels == ((None, None),)
    for word in ("data_streams", "source_device", "device_name", "channel_name", "intended_measurement"):
        assert any(word in p for p in r.problems), (word, r.problems)


# --- property-style loop: mutate every field of every fixture to wrong types ------------------


BAD_VALUES = (None, 42, "text", [7, None, {"x": 1}], {"unexpected": True}, True, 2.5)


def _paths(node, prefix=()):
    """Every path into `node`; for lists, the first and the last element."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list) and node:
        yield from _paths(node[0], prefix + (0,))
        if len(node) > 1:
            yield from _paths(node[-1], prefix + (len(node) - 1,))


def _mutated(raw, path, value):
    """Set `value` at `path` in place; return a function restoring the original."""
    if not path:
        raise ValueError("the root is mutated separately")
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    original = parent[path[-1]]
    parent[path[-1]] = value

    def restore():
        parent[path[-1]] = original

    return restore


def _assert_well_typed(r: NormalizedRecord) -> None:
    for name in ("id", "name", "location", "last_modified", "project_name", "data_level", "institution",
                 "subject_id", "genotype", "date_of_birth", "acquisition_date_of_birth", "acquisition_start_time",
                 "acquisition_end_time", "acquisition_type", "instrument_id", "pipeline_name"):
        value = getattr(r, name)
        assert value is None or isinstance(value, str), (name, value)
    assert r.year_of_birth is None or (isinstance(r.year_of_birth, int) and not isinstance(r.year_of_birth, bool))
    for name in ("modalities", "investigators", "source_data", "experimenters"):
        value = getattr(r, name)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), (name, value)
    assert r.code_ocean is None or all(isinstance(v, str) for v in r.code_ocean)
    for start, end in r.process_times:
        assert start is None or isinstance(start, str)
        assert end is None or isinstance(end, str)
    for fiber, acronym in r.probe_implants:
        assert fiber is None or isinstance(fiber, str)
        assert acronym is None or isinstance(acronym, str)
    for stream in r.data_streams:
        assert isinstance(stream, DataStream)
        for source, target in stream.connections:
            assert source is None or isinstance(source, str), stream
            assert target is None or isinstance(target, str), stream
        for config in stream.patch_cords:
            assert isinstance(config, PatchCordConfig)
            assert config.patch_cord is None or isinstance(config.patch_cord, str), config
            for channel, measurement in config.channels:
                assert channel is None or isinstance(channel, str), config
                assert measurement is None or isinstance(measurement, str), config
    assert isinstance(r.has_qc, bool)
    for m in r.qc_metrics:
        for name in ("name", "modality", "stage", "status", "object_type"):
            value = getattr(m, name)
            assert value is None or isinstance(value, str), (name, value)
        assert m.tags is None or isinstance(m.tags, (dict, list))
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in r.qc_status.items())
    assert isinstance(r.problems, list) and all(isinstance(p, str) for p in r.problems)


@needs_fixture_records
@pytest.mark.parametrize("path", ALL_PATHS, ids=_ids(ALL_PATHS))
def test_mutating_any_field_to_a_wrong_type_never_raises(path):
    raw = _load(path)
    pristine = copy.deepcopy(raw)
    for i, field_path in enumerate(list(_paths(raw))):
        if not field_path:
            continue
        for value in BAD_VALUES:
            restore = _mutated(raw, field_path, value)
            try:
                record = normalize_record(raw)
            except Exception as error:  # pragma: no cover - the failure message is the point
                pytest.fail(f"normalize_record raised {error!r} with {field_path} = {value!r}")
            finally:
                restore()
            _assert_well_typed(record)
    assert raw == pristine  # the normaliser never changes its input


@needs_fixture_records
def test_tables_survive_malformed_records(tmp_path):
    """General rule: one malformed record never aborts a table. Every table build function runs
    over a corpus in which each field of each fixture was given a wrong type once."""
    records = []
    for path in ALL_PATHS:
        raw = _load(path)
        for i, field_path in enumerate(p for p in _paths(raw) if p):
            if isinstance(field_path[0], str) and field_path[0] == "quality_control" and i % 7:
                continue  # QC metric paths are many; one in seven is enough here
            restore = _mutated(raw, field_path, BAD_VALUES[i % len(BAD_VALUES)])
            records.append(normalize_record(raw))
            restore()
    records += [normalize_record(x) for x in (None, 5, "x", [], {"name": None}, {"name": 3, "_id": 4})]
    basics = build_asset_basics(snapshot_rows(records))
    assert basics.num_rows == sum(1 for r in records if is_usable(r))
    source = build_source_data(records)
    subjects = sorted({r.subject_id for r in records if r.subject_id is not None})
    build_quality_control(snapshot_rows(records), subjects)
    qc = qc_by_name(snapshot_rows(records))
    for platform in ("spim", "fib", "vr", "dynamic_foraging", "slap2"):
        build_platform_qc(basics, qc, platform)
    build_platform_fib(records)
    build_assets_smartspim(snapshot_rows(records), source, OpenDataStore(str(tmp_path)))


# --- parse_utc, date_prefix, is_usable, RecordTally -------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-13T18:31:13Z", datetime(2026, 2, 13, 18, 31, 13, tzinfo=timezone.utc)),
        ("2025-04-13T15:30:30-07:00", datetime(2025, 4, 13, 22, 30, 30, tzinfo=timezone.utc)),
        ("2023-02-28T15:17:04", datetime(2023, 2, 28, 15, 17, 4, tzinfo=timezone.utc)),  # naive is UTC
        ("2025-09-12 22:56:11.941417+00:00", datetime(2025, 9, 12, 22, 56, 11, 941417, tzinfo=timezone.utc)),
        ("2024-11-02", datetime(2024, 11, 2, tzinfo=timezone.utc)),
        ("not a date", None),
        ("", None),
        (None, None),
        (20240101, None),
    ],
)
def test_parse_utc(value, expected):
    parsed = parse_utc(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-02T03:04:05", "2025-01-02"),
        ("2025-01-02 03:04:05", "2025-01-02"),
        ("2025-09-12 22:56:11.941417+00:00", "2025-09-12"),
        ("garbage", None),
        (None, None),
        (5, None),
    ],
)
def test_date_prefix(value, expected):
    assert date_prefix(value) == expected


def test_is_usable():
    assert is_usable(normalize_record({"name": "x"}))
    assert is_usable(normalize_record({"_id": "x"}))
    assert not is_usable(normalize_record({"subject": {"subject_id": "1"}}))


def test_record_tally_counts_records_with_problems():
    raws = [{"name": "good"}] + [{"name": f"bad{i}", "subject": 5} for i in range(7)] + [None]
    tally = RecordTally()
    seen = list(tally.track(normalize_record(r) for r in raws))
    assert len(seen) == len(raws)  # tracking passes every record through
    assert tally.count == 8
    metadata = tally.metadata()
    assert metadata["skipped_records"] == 8
    reasons = metadata["skipped_reasons"].split("\n")
    assert len(reasons) == RecordTally.MAX_REASONS
    assert reasons[0].startswith("bad0")


def test_record_tally_without_problems():
    tally = RecordTally()
    list(tally.track([normalize_record({"name": "a"})]))
    assert tally.metadata()["skipped_records"] == 0
