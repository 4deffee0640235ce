"""The one IO manager: every table write goes through it (via the `CacheStore` of its cache resource).

Assets return Arrow tables; partitioned assets return a dict partition key -> table (None removes
that partition) or a `PartitionedBuild`, which adds the fingerprint of each partition's input.
Before anything is written, the publish guard compares the table's new row count with the
published one (see `publish_guard.py`). After the data is written the IO manager records the
per-partition build state (only this run's partitions: runs over other partitions of the same
table may publish at the same time, `cache_resource.publish_partitions`), publishes the column
sidecar and the registry fragment with its build manifest, and registers the version folder; then
it writes the version folder's DuckDB catalog over every table published so far (`catalog.py`; not
rewritten when unchanged, and not made again after an output that published nothing). A table
(or partition) built again with the same bytes is not rewritten, and keeps its manifest unless the
fingerprint of its inputs moved on. An asset whose
input fingerprint equals the published manifest's may return the published table as it is
(`CacheResource.published_if_unchanged`), skipping the build.

Before the guard, the IO manager enforces the constraints the table's declaration states (unique
columns, the stored partition key column; `table_checks.constraint_problems`) on every table or
partition of the output: a build that breaks one fails its step and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import Field

from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_pipeline.cache_resource import INPUT_METADATA_KEY, CacheResource, publish_build, publish_partitions
from biodata_cache_pipeline.catalog import publish_catalog
from biodata_cache_pipeline.dagster_internals import add_partition_metadata
from biodata_cache_pipeline.publish_guard import DEFAULT_MAX_ROW_DROP_FRACTION, PublishRefused, publish_refusal
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.table_checks import ConstraintViolation, constraint_problems

SOURCE_METADATA_KEY = "source"
IO_MANAGER_KEY = "cache_io_manager"
PROBLEMS_SHOWN = 5  # constraint problems named in the error
PARTITION_WRITERS = 4  # threads writing the partitions of one output


@dataclass(frozen=True)
class PartitionedBuild:
    """A partitioned asset's output: a table per requested partition (None removes it) and,
    optionally, the fingerprint of the input each partition was built from."""

    tables: Mapping[str, pa.Table | None]
    fingerprints: Mapping[str, str | None] = field(default_factory=dict)


def _metadata_value(value):
    return getattr(value, "value", value)


def _tables(spec: TableSpec, obj) -> Mapping[str, pa.Table | None]:
    """The partition tables of a partitioned asset's output."""
    if isinstance(obj, PartitionedBuild):
        return obj.tables
    if isinstance(obj, dict):
        return obj
    raise TypeError(f"asset {spec.name} returned {type(obj).__name__}, expected a dict of partitions")


def _partition_rows(table: pa.Table | None) -> dict:
    """One partition's row count, for its materialization event (0: the partition was removed)."""
    rows = 0 if table is None else table.num_rows
    return {"dagster/row_count": rows, "dagster/partition_row_count": rows}


def _total_rows(state: Mapping[str, dict]) -> int:
    return sum(entry["rows"] for entry in state.values())


