"""What every table asset shares: decorator arguments derived from the table declaration, and the
record snapshot the tables are built from."""

from dagster import TableColumn, TableSchema

from biodata_cache_pipeline.io_manager import IO_MANAGER_KEY, CacheIOManager
from biodata_cache_pipeline.snapshot import RecordSnapshot
from biodata_cache_pipeline.tables.declaration import TableSpec

OWNERS = ["team:biodata-cache"]
SNAPSHOT_ASSET = "record_snapshot"


def column_schema(spec: TableSpec) -> TableSchema:
    return TableSchema(columns=[TableColumn(c.name, str(c.type), c.description) for c in spec.columns])


def writer_pool(spec: TableSpec) -> str:
    """The concurrency pool of a table's writer: with the instance's default pool limit of 1, two
    runs never write the same table (and its build state) at the same time."""
    return f"cache_table_{spec.name}"


def read_snapshot(cache_io_manager: CacheIOManager) -> RecordSnapshot:
    """The stored record snapshot; an error saying how to make it when there is none."""
    store = cache_io_manager.store()
    stored = store.open_snapshot()
    if stored is None:
        raise FileNotFoundError(
            f"no record snapshot at {store.snapshot_location}: materialise record_snapshot first "
            "(`biodata-cache-pipeline materialize` builds it with every table)"
        )
    return RecordSnapshot(stored)


def table_asset(spec: TableSpec, group: str, deps: tuple[str, ...] = (SNAPSHOT_ASSET,)) -> dict:
    """Keyword arguments for `@asset` of the table `spec`; `deps`: what it reads besides its inputs."""
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
        "pool": writer_pool(spec),
        "metadata": metadata,
    }


