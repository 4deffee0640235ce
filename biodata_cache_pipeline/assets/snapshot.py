"""The records source (external: DocDB or a folder of asset folders) and the record snapshot that
every table is built from, refreshed incrementally (`snapshot_refresh.py`)."""

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, asset

from biodata_cache_pipeline.assets.common import OWNERS, SNAPSHOT_ASSET
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.resources import RecordsResource
from biodata_cache_pipeline.snapshot_refresh import RefreshReport, refresh_snapshot
from biodata_cache_pipeline.sources import RecordSource
from biodata_cache_pipeline.storage import CacheStore

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


def refresh_stored_snapshot(store: CacheStore, source: RecordSource, workers: int | None = None) -> RefreshReport:
    """Refresh the snapshot stored in `store` from `source` and publish what the refresh wrote (all
    rows, or the changes to the stored rows); a failed refresh publishes nothing."""
    previous = store.open_snapshot()
    with store.snapshot_output() as output:
        report = refresh_snapshot(source, previous, output.path, workers=workers, changes_out=output.changes_path)
        output.written = report.written
    return report


@asset(
    name=SNAPSHOT_ASSET,
    deps=[metadata_records],
    description="Every record, normalised, one parquet row each (private: bdc-vX.Y/_snapshot/). Each refresh "
    "reads only new and changed records, in worker processes, and while they are few writes only them "
    "(changes.parquet, beside the rows); every table is built from it.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"python", "parquet"},
    pool=f"cache_table_{SNAPSHOT_ASSET}",
)
def record_snapshot(
    context: AssetExecutionContext, records: RecordsResource, cache: CacheResource
) -> MaterializeResult:
    source, warnings = records.open()
    for warning in warnings:
        context.log.warning(warning)
    store = cache.store()
    report = refresh_stored_snapshot(store, source, workers=records.workers)
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
            "written": report.written or "nothing (unchanged)",
            "skipped_records": report.skipped,
            "skipped_reasons": MetadataValue.md("\n".join(f"- {r}" for r in report.skipped_reasons) or "none"),
            WARNINGS_METADATA_KEY: "\n".join(warnings) or "none",
        }
    )

