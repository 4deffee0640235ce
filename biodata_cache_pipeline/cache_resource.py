"""The cache as a Dagster resource: what assets, checks, the subject sensor and the CLI read and
change of the published cache, outside the IO manager's writes.

`CacheResource` names the cache root and gives its `CacheStore` (over the shared storage layer,
`biodata_cache_client.storage`). The IO manager depends on it (`CacheIOManager.cache`) and writes
every table through the same store; the build manifests both publish are made by `publish_build`
(an unpartitioned table) and `publish_partitions` (a partitioned table, whose runs over other
partitions may publish at the same time). An s3:// root is reached through its `s3` resource
(`dagster_aws.s3.S3Resource`: endpoint, region, retries, unsigned reads;
`aws_settings.cache_connection`), for both boto3 and pyarrow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import pyarrow as pa
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from biodata_cache_client.layout import PIPELINE_VERSION
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_pipeline.aws_settings import cache_connection
from biodata_cache_pipeline.build_history import build_ids, manifest_recorder, record_build
from biodata_cache_pipeline.catalog import publish_catalog
from biodata_cache_pipeline.storage import CacheStore, UnreadableObject

INPUT_METADATA_KEY = "input_fingerprint"  # of what the table was built from; kept in the build manifest


class CacheResource(ConfigurableResource):
    """The cache root the pipeline publishes to (a local folder, s3://bucket/prefix or memory://name)."""

    root: str = Field(description="Cache root: a local folder or s3://bucket/prefix.")
    # Optional: Dagster gives a nested resource no default; None means `aws_settings.cache_s3_resource()`.
    s3: S3Resource | None = Field(
        default=None, description="How an s3:// root is reached; unset fields come from the standard AWS environment."
    )

    def store(self) -> CacheStore:
        return CacheStore(self.root, connection=cache_connection(self.s3))

    def read_published(self, spec: TableSpec, columns: list[str] | None = None) -> pa.Table | None:
        """The currently published unpartitioned table (or some columns), None if there is none yet."""
        store = self.store()
        if not store.table_exists(spec):
            return None
        return store.read_table(spec) if columns is None else store.read_columns(spec, columns)

    def published_if_unchanged(self, spec: TableSpec, fingerprint: str, keys: list[str] | None = None):
        """The published table (for a partitioned one: its `keys` partitions) when it was built from
        inputs with this fingerprint; None when it must be built."""
        store = self.store()
        if store.read_build(spec).get(INPUT_METADATA_KEY) != fingerprint:
            return None
        if not spec.partitioned:
            return store.read_table(spec) if store.table_exists(spec) else None
        if not set(keys) <= set(store.list_partitions(spec)):
            return None
        try:
            return {key: store.read_partition(spec, key) for key in keys}
        except UnreadableObject:  # a damaged partition: built again, and replaced
            return None

    def remove_partitions(self, spec: TableSpec, keys: Iterable[str]) -> list[str]:
        """Delete partitions (data and build state) outside a run; return the ones that existed."""
        keys = set(keys)
        if not keys:  # most nights: no listing
            return []
        store = self.store()
        state = store.read_partition_state(spec)
        stored = set(store.list_partitions(spec))
        removed = sorted(key for key in keys if key in state or key in stored)
        if not removed:
            return []
        for key in removed:
            if key in stored:
                store.delete_partition(spec, key)
        publish_partitions(store, spec, dict.fromkeys(removed), store.read_build(spec).get("source"))
        publish_catalog(store)
        return removed


def _build(source, row_count: int, partitions: int | None, fingerprint: str | None) -> dict:
    """A registry fragment's build manifest, but its build id."""
    build = {
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "row_count": row_count,
        "pipeline_version": PIPELINE_VERSION,
    }
    if partitions is not None:
        build["partitions"] = partitions
    if fingerprint is not None:
        build[INPUT_METADATA_KEY] = fingerprint
    return build


def publish_build(store: CacheStore, spec: TableSpec, source, row_count: int, fingerprint: str | None = None) -> None:
    """Publish an unpartitioned table's build manifest (registry fragment, merged registry, sidecar)
    and register the version folder."""
    build = _build(source, row_count, None, fingerprint)
    build["build_id"] = record_build(store, spec, row_count)  # the immutable manifest (build_history.py)
    store.publish_metadata(spec, build)
    store.register_version()


def publish_partitions(
    store: CacheStore, spec: TableSpec, changes: Mapping[str, dict | None], source, fingerprint: str | None = None
) -> dict[str, dict]:
    """Publish a partitioned table's build after a run wrote (or deleted) the partitions in `changes`
    (partition -> build state entry, None: removed): the build state and the immutable manifest
    in one conditional update (runs over other partitions may publish at the same time:
    build_history.py), then the registry fragment, made from the build state and newest manifest
    as they are when it is written, the merged registry, and the version registration. Returns the
    build state as written."""
    state = store.update_partition_state(spec, changes, manifest_recorder(store, spec))

    def current_build() -> dict:
        current = store.read_partition_state(spec)
        build = _build(source, sum(entry["rows"] for entry in current.values()), len(current), fingerprint)
        return {**build, "build_id": build_ids(store, spec)[-1]}

    store.publish_metadata(spec, current_build)
    store.register_version()
    return state
