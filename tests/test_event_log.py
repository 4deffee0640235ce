"""The project's Dagster instance (dagster.yaml) and its event log (event_log.py): a whole build
recorded as Dagster records it, planned partitions in one event, the UI's file watcher seeing a
run as it happens, earlier history readable, open database files bounded."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
    materialize,
)

from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.event_log import OPEN_DATABASES, PooledSqliteEventLogStorage
from handmade_corpus import use_local_environment, write_corpus

PROJECT = Path(__file__).resolve().parents[1]
SUBJECTS = [f"61{i:04d}" for i in range(40)]
NUMBERS = StaticPartitionsDefinition([f"p{i:03d}" for i in range(60)])


@asset(partitions_def=NUMBERS)
def numbers(context) -> MaterializeResult:
    """One materialisation per partition of the run, written one right after another."""
    return MaterializeResult(metadata={"partitions": len(context.partition_keys)})


@pytest.fixture()
def project_home(tmp_path, monkeypatch) -> Path:
    """A Dagster home with the project's dagster.yaml."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def range_tags(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def test_a_whole_build_on_the_project_instance_records_every_table_and_subject(project_home, tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    write_corpus(samples, SUBJECTS)
    use_local_environment(monkeypatch, samples, tmp_path / "cache")
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert not materialize_all(instance, say=lambda _: None).failures
    # closing the instance closed its connections: every event is in the database files
    assert not list((project_home / "history" / "runs").glob("*.db-wal"))

    with DagsterInstance.get() as instance:  # what another process (the webserver) reads
        qc = AssetKey(QUALITY_CONTROL.name)
        assert instance.get_materialized_partitions(qc) == set(SUBJECTS)
        for name in TABLES:
            assert instance.get_latest_materialization_event(AssetKey(name)) is not None, name
        planned = [
            record.event_log_entry.dagster_event.event_specific_data
            for run in instance.get_runs()
            for record in instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
            ).records
            if record.event_log_entry.dagster_event.asset_key == qc
        ]
        assert len(planned) == 1  # not one per subject
        assert set(planned[0].partitions_subset.get_partition_keys()) == set(SUBJECTS)


def test_the_ui_file_watcher_sees_a_run_while_the_writing_process_keeps_its_connection(project_home):
    run_id = "0b8f0a55-2a59-4f35-9a1e-6c1bd0b3c0de"
    seen: list[DagsterEventType | None] = []
    finished = threading.Event()

    def on_event(entry, _cursor):
        seen.append(entry.dagster_event_type)
        if entry.dagster_event_type == DagsterEventType.RUN_SUCCESS:
            finished.set()

    keys = NUMBERS.get_partition_keys()
    with DagsterInstance.get() as instance:
        instance.event_log_storage.watch(run_id, None, on_event)
        job = Definitions(assets=[numbers]).resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(instance=instance, run_id=run_id, tags=range_tags(keys))
        assert result.success
        # the instance, and so the connection that wrote the run, stays open while the UI watches
        assert finished.wait(timeout=20), f"the watcher saw {len(seen)} events and not the run's end"
        assert seen.count(DagsterEventType.ASSET_MATERIALIZATION) == len(keys)
        instance.event_log_storage.end_watch(run_id, on_event)


def open_database_files(folder: Path) -> set[str]:
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith(".db"):
            names.add(Path(target).name)
    return names


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc to count open files")
def test_a_long_lived_process_keeps_a_bounded_number_of_databases_open(project_home):
    keys = NUMBERS.get_partition_keys()
    with DagsterInstance.get() as instance:
        runs = [materialize([numbers], instance=instance, tags=range_tags(keys[i:i + 2])).run_id
                for i in range(OPEN_DATABASES + 4)]
        held = open_database_files(project_home / "history" / "runs")
        assert 0 < len(held) <= OPEN_DATABASES
        for run_id in runs:  # evicted runs are opened again when read
            assert instance.get_run_stats(run_id).materializations == 2


