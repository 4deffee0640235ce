"""What every table asset shares: decorator arguments derived from the table declaration."""


from dagster import TableColumn, TableSchema

from biodata_cache_pipeline.tables.declaration import TableSpec

CACHE_IO_MANAGER = "cache_io_manager"


def column_schema(spec: TableSpec) -> TableSchema:
    return TableSchema(columns=[TableColumn(c.name, str(c.type), c.description) for c in spec.columns])


def table_asset(spec: TableSpec, group: str) -> dict:
    """Keyword arguments for `@asset` of the table `spec`."""
    return {
        "name": spec.name,
        "description": spec.description,
        "group_name": group,
        "io_manager_key": CACHE_IO_MANAGER,
        "kinds": {"python", "parquet"},
        "metadata": {"dagster/column_schema": column_schema(spec), "table_type": spec.type},
    }
