"""The records source (external: DocDB or a folder of asset folders) and the record snapshot that
every table is built from, refreshed incrementally (`snapshot_refresh.py`)."""

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, asset

from biodata_cache_pipeline.assets.common import OWNERS, SNAPSHOT_ASSET
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.resources import RecordsResource
from biodata_cache_pipeline.snapshot import RecordSnapshot
from biodata_cache_pipeline.snapshot_refresh import refresh_snapshot

GROUP = "sources"
WARNINGS_METADATA_KEY = "warnings"

metadata_records = AssetSpec(
    "metadata_records",
    description="The metadata records: the DocDB collection (prod) or a folder of data-asset folders (local); "
    "see the `records` resource for the active one. Read by record_snapshot, never written by this project.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"json"},
)


@asset(
    name=SNAPSHOT_ASSET,
    deps=[metadata_records],
    description="Every record, normalised, one parquet row each (private: bdc-vX.Y/_snapshot/). Each refresh "
    "reads only new and changed records, in worker processes; every table is built from it.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "parquet"},
    pool=f"cache_table_{SNAPSHOT_ASSET}",
)
def record_snapshot(
    context: AssetExecutionContext, records: RecordsResource, cache: CacheResource
) -> MaterializeResult:
    source, warnings = records.source(), records.warnings()
    for warning in warnings:
        context.log.warning(warning)
    store = cache.store()
    stored = store.open_snapshot()
    with store.snapshot_output() as output:
        previous = RecordSnapshot(stored) if stored else None
        report = refresh_snapshot(source, previous, output.path, workers=records.workers)
        if report.unchanged:
            output.discard()
    context.log.info(f"record_snapshot: {report.summary()}")
    return MaterializeResult(
        metadata={
            "dagster/row_count": report.records,
            "dagster/uri": store.snapshot_location,
            "source": report.source,
            "added": report.added,
            "changed": report.changed,
            "removed": report.removed,
            "read": report.read,
            "full_rebuild": report.rebuilt or "no",
            "rewritten": not report.unchanged,
            "skipped_records": report.skipped,
            "skipped_reasons": MetadataValue.md("\n".join(f"- {r}" for r in report.skipped_reasons) or "none"),
            WARNINGS_METADATA_KEY: "\n".join(warnings) or "none",
        }
    )

