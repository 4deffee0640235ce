"""What every table asset shares: decorator arguments derived from the table declaration."""

from dagster import TableColumn, TableSchema

from biodata_cache_pipeline.io_manager import IO_MANAGER_KEY
from biodata_cache_pipeline.tables.declaration import TableSpec

OWNERS = ["team:biodata-cache"]


def column_schema(spec: TableSpec) -> TableSchema:
    return TableSchema(columns=[TableColumn(c.name, str(c.type), c.description) for c in spec.columns])


def writer_pool(spec: TableSpec) -> str:
    """The concurrency pool of a table's writer: with the instance's default pool limit of 1, two
    runs never write the same table (and its build state) at the same time."""
    return f"cache_table_{spec.name}"


def table_asset(spec: TableSpec, group: str) -> dict:
    """Keyword arguments for `@asset` of the table `spec`."""
    metadata = {"dagster/column_schema": column_schema(spec), "table_type": spec.type}
    if spec.partitioned:
        metadata.update(folder=f"{spec.object_name}/", partition_key=spec.partition_key)
    return {
        "name": spec.name,
        "description": spec.description,
        "group_name": group,
        "io_manager_key": IO_MANAGER_KEY,
        "owners": OWNERS,
        "kinds": {"python", "parquet"},
        "tags": {"table_type": spec.type},
        "pool": writer_pool(spec),
        "metadata": metadata,
    }


