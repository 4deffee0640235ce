"""What the asset checks verify, as pure functions over Arrow values (see `assets/checks.py`); the
IO manager enforces the declared constraints (`constraint_problems`) before it writes a table."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from biodata_cache_client.schema.declaration import TableSpec


def schema_problems(spec: TableSpec, stored: pa.Schema) -> list[str]:
    """How a stored file schema differs from the declaration ([] when it matches)."""
    declared = spec.schema
    if stored.names != declared.names:
        return [f"columns {stored.names} differ from the declared {declared.names}"]
    return [
        f"column {name} is {stored.field(name).type}, declared {declared.field(name).type}"
        for name in declared.names
        if not stored.field(name).type.equals(declared.field(name).type)
    ]


class ConstraintViolation(ValueError):
    """A built table breaks a constraint of its declaration: it is not written."""


def duplicated_values(values: pa.ChunkedArray | pa.Array) -> list:
    """Values that occur more than once (nulls included), sorted by their string form."""
    counts = pc.value_counts(values)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
    return sorted(repeated, key=str)


def partition_column_problems(key: str, values: pa.ChunkedArray | pa.Array) -> list[str]:
    """Rows of partition `key` whose stored partition column is null or names another partition."""
    nulls = values.null_count
    others = sorted({v for v in pc.unique(values).to_pylist() if v is not None and v != key})
    problems = [f"{key}: {nulls} rows with a null partition key"] if nulls else []
    if others:
        problems.append(f"{key}: rows of other partitions {others[:5]}")
    return problems


def partition_column_proven(key: str, footer: pq.FileMetaData, column: str) -> bool:
    """Whether a partition file's footer statistics show that every row has `column` == `key`
    (no null, no other value), so its data need not be read. False when they cannot tell."""
    for group in range(footer.num_row_groups):
        row_group = footer.row_group(group)
        if row_group.num_rows == 0:
            continue
        chunk = next((row_group.column(i) for i in range(row_group.num_columns)
                      if row_group.column(i).path_in_schema == column), None)
        stats = chunk.statistics if chunk is not None else None
        if stats is None or not stats.has_min_max or not stats.has_null_count:
            return False
        if stats.null_count != 0 or stats.min != key or stats.max != key:
            return False
    return True


def unique_problems(spec: TableSpec, table: pa.Table) -> list[str]:
    """Values that occur more than once in a column `spec` declares unique (nulls aside); a
    missing column is left to the schema check."""
    return [
        f"{column} {value!r} occurs more than once"
        for column in spec.unique
        if column in table.column_names
        for value in duplicated_values(pc.drop_null(table.column(column)))
    ]


def constraint_problems(spec: TableSpec, table: pa.Table, partition: str | None = None) -> list[str]:
    """How `table` (partition `partition` of a partitioned table) breaks its declared constraints."""
    problems = unique_problems(spec, table)
    if partition is not None and spec.partition_key in table.column_names:
        problems += partition_column_problems(partition, table.column(spec.partition_key))
    return problems
