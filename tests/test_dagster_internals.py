"""Each private Dagster name the pipeline uses (`dagster_internals.py`) still means what it did.

A Dagster upgrade that moves or changes one fails here, naming it."""

import inspect

from dagster import (
    AssetExecutionContext,
    DagsterInstance,
    DagsterRunStatus,
    DynamicPartitionsDefinition,
    IOManager,
    Output,
    asset,
    materialize,
)

from biodata_cache_pipeline import dagster_internals as internals


def test_every_name_is_exported():
    assert sorted(internals.__all__) == sorted(n for n in vars(internals) if n in internals.__all__)


def test_partition_range_tags_select_a_single_run_range():
    letters = DynamicPartitionsDefinition(name="letters")

    @asset(partitions_def=letters)
    def spelled(context: AssetExecutionContext) -> Output:
        return Output(None, metadata={"keys": ",".join(context.partition_keys)})

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("letters", ["a", "b", "c", "d"])
    tags = {internals.ASSET_PARTITION_RANGE_START_TAG: "b", internals.ASSET_PARTITION_RANGE_END_TAG: "c"}
    result = materialize([spelled], instance=instance, tags=tags, resources={"io_manager": _Discard()})
    assert sorted(e.partition for e in result.asset_materializations_for_node("spelled")) == ["b", "c"]


def test_run_status_sets_split_finished_from_unfinished():
    statuses = set(DagsterRunStatus) - {DagsterRunStatus.MANAGED}  # MANAGED: runs outside Dagster's launcher
    assert set(internals.FINISHED_STATUSES) | set(internals.NOT_FINISHED_STATUSES) == statuses
    assert not set(internals.FINISHED_STATUSES) & set(internals.NOT_FINISHED_STATUSES)
    assert DagsterRunStatus.SUCCESS in internals.FINISHED_STATUSES


def test_backfill_filter_takes_statuses():
    instance = DagsterInstance.ephemeral()
    requested = internals.BulkActionsFilter(statuses=[internals.BulkActionStatus.REQUESTED])
    assert instance.get_backfills(filters=requested) == []


def test_invalid_partition_substrings_are_strings():
    assert internals.INVALID_PARTITION_SUBSTRINGS
    assert all(isinstance(s, str) and s for s in internals.INVALID_PARTITION_SUBSTRINGS)


def test_event_log_storage_names(tmp_path):
    storage = internals.SqliteEventLogStorage(str(tmp_path))
    assert isinstance(internals.SQLITE_BUSY_TIMEOUT_SECONDS, (int, float))
    assert "inst_data" in inspect.signature(internals.SqliteEventLogStorage).parameters
    assert internals.ConfigurableClassData.__name__ == "ConfigurableClassData"
    assert "event" in inspect.signature(storage.store_event).parameters
    assert internals.EventLogEntry.__name__ == "EventLogEntry"
    engine = internals.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select 1").scalar() == 1
    # the two methods the project's event log overrides
    assert callable(storage.has_table)
    assert callable(storage._has_asset_key_index_cols_on_connection)


class _Discard(IOManager):
    def handle_output(self, context, obj):
        pass

    def load_input(self, context):
        return None


def test_add_partition_metadata_reaches_each_partition_event():
    letters = DynamicPartitionsDefinition(name="letters")

    class Counting(_Discard):
        def handle_output(self, context, obj):
            internals.add_partition_metadata(context, {key: {"size": len(key)} for key in context.asset_partition_keys})

    @asset(partitions_def=letters)
    def words(context: AssetExecutionContext) -> Output:
        return Output(None, metadata={"shared": 1})

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("letters", ["a", "bb", "ccc"])
    tags = {internals.ASSET_PARTITION_RANGE_START_TAG: "a", internals.ASSET_PARTITION_RANGE_END_TAG: "ccc"}
    result = materialize([words], instance=instance, tags=tags, resources={"io_manager": Counting()})
    events = {e.partition: e.metadata for e in result.asset_materializations_for_node("words")}
    assert {key: (m["size"].value, m["shared"].value) for key, m in events.items()} == {
        "a": (1, 1), "bb": (2, 1), "ccc": (3, 1)
    }


def test_event_rows_fit_the_event_log_table(tmp_path):
    """The batched insert writes `_event_to_row`'s rows into `SqlEventLogStorageTable` itself."""
    storage = internals.SqliteEventLogStorage(str(tmp_path))
    entry = internals.EventLogEntry(
        error_info=None, level=10, user_message="", run_id="r", timestamp=1.0, step_key=None, job_name=None, dagster_event=None
    )
    row = storage._event_to_row(entry)
    assert set(row) <= set(internals.SqlEventLogStorageTable.c.keys())
    assert "id" in internals.SqlEventLogStorageTable.c
