"""Asset checks: what they detect (pure functions) and that they fail in Dagster when storage is wrong."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, materialize

from biodata_cache_pipeline.assets import ALL_ASSETS
from biodata_cache_pipeline.assets.checks import ALL_CHECKS
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.table_checks import (
    duplicated_values,
    partition_column_problems,
    partition_column_proven,
    schema_problems,
)
from biodata_cache_pipeline.tables import TABLES
from biodata_cache_pipeline.tables.unique_values import UNIQUE_GENOTYPES
from biodata_cache_pipeline.version import version_folder

from handmade_corpus import asset_name, use_local_environment, write_corpus, write_record

VERSION = version_folder()


def test_schema_problems():
    spec = UNIQUE_GENOTYPES
    assert schema_problems(spec, spec.schema) == []
    assert schema_problems(spec, pa.schema([("genotype", pa.int64())])) == ["column genotype is int64, declared string"]
    assert schema_problems(spec, pa.schema([("other", pa.string())])) == [
        "columns ['other'] differ from the declared ['genotype']"
    ]


def test_every_declared_schema_survives_a_parquet_round_trip(tmp_path):
    for spec in TABLES.values():
        pq.write_table(spec.empty(), tmp_path / "t.pqt", use_compliant_nested_type=True)
        assert schema_problems(spec, pq.read_schema(tmp_path / "t.pqt")) == [], spec.name


def test_duplicated_values():
    assert duplicated_values(pa.chunked_array([["a", "b", "a", None, None, "c"]])) == [None, "a"]
    assert duplicated_values(pa.array(["a", "b"])) == []


def test_partition_column_problems():
    assert partition_column_problems("s1", pa.array(["s1", "s1"])) == []
    assert partition_column_problems("s1", pa.array(["s1", None, "s2"])) == [
        "s1: 1 rows with a null partition key",
        "s1: rows of other partitions ['s2']",
    ]


@pytest.mark.parametrize(
    ("values", "proven"),
    [(["s1", "s1"], True), ([], True), (["s1", None], False), (["s1", "s2"], False), (["s0", "s1"], False)],
)
def test_partition_column_proven_by_statistics(tmp_path, values, proven):
    path = tmp_path / "data.pqt"
    pq.write_table(pa.table({"name": ["m"] * len(values), "subject_id": pa.array(values, pa.string())}), path)
    assert partition_column_proven("s1", pq.read_metadata(path), "subject_id") is proven
    pq.write_table(pa.table({"subject_id": pa.array(values, pa.string())}), path, write_statistics=False)
    assert partition_column_proven("s1", pq.read_metadata(path), "subject_id") is (not values)


@pytest.fixture()
def built(tmp_path, monkeypatch):
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    write_corpus(samples, ["1", "2"])
    write_record(samples, asset_name("3", 0), "3", record_id="id-shared")
    write_record(samples, asset_name("3", 1), "3", record_id="id-shared")
    use_local_environment(monkeypatch, samples, cache)
    instance = DagsterInstance.ephemeral()
    assert not materialize_all(instance, say=lambda _: None).failures
    return cache / VERSION, instance


def latest_check(instance: DagsterInstance, asset: str, check: str):
    record = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey(asset), check), limit=1
    )[0]
    return record.event.dagster_event.event_specific_data


def test_checks_run_with_every_build_and_report_duplicate_ids(built):
    _, instance = built
    for name in TABLES:
        assert latest_check(instance, name, "schema_matches_declaration").passed, name
    assert latest_check(instance, "quality_control", "no_null_partition_keys").passed
    duplicates = latest_check(instance, "asset_basics", "id_unique")
    assert not duplicates.passed
    assert duplicates.metadata["problems"].value == "_id 'id-shared' occurs more than once"


def run_check(instance: DagsterInstance, asset: str, check: str):
    """One check alone, as the UI launches it; its evaluation."""
    key = AssetCheckKey(AssetKey(asset), check)
    result = materialize([*ALL_ASSETS, *ALL_CHECKS], selection=AssetSelection.checks(key), instance=instance,
                         resources=pipeline_resources())
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_schema_check_reads_the_stored_file_back(built):
    version, instance = built
    pq.write_table(pa.table({"genotype": pa.array([1, 2], pa.int64())}), version / "unique_genotypes.pqt")

    evaluation = run_check(instance, "unique_genotypes", "schema_matches_declaration")

    assert not evaluation.passed
    assert evaluation.metadata["problems"].value == "column genotype is int64, declared string"


def test_partition_check_reads_a_partition_whose_statistics_show_another_subject(built):
    version, instance = built
    partition = version / "qc" / "subject_id=1" / "data.pqt"
    rows = pq.read_table(partition)
    assert rows.num_rows
    foreign = rows.set_column(rows.schema.get_field_index("subject_id"), "subject_id",
                              pa.array(["1"] * (rows.num_rows - 1) + [None], pa.string()))
    pq.write_table(foreign, partition)

    evaluation = run_check(instance, "quality_control", "no_null_partition_keys")

    assert not evaluation.passed
    assert evaluation.metadata["problems"].value == "1: 1 rows with a null partition key"
