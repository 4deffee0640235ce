"""Asset checks: what they detect (pure functions), that they fail their run when storage is wrong,
and that the IO manager refuses a build breaking a declared constraint before writing anything."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance, asset, materialize

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_client.schema.unique_values import UNIQUE_GENOTYPES
from biodata_cache_pipeline.assets import ALL_ASSETS, SUBJECT_PARTITIONS
from biodata_cache_pipeline.assets.checks import ALL_CHECKS
from biodata_cache_pipeline.automation import partition_range_tags
from biodata_cache_pipeline.cli import materialize_all, print_failures
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.io_manager import IO_MANAGER_KEY, CacheIOManager
from biodata_cache_pipeline.table_checks import (
    ConstraintViolation,
    constraint_problems,
    duplicated_values,
    partition_column_problems,
    partition_column_proven,
    schema_problems,
)

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


def test_constraint_problems():
    ids = ASSET_BASICS.from_columns({**{c: [None] * 5 for c in ASSET_BASICS.column_names}, "_id": ["a", "b", "a", None, None]})
    assert constraint_problems(ASSET_BASICS, ids) == ["_id 'a' occurs more than once"]  # nulls are no key
    assert constraint_problems(ASSET_BASICS, ids.slice(1)) == []
    qc = QUALITY_CONTROL.from_columns({**{c: [None] * 2 for c in QUALITY_CONTROL.column_names}, "subject_id": ["1", "2"]})
    assert constraint_problems(QUALITY_CONTROL, qc, "1") == ["1: rows of other partitions ['2']"]
    with pytest.raises(ValueError, match=r"table t: unique columns \['x'\] are not declared"):
        TableSpec("t", "", "asset", UNIQUE_GENOTYPES.columns, unique=("x",))


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
    write_corpus(samples, ["1", "2", "3"])
    use_local_environment(monkeypatch, samples, cache)
    instance = DagsterInstance.ephemeral()
    assert not materialize_all(instance, say=lambda _: None).failures
    return cache / VERSION, instance


def latest_check(instance: DagsterInstance, asset: str, check: str):
    record = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(AssetKey(asset), check), limit=1
    )[0]
    return record.event.dagster_event.event_specific_data


def test_checks_run_with_every_build(built):
    _, instance = built
    for name in TABLES:
        assert latest_check(instance, name, "schema_matches_declaration").passed, name
    assert latest_check(instance, "quality_control", "no_null_partition_keys").passed
    assert latest_check(instance, "asset_basics", "id_unique").passed


def test_duplicate_ids_fail_the_build_and_the_published_asset_basics_stays(built, tmp_path, capsys):
    version, instance = built
    published = (version / "asset_basics.pqt").read_bytes()
    for n in (5, 6):
        write_record(tmp_path / "samples", asset_name("4", n), "4", record_id="id-shared")

    outcome = materialize_all(instance, say=lambda _: None)

    (failure,) = outcome.failures
    assert failure.step == "asset_basics" and ConstraintViolation.__name__ in failure.detail
    assert failure.reason.endswith(
        "refusing to publish asset_basics, which breaks its declared constraints: _id 'id-shared' occurs more "
        f"than once. The published table at {version}/asset_basics.pqt is unchanged."
    )
    assert (version / "asset_basics.pqt").read_bytes() == published
    assert "platform_qc" in outcome.not_built
    print_failures(outcome)
    assert capsys.readouterr().err.splitlines()[0] == f"failed: asset_basics: {failure.reason}"


def test_a_partition_of_another_subject_fails_the_run_and_no_partition_is_written(tmp_path):
    """Every partition of the output is checked before the first one is written."""

    def rows(*subjects: str) -> pa.Table:
        columns = {c: [None] * len(subjects) for c in QUALITY_CONTROL.column_names}
        return QUALITY_CONTROL.from_columns({**columns, "subject_id": list(subjects)})

    output = {}

    @asset(name=QUALITY_CONTROL.name, partitions_def=SUBJECT_PARTITIONS, io_manager_key=IO_MANAGER_KEY)
    def quality_control():
        return output

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, ["1", "2"])
    resources = {IO_MANAGER_KEY: CacheIOManager(cache=CacheResource(root=str(tmp_path)))}

    def run():
        return materialize([quality_control], instance=instance, resources=resources, tags=partition_range_tags("1", "2"),
                           raise_on_error=False)

    output.update({"1": rows("1"), "2": rows("2")})
    assert run().success
    first = tmp_path / VERSION / "qc" / "subject_id=1" / "data.pqt"
    written = first.read_bytes()
    output.update({"1": rows("1", "1"), "2": rows("2", "9", None)})
    result = run()
    assert not result.success and first.read_bytes() == written
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_failure_data.error.cause.message.splitlines()[0].endswith(
        "refusing to publish quality_control, which breaks its declared constraints: 2: 1 rows with a null "
        f"partition key; 2: rows of other partitions ['9']. The published table at {tmp_path}/{VERSION}/qc/ is unchanged."
    )


def run_check(instance: DagsterInstance, asset: str, check: str):
    """One check alone, as the UI launches it; its evaluation, and whether the run succeeded."""
    key = AssetCheckKey(AssetKey(asset), check)
    result = materialize([*ALL_ASSETS, *ALL_CHECKS], selection=AssetSelection.checks(key), instance=instance,
                         resources=pipeline_resources(), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation, result.success


def test_schema_check_reads_the_stored_file_back_and_fails_its_run(built):
    version, instance = built
    pq.write_table(pa.table({"genotype": pa.array([1, 2], pa.int64())}), version / "unique_genotypes.pqt")

    evaluation, success = run_check(instance, "unique_genotypes", "schema_matches_declaration")

    assert not evaluation.passed and not success
    assert evaluation.metadata["problems"].value == "column genotype is int64, declared string"


def test_id_check_reads_the_stored_ids_back(built):
    version, instance = built
    stored = pq.read_table(version / "asset_basics.pqt")
    pq.write_table(pa.concat_tables([stored, stored.slice(0, 1)]), version / "asset_basics.pqt")

    evaluation, success = run_check(instance, "asset_basics", "id_unique")

    assert not evaluation.passed and not success
    assert evaluation.metadata["problems"].value == f"_id {stored.column('_id')[0].as_py()!r} occurs more than once"


def test_partition_check_reads_a_partition_whose_statistics_show_another_subject(built):
    version, instance = built
    partition = version / "qc" / "subject_id=1" / "data.pqt"
    rows = pq.read_table(partition)
    assert rows.num_rows
    foreign = rows.set_column(rows.schema.get_field_index("subject_id"), "subject_id",
                              pa.array(["1"] * (rows.num_rows - 1) + [None], pa.string()))
    pq.write_table(foreign, partition)

    evaluation, success = run_check(instance, "quality_control", "no_null_partition_keys")

    assert not evaluation.passed and not success
    assert evaluation.metadata["problems"].value == "1: 1 rows with a null partition key"
