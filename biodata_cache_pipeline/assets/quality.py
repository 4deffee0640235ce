"""QC assets: quality_control partitioned by subject, platform_qc partitioned by platform.

Both accept many partitions in one run (single-run backfills; for quality_control runs of at most
`BIODATA_SUBJECTS_PER_RUN` subjects when it is set, which may run at the same time, see
`subject_runs.py`): each reads from the record snapshot only the rows of the requested subjects
(or platforms' assets) and builds every requested partition from them.
"""

import warnings

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    DynamicPartitionsDefinition,
    Output,
    StaticPartitionsDefinition,
    asset,
)

from biodata_cache_client.collector import collector_paused
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.assets.common import (
    SNAPSHOT_ASSET,
    built_unless_unchanged,
    count_malformed,
    malformed_records,
    read_snapshot,
    table_asset,
)
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.io_manager import SOURCE_METADATA_KEY, PartitionedBuild
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.subject_runs import subject_backfill_policy
from biodata_cache_pipeline.subjects import FINGERPRINT_COLUMNS, subject_fingerprints
from biodata_cache_pipeline.tables.platform_qc import (
    PLATFORM_QC_ATTRIBUTES,
    PLATFORM_QC_BASICS_COLUMNS,
    build_platform_qc,
    platform_assets,
    qc_by_name,
)
from biodata_cache_pipeline.tables.quality_control import QUALITY_CONTROL_ATTRIBUTES, build_quality_control

GROUP = "quality_control"
SUBJECT_PARTITIONS = DynamicPartitionsDefinition(name="subject_id")
PLATFORM_PARTITIONS = StaticPartitionsDefinition(list(PLATFORM_QC.static_partitions))
# Single-run backfills are what these assets are built for; Dagster flags the parameter as beta.
warnings.filterwarnings("ignore", category=BetaWarning, message="Parameter `backfill_policy`")


@asset(
    **table_asset(QUALITY_CONTROL, GROUP, deps=(SNAPSHOT_ASSET, ASSET_BASICS.name), pooled=False),
    partitions_def=SUBJECT_PARTITIONS,
    backfill_policy=subject_backfill_policy(),
)
def quality_control(context: AssetExecutionContext, cache: CacheResource) -> Output:
    """Each partition is stamped with its subject's asset_basics fingerprint (change detection).
    A requested subject without records gets None: its partition is removed."""
    snapshot, tally = read_snapshot(cache), RecordTally()
    subjects = context.partition_keys
    tables = dict.fromkeys(subjects)
    with collector_paused():
        for found, rows in snapshot.rows_by("subject_id", subjects, QUALITY_CONTROL_ATTRIBUTES + tally.ATTRIBUTES):
            count_malformed(tally, rows)
            tables.update(build_quality_control(rows, found))
    removed = sorted(key for key, table in tables.items() if table is None)
    basics = cache.read_published(ASSET_BASICS, FINGERPRINT_COLUMNS)
    if basics is not None:  # the requested subjects' rows: a subject's fingerprint is of its rows alone
        basics = basics.filter(pc.is_in(basics.column("subject_id"), value_set=pa.array(subjects, pa.string())))
    fingerprints = {} if basics is None else subject_fingerprints(basics)
    return Output(
        PartitionedBuild(tables, {key: fingerprints.get(key) for key in tables}),
        metadata={
            SOURCE_METADATA_KEY: snapshot.source,
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
    context: AssetExecutionContext, asset_basics: pa.Table, cache: CacheResource
) -> Output:
    keys = context.partition_keys
    basics = asset_basics.select(list(PLATFORM_QC_BASICS_COLUMNS))
    snapshot = read_snapshot(cache)
    candidates = platform_assets(basics, keys)
    inputs = snapshot.table(PLATFORM_QC_ATTRIBUTES + RecordTally.ATTRIBUTES, where=("name", candidates))

    def build(qc_rows):
        with collector_paused():
            by_name = qc_by_name(qc_rows)
            return {key: build_platform_qc(basics, by_name, key) for key in keys}, malformed_records(qc_rows)

    return built_unless_unchanged(PLATFORM_QC, cache, snapshot, inputs, build, basics, keys=keys)
