"""QC assets: quality_control partitioned by subject, platform_qc partitioned by platform.

Both accept many partitions in one run (single-run backfills): the records are read once and
every requested partition is built from that pass.
"""

import warnings

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    DynamicPartitionsDefinition,
    Output,
    ResourceParam,
    StaticPartitionsDefinition,
    asset,
)

from biodata_cache_pipeline.assets.common import table_asset
from biodata_cache_pipeline.collector import collector_paused
from biodata_cache_pipeline.io_manager import SOURCE_METADATA_KEY, CacheIOManager, PartitionedBuild
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.resources import RecordsResource
from biodata_cache_pipeline.subjects import FINGERPRINT_COLUMNS, subject_fingerprints
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.tables.quality_control import (
    PLATFORM_QC,
    PLATFORM_QC_FIELDS,
    PLATFORMS,
    QUALITY_CONTROL,
    QUALITY_CONTROL_FIELDS,
    asset_qc,
    build_platform_qc,
    build_quality_control,
    platform_matches,
)

GROUP = "quality_control"
SUBJECT_PARTITIONS = DynamicPartitionsDefinition(name="subject_id")
PLATFORM_PARTITIONS = StaticPartitionsDefinition(list(PLATFORM_QC.static_partitions))
# Single-run backfills are what these assets are built for; Dagster flags the parameter as beta.
warnings.filterwarnings("ignore", category=BetaWarning, message="Parameter `backfill_policy`")


@asset(
    **table_asset(QUALITY_CONTROL, GROUP),
    partitions_def=SUBJECT_PARTITIONS,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[ASSET_BASICS.name],
)
def quality_control(
    context: AssetExecutionContext, records: RecordsResource, cache_io_manager: ResourceParam[CacheIOManager]
) -> Output:
    """Each partition is stamped with its subject's asset_basics fingerprint (change detection)."""
    tally = RecordTally()
    with collector_paused():
        tables = build_quality_control(tally.track(records.records(QUALITY_CONTROL_FIELDS)), context.partition_keys)
    removed = sorted(key for key, table in tables.items() if table is None)
    basics = cache_io_manager.read_published(ASSET_BASICS, FINGERPRINT_COLUMNS)
    fingerprints = {} if basics is None else subject_fingerprints(basics)
    return Output(
        PartitionedBuild(tables, {key: fingerprints.get(key) for key in tables}),
        metadata={
            SOURCE_METADATA_KEY: records.source,
            **tally.metadata(),
            "partitions_written": len(tables) - len(removed),
            "partitions_removed": len(removed),
        },
    )


@asset(
    **table_asset(PLATFORM_QC, GROUP),
    partitions_def=PLATFORM_PARTITIONS,
    backfill_policy=BackfillPolicy.single_run(),
)
def platform_qc(
    context: AssetExecutionContext, asset_basics: pa.Table, records: RecordsResource
) -> Output:
    platforms = [PLATFORMS[key] for key in context.partition_keys]
    tally = RecordTally()
    with collector_paused():
        candidates = {
            row["name"]
            for row in asset_basics.select(["name", "modalities", "acquisition_type"]).to_pylist()
            if any(platform_matches(p, row["modalities"] or [], row["acquisition_type"]) for p in platforms)
        }
        qc_by_name = {
            r.name: asset_qc(r) for r in tally.track(records.records_named(candidates, PLATFORM_QC_FIELDS)) if r.has_qc
        }
        tables = {key: build_platform_qc(asset_basics, qc_by_name, key) for key in context.partition_keys}
    return Output(tables, metadata={SOURCE_METADATA_KEY: records.source, **tally.metadata()})
