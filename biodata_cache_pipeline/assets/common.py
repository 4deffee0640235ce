"""What every table asset shares: decorator arguments derived from the table declaration, the
record snapshot the tables are built from, and the fingerprint of a table's inputs."""

import hashlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from dagster import Output, TableColumn, TableSchema

from biodata_cache_client import schema
from biodata_cache_client.collector import collector_paused
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_pipeline import names, tables
from biodata_cache_pipeline.cache_resource import INPUT_METADATA_KEY, CacheResource
from biodata_cache_pipeline.io_manager import IO_MANAGER_KEY, SOURCE_METADATA_KEY
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.snapshot import RecordSnapshot, code_version, fingerprint, to_records

OWNERS = ["team:biodata-cache"]
SNAPSHOT_ASSET = "record_snapshot"


def column_schema(spec: TableSpec) -> TableSchema:
    return TableSchema(columns=[TableColumn(c.name, str(c.type), c.description) for c in spec.columns])


def writer_pool(spec: TableSpec) -> str:
    """The concurrency pool of a table's writer: with the instance's default pool limit of 1, two
    runs never write the same table (and its build state) at the same time."""
    return f"cache_table_{spec.name}"


def read_snapshot(cache: CacheResource) -> RecordSnapshot:
    """The stored record snapshot; an error saying how to make it when there is none."""
    store = cache.store()
    snapshot = store.open_snapshot()
    if snapshot is None:
        raise FileNotFoundError(
            f"no record snapshot at {store.snapshot_location}: materialise record_snapshot first "
            "(`biodata-cache-pipeline materialize` builds it with every table)"
        )
    return snapshot


@cache
def _table_code_version() -> str:
    """Identifies the code that builds tables: the normaliser and readers, the table modules and their
    declarations, names.py."""
    digest = hashlib.sha256(code_version().encode())
    folders = (Path(tables.__file__).parent, Path(schema.__file__).parent)
    for path in sorted([*(path for folder in folders for path in folder.glob("*.py")), Path(names.__file__)]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def input_fingerprint(spec: TableSpec, *inputs: pa.Table | str) -> str:
    """What a build of `spec` from these inputs (snapshot columns, input tables, partition keys) by
    this code gives: a published table with this fingerprint need not be built again."""
    return fingerprint(spec.name, _table_code_version(), *inputs)


def built_unless_unchanged(
    spec: TableSpec,
    cache: CacheResource,
    snapshot: RecordSnapshot,
    inputs: pa.Table,
    build: Callable[[pa.Table], tuple[object, dict]],
    *other_inputs: pa.Table | str,
    keys: list[str] | None = None,
) -> Output:
    """`build(inputs)` -> (table, metadata) as the asset's output; or, when the published table was
    built from inputs with the same fingerprint, that table as it is (the build is skipped)."""
    digest = input_fingerprint(spec, inputs, *other_inputs, *(keys or []))
    metadata = {SOURCE_METADATA_KEY: snapshot.source, INPUT_METADATA_KEY: digest}
    published = cache.published_if_unchanged(spec, digest, keys)
    if published is not None:
        return Output(published, metadata={**metadata, "rebuilt": False})
    table, build_metadata = build(inputs)
    return Output(table, metadata={**metadata, "rebuilt": True, **build_metadata})


def count_malformed(tally: RecordTally, rows: pa.Table) -> None:
    """Count the malformed records of snapshot rows in `tally`: only the rows with problems are
    made records (making one per row cost about 1 s per 100,000)."""
    malformed = pc.fill_null(pc.greater(pc.list_value_length(rows.column("problems")), 0), False)
    tally.add(to_records(rows.filter(malformed).select(list(RecordTally.ATTRIBUTES))))


def malformed_records(rows: pa.Table) -> dict:
    """The `RecordTally` metadata of snapshot rows: how many records were malformed, and why."""
    tally = RecordTally()
    count_malformed(tally, rows)
    return tally.metadata()


def from_rows(build_table: Callable) -> Callable[[pa.Table], tuple[object, dict]]:
    """A build over snapshot rows as an Arrow table, counting the malformed records (for
    `built_unless_unchanged`)."""

    def build(inputs: pa.Table) -> tuple[object, dict]:
        with collector_paused():
            return build_table(inputs), malformed_records(inputs)

    return build


def from_records(build_table: Callable) -> Callable[[pa.Table], tuple[object, dict]]:
    """A build over snapshot rows as records, counting the malformed ones (for `built_unless_unchanged`)."""

    def build(inputs: pa.Table) -> tuple[object, dict]:
        tally = RecordTally()
        with collector_paused():
            return build_table(tally.track(to_records(inputs))), tally.metadata()

    return build


def table_asset(spec: TableSpec, group: str, deps: tuple[str, ...] = (SNAPSHOT_ASSET,), pooled: bool = True) -> dict:
    """Keyword arguments for `@asset` of the table `spec`; `deps`: what it reads besides its inputs.
    `pooled=False`: no writer pool, for a table whose runs over other partitions may write at the
    same time (quality_control: `subject_runs.py`)."""
    metadata = {"dagster/column_schema": column_schema(spec), "table_type": spec.type}
    if spec.partitioned:
        metadata.update(folder=f"{spec.object_name}/", partition_key=spec.partition_key)
    return {
        "name": spec.name,
        "deps": list(deps),
        "description": spec.description,
        "group_name": group,
        "io_manager_key": IO_MANAGER_KEY,
        "owners": OWNERS,
        "kinds": {"python", "parquet"},
        "tags": {"table_type": spec.type},
        **({"pool": writer_pool(spec)} if pooled else {}),
        "metadata": metadata,
    }