def test_history_written_by_dagsters_default_event_log_stays_readable(project_home):
    (project_home / "dagster.yaml").rename(project_home / "project.yaml")
    keys = NUMBERS.get_partition_keys()
    with DagsterInstance.get() as instance:  # Dagster's default storage
        assert type(instance.event_log_storage) is not PooledSqliteEventLogStorage
        earlier = materialize([numbers], instance=instance, tags=range_tags(keys[:5])).run_id
    (project_home / "project.yaml").rename(project_home / "dagster.yaml")
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert instance.get_run_stats(earlier).materializations == 5
        assert instance.get_materialized_partitions(AssetKey("numbers")) == set(keys[:5])
        materialize([numbers], instance=instance, tags=range_tags(keys[5:8]))
        assert instance.get_materialized_partitions(AssetKey("numbers")) == set(keys[:8])


def test_without_dagster_home_or_base_dir_the_error_names_both(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(ValueError, match="DAGSTER_HOME.*base_dir"):
        PooledSqliteEventLogStorage()


def test_a_partitioned_run_asks_the_database_for_its_tables_once(project_home, monkeypatch):
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    asked = []
    dagster_has_table = SqliteEventLogStorage.has_table
    monkeypatch.setattr(SqliteEventLogStorage, "has_table",
                        lambda self, name: asked.append(name) or dagster_has_table(self, name))
    keys = NUMBERS.get_partition_keys()
    with DagsterInstance.get() as instance:
        assert materialize([numbers], instance=instance, tags=range_tags(keys)).success
        assert instance.get_materialized_partitions(AssetKey("numbers")) == set(keys)
    assert 0 < len(asked) == len(set(asked)), asked  # Dagster asks per partition event: 60 asks without the cache


def test_a_partitioned_run_inspects_the_asset_key_columns_once(project_home, monkeypatch):
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    asked = []
    dagster_check = SqlEventLogStorage._has_asset_key_index_cols_on_connection
    monkeypatch.setattr(SqlEventLogStorage, "_has_asset_key_index_cols_on_connection",
                        lambda self, conn: asked.append(1) or dagster_check(self, conn))
    keys = NUMBERS.get_partition_keys()
    with DagsterInstance.get() as instance:
        assert materialize([numbers], instance=instance, tags=range_tags(keys)).success
        assert instance.get_materialized_partitions(AssetKey("numbers")) == set(keys)
    assert len(asked) == 1, len(asked)  # one per materialization event without the cache


def _recorded(instance: DagsterInstance, keys: list[str]) -> dict:
    """What the UI and the sensor read of a partitioned run: partitions, each one's latest
    materialization (metadata, data version tags), the asset's latest event and its indexed tags."""
    key = AssetKey("numbers")
    assert materialize([numbers], instance=instance, tags=range_tags(keys)).success
    latest = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
    records = {r.storage_id: r for r in instance.fetch_materializations(key, limit=1000).records}
    asset_record = instance.get_asset_records([key])[0].asset_entry.last_materialization_record
    return {
        "partitions": sorted(instance.get_materialized_partitions(key)),
        "materializations": len(records),
        "latest": {
            partition: (
                {k: v.value for k, v in records[storage_id].asset_materialization.metadata.items()},
                sorted(records[storage_id].asset_materialization.tags or {}),
            )
            for partition, storage_id in latest.items()
        },
        "asset_latest_partition": asset_record.asset_materialization.partition,
        "indexed_tags": sorted(sorted(t) for t in instance.get_event_tags_for_asset(key)),
    }


def test_batched_partition_events_are_recorded_as_dagster_records_them_one_by_one(project_home, tmp_path):
    keys = NUMBERS.get_partition_keys()
    stock_home = tmp_path / "stock"
    stock_home.mkdir()
    (stock_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # Dagster's own SQLite storage
    with DagsterInstance.from_config(str(stock_home)) as stock:
        assert not isinstance(stock.event_log_storage, PooledSqliteEventLogStorage)
        expected = [_recorded(stock, keys[:30]), _recorded(stock, keys[20:])]
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "1000"  # Dagster hands this storage batches
        assert [_recorded(instance, keys[:30]), _recorded(instance, keys[20:])] == expected
