"""The one IO manager: every cache path and every write goes through it (via `CacheStore`).

Assets return Arrow tables (partitioned assets: a dict partition key -> table, or None to
remove that partition). After the data is written the IO manager publishes the column sidecar,
the registry fragment with its build manifest, and registers the version folder.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables import TABLES
from biodata_cache_pipeline.tables.declaration import TableSpec
from biodata_cache_pipeline.version import PIPELINE_VERSION

SOURCE_METADATA_KEY = "source"


def _metadata_value(value):
    return getattr(value, "value", value)


class CacheIOManager(ConfigurableIOManager):
    """Writes cache tables as versioned parquet under `root` (a local folder or s3:// URI)."""

    root: str = Field(description="Cache root: a local folder or s3://bucket/prefix.")

    def store(self) -> CacheStore:
        return CacheStore(self.root)

    @staticmethod
    def spec_for(asset_key) -> TableSpec:
        return TABLES[asset_key.path[-1]]

    def read_published(self, spec: TableSpec) -> pa.Table | None:
        """The currently published unpartitioned table, or None if there is none yet."""
        store = self.store()
        return store.read_table(spec) if store.table_exists(spec) else None

    def handle_output(self, context: OutputContext, obj) -> None:
        spec = self.spec_for(context.asset_key)
        store = self.store()
        if spec.partitioned:
            row_count = self._write_partitions(context, store, spec, obj)
            partitions = len(store.list_partitions(spec))
        else:
            if not isinstance(obj, pa.Table):
                raise TypeError(f"asset {spec.name} returned {type(obj).__name__}, expected a pyarrow Table")
            store.write_table(spec, obj)
            row_count, partitions = obj.num_rows, None
        build = {
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": _metadata_value(context.output_metadata.get(SOURCE_METADATA_KEY)),
            "row_count": row_count,
            "pipeline_version": PIPELINE_VERSION,
        }
        if partitions is not None:
            build["partitions"] = partitions
        store.publish_metadata(spec, build)
        store.register_version()
        metadata = {
            "dagster/row_count": row_count,
            "location": MetadataValue.url(store.table_location(spec)),
        }
        if partitions is not None:
            metadata["partitions_on_storage"] = partitions
        context.add_output_metadata(metadata)

    @staticmethod
    def _write_partitions(context: OutputContext, store: CacheStore, spec: TableSpec, tables) -> int:
        """Write (or remove, for None) every requested partition; return the rows written."""
        if not isinstance(tables, dict):
            raise TypeError(f"asset {spec.name} returned {type(tables).__name__}, expected a dict of partitions")
        requested = set(context.asset_partition_keys)
        if set(tables) != requested:
            raise ValueError(
                f"asset {spec.name} returned partitions {sorted(tables)[:5]}... "
                f"but the run asked for {sorted(requested)[:5]}..."
            )
        rows = 0
        for key in sorted(tables):
            table = tables[key]
            if table is None:
                store.delete_partition(spec, key)
            else:
                store.write_partition(spec, key, table)
                rows += table.num_rows
        return rows

    def load_input(self, context: InputContext) -> pa.Table:
        spec = self.spec_for(context.asset_key)
        if spec.partitioned:
            raise NotImplementedError(f"{spec.name} is partitioned: read it through the client, not as an input")
        return self.store().read_table(spec)