class CacheIOManager(ConfigurableIOManager):
    """Writes cache tables as versioned parquet to its cache resource."""

    cache: CacheResource
    max_row_drop_fraction: float = Field(
        default=DEFAULT_MAX_ROW_DROP_FRACTION,
        ge=0,
        le=1,
        description="Refuse to publish a build whose table has this fraction fewer rows than the published one.",
    )
    force_publish: bool = Field(
        default=False, description="Publish even when the publish guard refuses (a deliberate large drop)."
    )

    @staticmethod
    def spec_for(asset_key) -> TableSpec:
        return TABLES[asset_key.path[-1]]

    def force_publish_run_config(self) -> dict:
        """Run config that publishes despite the guard (its own settings are replaced as a whole; the
        cache resource stays)."""
        settings = self.model_dump(exclude={"cache"})
        return {"resources": {IO_MANAGER_KEY: {"config": {**settings, "force_publish": True}}}}

    def handle_output(self, context: OutputContext, obj) -> None:
        spec = self.spec_for(context.asset_key)
        store = self.cache.store()
        source = _metadata_value(context.output_metadata.get(SOURCE_METADATA_KEY))
        fingerprint = _metadata_value(context.output_metadata.get(INPUT_METADATA_KEY))
        published = store.read_build(spec)
        # Published again when the bytes or their inputs changed, or when the table has no build
        # manifest yet (a cache published before build history: its first one).
        outdated = "build_id" not in published or (fingerprint is not None and fingerprint != published.get(INPUT_METADATA_KEY))
        if spec.partitioned:  # the state as written, with the partitions of runs over others
            changes, written, changed = self._write_partitions(context, store, spec, obj)
            if changed or outdated:
                state = publish_partitions(store, spec, changes, source, fingerprint)
            else:
                state = store.read_partition_state(spec)
            row_count, partitions = _total_rows(state), len(state)
        else:
            (row_count, changed), partitions, written = self._write_table(store, spec, obj), None, None
            if changed or outdated:
                publish_build(store, spec, source, row_count, fingerprint)
        if changed or outdated or not store.catalog_exists():  # the catalog lists the published tables
            publish_catalog(store)
        url = store.table_url(spec)
        metadata = {
            "dagster/uri": store.table_location(spec),
            "location": MetadataValue.url(url) if url else store.table_location(spec),
            "rewritten": changed,
        }
        if partitions is None:
            metadata["dagster/row_count"] = row_count
        else:  # each partition's event shows its own rows; the table's total is `table_rows`
            metadata.update(table_rows=row_count, partitions=partitions, rows_written=written)
            add_partition_metadata(context, {key: _partition_rows(table) for key, table in _tables(spec, obj).items()})
        context.add_output_metadata(metadata)

    def _guard(self, store: CacheStore, spec: TableSpec, published_rows: int | None, new_rows: int) -> None:
        refusal = publish_refusal(spec.name, published_rows, new_rows, self.max_row_drop_fraction)
        if refusal is None or self.force_publish:
            return
        raise PublishRefused(
            f"refusing to publish {refusal}. The published table at {store.table_location(spec)} is unchanged. "
            f"If the drop is expected, run again with `biodata-cache-pipeline materialize --force-publish` "
            f"(`make run FORCE_PUBLISH=1`), or "
            f"launch with the run config {json.dumps(self.force_publish_run_config())}."
        )

    @staticmethod
    def _enforce(store: CacheStore, spec: TableSpec, tables: Mapping[str | None, pa.Table | None]) -> None:
        """A `ConstraintViolation` naming the table and the first problems when a table (or
        partition, by key) breaks a constraint of the declaration."""
        problems = [p for key, table in tables.items() if table is not None for p in constraint_problems(spec, table, key)]
        if problems:
            more = f" and {len(problems) - PROBLEMS_SHOWN} more" if len(problems) > PROBLEMS_SHOWN else ""
            raise ConstraintViolation(
                f"refusing to publish {spec.name}, which breaks its declared constraints: "
                f"{'; '.join(problems[:PROBLEMS_SHOWN])}{more}. "
                f"The published table at {store.table_location(spec)} is unchanged."
            )

    def _write_table(self, store: CacheStore, spec: TableSpec, table) -> tuple[int, bool]:
        """Rows, and whether the stored table changed."""
        if not isinstance(table, pa.Table):
            raise TypeError(f"asset {spec.name} returned {type(table).__name__}, expected a pyarrow Table")
        self._enforce(store, spec, {None: table})
        published = store.read_parquet_metadata(spec)
        self._guard(store, spec, None if published is None else published.num_rows, table.num_rows)
        return table.num_rows, store.write_table(spec, table)

    def _write_partitions(
        self, context: OutputContext, store: CacheStore, spec: TableSpec, obj
    ) -> tuple[dict[str, dict | None], int, bool]:
        """Write (or remove, for None) every requested partition; return their build state entries
        (None: removed), the rows written, and whether anything stored changed."""
        obj = PartitionedBuild(_tables(spec, obj), obj.fingerprints if isinstance(obj, PartitionedBuild) else {})
        requested = set(context.asset_partition_keys)
        if set(obj.tables) != requested:
            raise ValueError(
                f"asset {spec.name} returned partitions {sorted(obj.tables)[:5]}... "
                f"but the run asked for {sorted(requested)[:5]}..."
            )
        self._enforce(store, spec, obj.tables)
        state = store.read_partition_state(spec)
        updated = {key: entry for key, entry in state.items() if key not in obj.tables}
        for key, table in obj.tables.items():
            if table is not None:
                updated[key] = {"rows": table.num_rows, "fingerprint": obj.fingerprints.get(key)}
        self._guard(store, spec, _total_rows(state) if state else None, _total_rows(updated))

        def write(key: str) -> int | None:
            """Rows written; None when nothing was (a removal, or the stored bytes were the same)."""
            table = obj.tables[key]
            if table is None:
                store.delete_partition(spec, key)
                return None
            return table.num_rows if store.write_partition(spec, key, table) else None

        # Threads: encoding parquet and waiting on the disk or S3 release the GIL, so the thousands
        # of partitions of a quality_control run are written side by side.
        with ThreadPoolExecutor(PARTITION_WRITERS, thread_name_prefix=f"write-{spec.name}") as pool:
            rows_written = [rows for rows in pool.map(write, sorted(obj.tables)) if rows is not None]
        written, changed = sum(rows_written), updated != state or bool(rows_written)
        return {key: updated.get(key) for key in obj.tables}, written, changed

    def load_input(self, context: InputContext) -> pa.Table:
        spec = self.spec_for(context.asset_key)
        if spec.partitioned:
            raise NotImplementedError(f"{spec.name} is partitioned: read it through the client, not as an input")
        return self.cache.store().read_table(spec)
