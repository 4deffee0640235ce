"""The IO manager through real Dagster runs: partition paths, encoding, removal, registry, versions."""

import json

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize
from handmade_corpus import remove_record, write_record

from biodata_cache_client.layout import version_folder
from biodata_cache_pipeline.assets import ALL_ASSETS, SUBJECT_PARTITIONS
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.io_manager import CacheIOManager
from biodata_cache_pipeline.resources import LocalRecordsResource

VERSION = version_folder()
# quality_control and the record snapshot it reads, refreshed in the same run.
QC_AND_SNAPSHOT = [a for a in ALL_ASSETS if a.key in (AssetKey("quality_control"), AssetKey("record_snapshot"))]
UNUSUAL_SUBJECTS = ["828418", "007", "a/b c", "50%,ü"]


@pytest.fixture()
def run_qc(tmp_path):
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    for i, subject in enumerate(UNUSUAL_SUBJECTS):
        write_record(samples, f"asset{i}_2025-01-02_03-04-05", subject, metrics=i)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, UNUSUAL_SUBJECTS)
    cache_resource = CacheResource(root=str(cache))
    resources = {
        "records": LocalRecordsResource(root=str(samples)),
        "cache": cache_resource,
        # Removing one of these tiny subjects drops a third of the rows: allow it past the publish guard.
        "cache_io_manager": CacheIOManager(cache=cache_resource, max_row_drop_fraction=0.5),
    }

    def run(*subjects: str):
        return materialize(
            QC_AND_SNAPSHOT,
            instance=instance,
            resources=resources,
            tags={"dagster/asset_partition_range_start": subjects[0], "dagster/asset_partition_range_end": subjects[-1]},
        )

    return run, samples, cache / VERSION


def test_one_run_writes_every_partition_with_encoded_paths(run_qc):
    run, _, version = run_qc
    assert run(UNUSUAL_SUBJECTS[0], UNUSUAL_SUBJECTS[-1]).success
    folders = sorted(p.name for p in (version / "qc").iterdir())
    assert folders == sorted(["subject_id=828418", "subject_id=007", "subject_id=a%2Fb%20c", "subject_id=50%25%2C%C3%BC"])
    dataset = ds.dataset(
        version / "qc", partitioning=ds.partitioning(pa.schema([("subject_id", pa.string())]), flavor="hive")
    )
    rows = dataset.to_table(columns=["subject_id", "name"]).to_pylist()
    assert sorted({r["subject_id"] for r in rows}) == sorted(s for i, s in enumerate(UNUSUAL_SUBJECTS) if i > 0)
    assert len(rows) == sum(range(len(UNUSUAL_SUBJECTS)))
    assert (version / "qc" / "subject_id=828418" / "data.pqt").is_file(), "no metrics still gives a zero-row file"


def test_registry_and_versions_follow_the_write(run_qc):
    run, _, version = run_qc
    run(UNUSUAL_SUBJECTS[0], UNUSUAL_SUBJECTS[-1])
    fragment = json.loads((version / "cache_registry" / "quality_control.json").read_text())
    assert fragment["location"] == f"{version}/qc/"
    assert fragment["build"]["partitions"] == len(UNUSUAL_SUBJECTS)
    assert fragment["build"]["row_count"] == sum(range(len(UNUSUAL_SUBJECTS)))
    assert json.loads((version.parent / "cache_versions.json").read_text()) == [VERSION]


def test_each_partition_event_shows_its_own_row_count(run_qc):
    run, _, _ = run_qc
    result = run(UNUSUAL_SUBJECTS[0], UNUSUAL_SUBJECTS[-1])
    events = {e.partition: e.metadata for e in result.asset_materializations_for_node("quality_control")}
    assert sorted(events) == sorted(UNUSUAL_SUBJECTS)
    for i, subject in enumerate(UNUSUAL_SUBJECTS):  # subject i has i metrics (the fixture)
        assert events[subject]["dagster/row_count"].value == i
        assert events[subject]["dagster/partition_row_count"].value == i
        assert events[subject]["table_rows"].value == sum(range(len(UNUSUAL_SUBJECTS)))


def test_a_subject_without_records_loses_its_partition(run_qc):
    run, samples, version = run_qc
    run(UNUSUAL_SUBJECTS[0], UNUSUAL_SUBJECTS[-1])
    remove_record(samples, "asset2_2025-01-02_03-04-05")

    assert run("a/b c").success

    assert not (version / "qc" / "subject_id=a%2Fb%20c").exists()
    assert (version / "qc" / "subject_id=007" / "data.pqt").is_file()


def test_an_asset_returning_the_wrong_partitions_fails_and_writes_nothing(tmp_path):
    @asset(name="quality_control", partitions_def=SUBJECT_PARTITIONS, io_manager_key="cache_io_manager")
    def wrong_partitions():
        return {"not-asked-for": pa.table({})}

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, ["1"])
    result = materialize(
        [wrong_partitions],
        instance=instance,
        partition_key="1",
        resources={"cache_io_manager": CacheIOManager(cache=CacheResource(root=str(tmp_path)))},
        raise_on_error=False,
    )
    assert not result.success
    assert not (tmp_path / VERSION / "qc").exists()
    assert not (tmp_path / VERSION / "cache_registry").exists()


def test_a_partitioned_build_losing_too_many_rows_is_refused_and_keeps_its_partitions(tmp_path):
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    subjects = ["1", "2", "3"]
    for i, subject in enumerate(subjects):
        write_record(samples, f"asset{i}_2025-01-02_03-04-05", subject, metrics=4)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, subjects)
    qc = QC_AND_SNAPSHOT
    cache_resource = CacheResource(root=str(cache))

    def run(io_manager: CacheIOManager):
        return materialize(qc, instance=instance, raise_on_error=False,
                           resources={"records": LocalRecordsResource(root=str(samples)), "cache": cache_resource,
                                      "cache_io_manager": io_manager},
                           tags={"dagster/asset_partition_range_start": "1", "dagster/asset_partition_range_end": "3"})

    assert run(CacheIOManager(cache=cache_resource)).success
    gone = samples / "asset1_2025-01-02_03-04-05"
    (gone / "metadata.nd.json").unlink()
    gone.rmdir()

    refused = run(CacheIOManager(cache=cache_resource))

    assert not refused.success
    assert (cache / VERSION / "qc" / "subject_id=2" / "data.pqt").is_file()
    assert json.loads((cache / VERSION / "cache_registry" / "quality_control.json").read_text())["build"]["row_count"] == 12
    assert run(CacheIOManager(cache=cache_resource, force_publish=True)).success
    assert not (cache / VERSION / "qc" / "subject_id=2").exists()
    assert json.loads((cache / VERSION / "cache_registry" / "quality_control.json").read_text())["build"]["row_count"] == 8
