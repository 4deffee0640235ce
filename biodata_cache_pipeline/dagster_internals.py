"""Every private Dagster name the pipeline uses, in one place.

Dagster's public API has no equivalent for these; `tests/test_dagster_internals.py` checks each
one, so a Dagster upgrade that moves or changes one fails there, naming it, not deep in a run.
"""

from collections.abc import Mapping
from typing import Any

from dagster import OutputContext
from dagster._core.definitions.partitions.utils.base import INVALID_PARTITION_SUBSTRINGS
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator
from dagster._core.storage.dagster_run import FINISHED_STATUSES, NOT_FINISHED_STATUSES
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import ConfigurableClassData

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "FINISHED_STATUSES",
    "INVALID_PARTITION_SUBSTRINGS",
    "NOT_FINISHED_STATUSES",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "BulkActionStatus",
    "BulkActionsFilter",
    "ConfigurableClassData",
    "EventLogEntry",
    "SqlEventLogStorageTable",
    "SqliteEventLogStorage",
    "add_partition_metadata",
    "create_engine",
]


def add_partition_metadata(context: OutputContext, metadata: Mapping[str, Mapping[str, Any]]) -> None:
    """Metadata for each partition's materialization event (partition key -> entries), added in one
    step. The public `add_asset_metadata(..., partition_key=)` lists the run's partitions and copies
    every entry added so far on each call: quadratic over the thousands of subjects of one run."""
    step = context.step_context
    entries = dict(step._metadata_accumulator.per_output_metadata)
    for partition_key, partition_metadata in metadata.items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=partition_key)
        entries[handle] = {**entries.get(handle, {}), **partition_metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=entries)
