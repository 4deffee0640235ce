"""Hostile inputs (issue 12, points 6 and 9): a record nested 100,000 levels deep, a QC value nested
900 levels, a string holding a lone surrogate (the JSON escape `"\\udcff"`), and a `location` that
leads out of the open-data root. Each bad record is a skipped record whose reason names its folder
or `_id`; the other records and the tables are built as without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from docdb_standin import DocDbStandIn
from snapshot_rows import snapshot_rows

from biodata_cache_pipeline.records import MAX_VALUE_DEPTH, RecordTally, normalize_record
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.snapshot import RecordSnapshot, to_batch
from biodata_cache_pipeline.snapshot_refresh import refresh_snapshot
from biodata_cache_pipeline.sources.docdb import DocDbSource
from biodata_cache_pipeline.sources.local_folder import LocalFolderSource
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS_ATTRIBUTES, build_asset_basics
from biodata_cache_pipeline.tables.behavior_curriculum import build_behavior_curriculum
from biodata_cache_pipeline.tables.platform_qc import (
    PLATFORM_QC_ATTRIBUTES,
    PLATFORMS,
    build_platform_qc,
    platform_assets,
    qc_by_name,
)
from biodata_cache_pipeline.tables.quality_control import QUALITY_CONTROL_ATTRIBUTES, build_quality_control

SURROGATE = "\\udcff"  # the JSON escape, as it stands in a file: json reads it as a lone surrogate


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text of `leaf` inside `depth` arrays."""
    return "[" * depth + leaf + "]" * depth


def nested_objects(depth: int) -> str:
    """JSON text of `1` inside `depth` objects."""
    return '{"a":' * depth + "1" + "}" * depth


def under_a_deep_stack(call, frames: int = 150):
    """`call()` beneath `frames` more Python frames: as deep as a Dagster asset's code runs."""
    return call() if frames == 0 else under_a_deep_stack(call, frames - 1)


