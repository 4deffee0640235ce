"""Platform assets: SmartSPIM, fiber photometry, foraging sessions, behavior curriculum."""


import pyarrow as pa
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from biodata_cache_client.collector import collector_paused
from biodata_cache_client.schema.assets_smartspim import ASSETS_SMARTSPIM
from biodata_cache_client.schema.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS
from biodata_cache_client.schema.platform_fib import PLATFORM_FIB
from biodata_cache_pipeline.assets.common import (
    built_unless_unchanged,
    from_records,
    malformed_records,
    read_snapshot,
    table_asset,
)
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.io_manager import SOURCE_METADATA_KEY
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.resources import ForagingSessionsResource, OpenDataResource
from biodata_cache_pipeline.tables.assets_smartspim import ASSETS_SMARTSPIM_ATTRIBUTES, build_assets_smartspim
from biodata_cache_pipeline.tables.behavior_curriculum import build_behavior_curriculum
from biodata_cache_pipeline.tables.foraging_sessions import build_foraging_sessions
from biodata_cache_pipeline.tables.platform_fib import PLATFORM_FIB_ATTRIBUTES, build_platform_fib

GROUP = "platforms"


@asset(**table_asset(ASSETS_SMARTSPIM, GROUP))
def assets_smartspim(
    source_data: pa.Table, open_data: OpenDataResource, cache: CacheResource
) -> Output:
    snapshot = read_snapshot(cache)
    rows = snapshot.table(ASSETS_SMARTSPIM_ATTRIBUTES + RecordTally.ATTRIBUTES)
    with collector_paused():
        table = build_assets_smartspim(rows, source_data, open_data.store())
    return Output(table, metadata={SOURCE_METADATA_KEY: snapshot.source, **malformed_records(rows)})


@asset(**table_asset(PLATFORM_FIB, GROUP))
def platform_fib(cache: CacheResource) -> Output:
    snapshot = read_snapshot(cache)
    inputs = snapshot.table(PLATFORM_FIB_ATTRIBUTES + RecordTally.ATTRIBUTES)
    return built_unless_unchanged(PLATFORM_FIB, cache, snapshot, inputs, from_records(build_platform_fib))


@asset(**table_asset(FORAGING_SESSIONS, GROUP, deps=()))
def foraging_sessions(context: AssetExecutionContext, sessions: ForagingSessionsResource) -> Output:
    table, warnings = build_foraging_sessions(sessions.read())
    for warning in warnings:
        context.log.warning(f"foraging_sessions: {warning}")
    return Output(
        table,
        metadata={SOURCE_METADATA_KEY: sessions.path, "warnings": MetadataValue.md("\n".join(f"- {w}" for w in warnings) or "none")},
    )


@asset(**table_asset(BEHAVIOR_CURRICULUM, GROUP, deps=()))
def behavior_curriculum(
    asset_basics: pa.Table, open_data: OpenDataResource, cache: CacheResource
) -> Output:
    previous = cache.read_published(BEHAVIOR_CURRICULUM)
    with collector_paused():
        table, reused = build_behavior_curriculum(asset_basics, open_data.store(), previous)
    return Output(
        table,
        metadata={SOURCE_METADATA_KEY: open_data.root, "reused_rows": reused, "looked_up": table.num_rows - reused},
    )