def qc_record(
    name: str, value: str = '"x"', tags: str = "null", status: str = '{"behavior": "Pass"}', ident: str | None = None
) -> str:
    """A record's JSON text with one QC metric (`_id`: `id-<ident or name>`); `value`, `tags` and
    `status` are JSON text."""
    return (
        f'{{"_id": "id-{ident or name}", "name": "{name}", "subject": {{"subject_id": "123456"}},'
        f' "data_description": {{"modalities": [{{"abbreviation": "behavior"}}]}},'
        f' "acquisition": {{"acquisition_type": "Uncoupled Baiting"}},'
        f' "quality_control": {{"metrics": [{{"name": "m", "modality": "behavior", "stage": "Processing",'
        f' "value": {value}, "tags": {tags}, "status_history": [{{"status": "Pass"}}]}}], "status": {status}}}}}'
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_record(root: Path, folder: str, text: str, file: str = "metadata.nd.json") -> None:
    write(root / folder / file, text)


def read_one(root: Path, folder: str):
    changed = LocalFolderSource(str(root)).read_changed([(folder, None, None)])
    [(key, _, record)] = changed.records
    assert key == folder
    return record


# -- point 6: too deep ------------------------------------------------------------------------


@pytest.mark.parametrize("file", ["metadata.nd.json", "subject.json"])
def test_a_record_nested_100000_levels_is_unreadable_naming_its_folder(tmp_path, file):
    folder = "deep_2025-01-01_00-00-00"
    write_record(tmp_path, folder, nested(100_000) if file == "metadata.nd.json" else nested_objects(100_000), file)
    record = read_one(tmp_path, folder)
    assert record.problems and record.problems[0].startswith(f"{folder}/{file}: unreadable (")
    to_batch([(folder, None, record)])


def test_a_qc_value_nested_900_levels_is_a_problem_not_a_value():
    record = normalize_record(json.loads(qc_record("deepqc", value=nested(900), tags=nested(900))))
    [metric] = record.qc_metrics
    assert (metric.value, metric.tags, metric.name) == (None, None, "m")
    assert record.problems == [
        f"quality_control.metrics[].value: nested deeper than {MAX_VALUE_DEPTH} levels",
        f"quality_control.metrics[].tags: nested deeper than {MAX_VALUE_DEPTH} levels",
    ]
    at_the_limit = (nested(MAX_VALUE_DEPTH), f'{{"k": {nested(MAX_VALUE_DEPTH - 1)}}}')
    record = normalize_record(json.loads(qc_record("limit", value=at_the_limit[0], tags=at_the_limit[1])))
    assert record.problems == []
    [metric] = record.qc_metrics
    assert (metric.value, metric.tags) == tuple(json.loads(text) for text in at_the_limit)


def test_a_qc_value_nested_900_levels_goes_through_the_snapshot_under_a_framework_stack(tmp_path):
    """In-process (workers=1) under Dagster's call depth, writing the value as JSON text raised
    RecursionError."""
    write_record(tmp_path / "records", "deepqc_2025-01-01_00-00-00", qc_record("deepqc", value=nested(900)))
    source = LocalFolderSource(str(tmp_path / "records"))
    report = under_a_deep_stack(lambda: refresh_snapshot(source, None, str(tmp_path / "s.parquet"), workers=1))
    assert report.skipped_reasons == [
        f"deepqc: quality_control.metrics[].value: nested deeper than {MAX_VALUE_DEPTH} levels"
    ]


# -- point 6: lone surrogates -----------------------------------------------------------------


SURROGATE_CASES = {
    # case: (record JSON text, attribute that loses the string, problem)
    "name": (qc_record(f"x{SURROGATE}", ident="x"), "name", "name: expected a string without lone surrogates"),
    "subject_id": (
        qc_record("s").replace('"123456"', f'"1{SURROGATE}"'),
        "subject_id",
        "subject.subject_id: expected a string without lone surrogates",
    ),
    "modality": (
        qc_record("m").replace('{"abbreviation": "behavior"}', f'"b{SURROGATE}"'),
        "modalities",
        "data_description.modalities[]: expected a string without lone surrogates",
    ),
    "qc value": (
        qc_record("v", value=f'"a{SURROGATE}b"'),
        "qc_metrics",
        "quality_control.metrics[].value: holds a string with a lone surrogate",
    ),
    "qc value inside a list": (
        qc_record("l", value=f'[1, ["a{SURROGATE}"]]'),
        "qc_metrics",
        "quality_control.metrics[].value: holds a string with a lone surrogate",
    ),
    "qc value key": (
        qc_record("k", value=f'{{"k{SURROGATE}": 1}}'),
        "qc_metrics",
        "quality_control.metrics[].value: holds a string with a lone surrogate",
    ),
    "qc tag": (
        qc_record("t", tags=f'{{"probe": "p{SURROGATE}"}}'),
        "qc_metrics",
        "quality_control.metrics[].tags: holds a string with a lone surrogate",
    ),
    "qc metric name": (
        qc_record("n").replace('"name": "m"', f'"name": "m{SURROGATE}"'),
        "qc_metrics",
        "quality_control.metrics[].name: expected a string without lone surrogates",
    ),
    "qc status key": (
        qc_record("st", status=f'{{"behavior{SURROGATE}": "Pass", "b": "Pass"}}'),
        "qc_status",
        "quality_control.status: a key holds a lone surrogate",
    ),
}


@pytest.mark.parametrize("case", SURROGATE_CASES)
def test_a_string_with_a_lone_surrogate_is_a_problem_and_the_tables_build(case):
    text, attribute, problem = SURROGATE_CASES[case]
    assert SURROGATE in text
    raw = json.loads(text)
    record = normalize_record(raw)
    clean = normalize_record(json.loads(text.replace(SURROGATE, "")))
    assert record.problems == [problem]
    assert getattr(record, attribute) != getattr(clean, attribute)
    for other in ("id", "location", "subject_id", "modalities", "has_qc"):
        if other != attribute:
            assert getattr(record, other) == getattr(clean, other)
    # every column and table takes the record
    to_batch([("key", None, record)])
    basics = build_asset_basics(snapshot_rows([record]))
    build_quality_control(snapshot_rows([record]), {"123456"})
    build_platform_qc(basics, qc_by_name(snapshot_rows([record])), "dynamic_foraging")


def test_the_skipped_reason_of_a_record_without_a_readable_name_names_its_id():
    record = normalize_record(json.loads(qc_record(f"x{SURROGATE}", ident="x")))
    tally = RecordTally()
    list(tally.track([record]))
    assert tally.reasons == ["id-x: name: expected a string without lone surrogates"]


def test_docdb_records_with_lone_surrogates_are_skipped_naming_their_id(tmp_path):
    documents = [
        {**json.loads(qc_record("good")), "_last_modified": "2025-01-01"},
        {**json.loads(qc_record(f"bad{SURROGATE}", ident="bad")), "_last_modified": "2025-01-01"},
        {**json.loads(qc_record("badqc", value=f'"{SURROGATE}"')), "_last_modified": "2025-01-01"},
        {**json.loads(qc_record("badtime")), "_last_modified": json.loads(f'"2025{SURROGATE}"')},
    ]
    with DocDbStandIn(documents) as server:
        source = DocDbSource(loopback_port=server.port)
        report = refresh_snapshot(source, None, str(tmp_path / "s.parquet"), workers=1)
        previous = RecordSnapshot(pq.ParquetFile(tmp_path / "s.parquet"))
        again = refresh_snapshot(source, previous, str(tmp_path / "t.parquet"), workers=1)
    assert (report.records, report.skipped) == (4, 3)
    assert report.skipped_reasons == [
        "id-bad: name: expected a string without lone surrogates",
        "badqc: quality_control.metrics[].value: holds a string with a lone surrogate",
        "badtime: _last_modified: expected a string without lone surrogates",
    ]
    assert again.unchanged  # the escaped signature of `badtime` is stable
    rows = pq.read_table(tmp_path / "s.parquet").to_pylist()
    assert [(r["key"], r["name"]) for r in rows] == [
        ("id-bad", None), ("id-badqc", "badqc"), ("id-badtime", "badtime"), ("id-good", "good")
    ]


# -- point 6: the build goes on -----------------------------------------------------------------


HOSTILE_FOLDERS = {
    "000000-deep_2025-01-01_00-00-00": nested(100_000),
    "000000-deepqc_2025-01-01_00-00-00": qc_record("000000-deepqc_2025-01-01_00-00-00", value=nested(900)),
    "000000-name_2025-01-01_00-00-00": qc_record(f"x{SURROGATE}", ident="x"),
    "000000-qcvalue_2025-01-01_00-00-00": qc_record("000000-qcvalue_2025-01-01_00-00-00", value=f'"{SURROGATE}"'),
}


def test_hostile_folders_are_skipped_and_every_other_record_and_table_is_built(tmp_path):
    clean = tmp_path / "clean"
    generate_corpus(clean, assets=40, seed=7)
    hostile = tmp_path / "hostile"
    shutil.copytree(clean, hostile)
    for folder, text in HOSTILE_FOLDERS.items():
        write_record(hostile, folder, text)

    expected = refresh_snapshot(LocalFolderSource(str(clean)), None, str(tmp_path / "clean.parquet"), workers=1)
    source = LocalFolderSource(str(hostile))
    in_workers = refresh_snapshot(source, None, str(tmp_path / "workers.parquet"), workers=2, chunk_size=3)
    in_process = under_a_deep_stack(
        lambda: refresh_snapshot(source, None, str(tmp_path / "process.parquet"), workers=1)
    )
    assert (tmp_path / "workers.parquet").read_bytes() == (tmp_path / "process.parquet").read_bytes()
    assert in_workers == in_process
    assert (in_workers.records, in_workers.skipped) == (expected.records + 4, expected.skipped + 4)
    assert in_workers.skipped_reasons[:4] == [
        "000000-deep_2025-01-01_00-00-00: 000000-deep_2025-01-01_00-00-00/metadata.nd.json: unreadable "
        "(nested too deeply to read)",
        "000000-deepqc_2025-01-01_00-00-00: quality_control.metrics[].value: "
        f"nested deeper than {MAX_VALUE_DEPTH} levels",
        "id-x: name: expected a string without lone surrogates",
        "000000-qcvalue_2025-01-01_00-00-00: quality_control.metrics[].value: holds a string with a lone surrogate",
    ]
    # the other records: exactly the rows of the clean corpus
    rows = pq.read_table(tmp_path / "workers.parquet")
    others = rows.filter(pa.compute.invert(pa.compute.is_in(rows.column("key"), pa.array(list(HOSTILE_FOLDERS)))))
    assert others.equals(pq.read_table(tmp_path / "clean.parquet"))

    # the tables, built from the snapshot under a framework's call depth
    snapshot = RecordSnapshot(pq.ParquetFile(tmp_path / "workers.parquet"))

    def build():
        basics = build_asset_basics(snapshot.table(ASSET_BASICS_ATTRIBUTES))
        qc = build_quality_control(snapshot.table(QUALITY_CONTROL_ATTRIBUTES), {"123456"})
        # as the platform_qc asset reads it; the nameless "id-x" is an asset of dynamic_foraging
        qc_rows = snapshot.table(PLATFORM_QC_ATTRIBUTES, where=("name", platform_assets(basics, PLATFORMS)))
        platforms = {p: build_platform_qc(basics, qc_by_name(qc_rows), p) for p in PLATFORMS}
        return basics, qc, platforms

    basics, qc, platforms = under_a_deep_stack(build)
    names = set(basics.column("name").to_pylist())
    assert {"000000-deepqc_2025-01-01_00-00-00", "000000-qcvalue_2025-01-01_00-00-00"} <= names
    assert "000000-deep_2025-01-01_00-00-00" not in names  # unreadable: no name, no _id
    assert [(r["asset_name"], r["value"]) for r in qc["123456"].to_pylist()] == [
        (None, "x"),
        ("000000-deepqc_2025-01-01_00-00-00", None),
        ("000000-qcvalue_2025-01-01_00-00-00", None),
    ]
    foraging = platforms["dynamic_foraging"].to_pylist()
    assert {r["asset_name"] for r in foraging} == {
        "000000-deepqc_2025-01-01_00-00-00", "000000-qcvalue_2025-01-01_00-00-00"
    }


# -- open-data files ----------------------------------------------------------------------------


def trainer_state(curriculum: str) -> str:
    return f'{{"curriculum": {{"name": "{curriculum}"}}, "stage": {{"name": "S"}}}}'


def curriculum_of(location: str, store: OpenDataStore) -> list[dict]:
    basics = build_asset_basics(snapshot_rows(
        [normalize_record({"name": "A", "location": location, "data_description": {"modalities": ["behavior"]}})]
    ))
    table, _ = build_behavior_curriculum(basics, store)
    return table.to_pylist()


def test_a_trainer_state_nested_100000_levels_or_with_a_lone_surrogate_gives_no_curriculum(tmp_path):
    root = tmp_path / "open-data"
    write(root / "deep" / "behavior" / "trainer_state.json", nested_objects(100_000))
    write(root / "odd" / "behavior" / "trainer_state.json", trainer_state(f"c{SURROGATE}"))
    store = OpenDataStore(str(root))
    assert store.read_json("s3://aind-open-data/deep", "behavior", "trainer_state.json") is None
    assert curriculum_of("s3://aind-open-data/deep", store) == [
        {"asset_name": "A", "curriculum_name": None, "stage_name": None, "stage_node_id": None}
    ]
    assert curriculum_of("s3://aind-open-data/odd", store) == [
        {"asset_name": "A", "curriculum_name": None, "stage_name": "S", "stage_node_id": None}
    ]


# -- point 9: locations stay inside the store root ------------------------------------------------


LOCATIONS_OUT_OF_THE_ROOT = (
    "s3://aind-open-data/../outside",
    "s3://aind-open-data/x/../../outside",
    "{root}/../outside",
    "{root}/x/../../outside",
    "/anywhere/..",
    "../../outside",
)


def test_a_location_never_leads_out_of_the_open_data_root(tmp_path):
    root = tmp_path / "open-data"
    write(root / "inside" / "behavior" / "trainer_state.json", trainer_state("inside"))
    write(tmp_path / "outside" / "behavior" / "trainer_state.json", trainer_state("SECRET"))
    write(tmp_path / "behavior" / "trainer_state.json", trainer_state("SECRET"))  # the root's parent as an asset
    store = OpenDataStore(str(root))
    for location in (location.format(root=root) for location in LOCATIONS_OUT_OF_THE_ROOT):
        assert store.resolve(location, "behavior") is None, location
        assert store.read_json(location, "behavior", "trainer_state.json") is None, location
        assert curriculum_of(location, store)[0]["curriculum_name"] is None, location
    assert curriculum_of("s3://aind-open-data/inside", store)[0]["curriculum_name"] == "inside"
    assert curriculum_of(f"{root}/inside", store)[0]["curriculum_name"] == "inside"
