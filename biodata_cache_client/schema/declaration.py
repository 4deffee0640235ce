"""Table declarations: the one place each cache table's columns, types and layout are stated.

A `TableSpec` is declared in `biodata_cache_client/schema/<table>.py`, the contract between the
pipeline that builds the table and the client that reads it. Everything else derives from it:
the Arrow schema and the constraints enforced on write, the object path, the registry entry, the
column sidecar, the Dagster column schema shown in the UI and the client's typed frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

TableType = Literal["metadata", "asset", "platform"]

# Types used by the declarations (layout.md, "Parquet").
STRING = pa.string()
STRING_LIST = pa.list_(pa.string())
BOOL = pa.bool_()
INT64 = pa.int64()
DOUBLE = pa.float64()
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaMismatch(ValueError):
    """A built table does not match its declaration."""


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    # Names this column had in older version folders; readers map them when upgrading on read.
    previous_names: tuple[str, ...] = ()
    # The values of an ordered categorical, lowest first: readers give them in this order.
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """A cache table: name, kind, stored columns and (for partitioned tables) folder and key.

    The partition key may or may not be a stored column (quality_control stores `subject_id`,
    platform_qc does not); readers get it from the hive path either way. Constraints, which the IO
    manager enforces before writing anything and the asset checks verify on what is stored
    (`table_checks.constraint_problems`): each `unique` column holds no value twice (nulls
    aside), and a stored partition key column holds its partition's key in every row.
    """

    name: str
    description: str
    type: TableType
    columns: tuple[Column, ...]
    partition_key: str | None = None
    folder: str | None = None
    static_partitions: tuple[str, ...] = field(default=())
    unique: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names in {names}")
        if not set(self.unique) <= set(names):
            raise ValueError(f"table {self.name}: unique columns {sorted(set(self.unique) - set(names))} are not declared")
        if (self.partition_key is None) != (self.folder is None):
            raise ValueError(f"table {self.name}: a partitioned table needs both a folder and a partition key")

    @property
    def partitioned(self) -> bool:
        return self.partition_key is not None

    @property
    def object_name(self) -> str:
        """The name under the version folder: `<table>` or the partition folder."""
        return self.folder or self.name

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    def empty(self) -> pa.Table:
        return self.schema.empty_table()

    def from_columns(self, columns: dict[str, list]) -> pa.Table:
        """Build a table from Python lists, one per declared column."""
        missing = set(self.column_names) - set(columns)
        extra = set(columns) - set(self.column_names)
        if missing or extra:
            raise SchemaMismatch(
                f"table {self.name}: columns missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        return pa.table([pa.array(columns[c.name], type=c.type) for c in self.columns], schema=self.schema)

    def from_rows(self, rows: list[dict]) -> pa.Table:
        return self.from_columns({c: [r[c] for r in rows] for c in self.column_names})

    def conform(self, table: pa.Table) -> pa.Table:
        """Return `table` with exactly the declared schema, or raise `SchemaMismatch`.

        Column names and order must match. A column may differ in type only when it is entirely
        null (`pa.null()`), which is cast; any other type difference is an error, so a column can
        never silently change type between runs.
        """
        if table.column_names != self.column_names:
            raise SchemaMismatch(
                f"table {self.name}: columns {table.column_names} differ from the declared {self.column_names}"
            )
        arrays = []
        for column, declared in zip(table.columns, self.columns):
            if column.type == declared.type:
                arrays.append(column)
            elif column.type == pa.null():
                arrays.append(pa.nulls(len(column), declared.type))
            else:
                raise SchemaMismatch(
                    f"table {self.name}: column {declared.name} is {column.type}, declared {declared.type}"
                )
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def registry_entry(self, location: str) -> dict:
        """The layout's CacheTable object for this table at `location`."""
        return {
            "name": self.name,
            "description": self.description,
            "location": location,
            "partitioned": self.partitioned,
            "partition_key": self.partition_key,
            "type": self.type,
            "columns": [{"name": c.name, "description": c.description} for c in self.columns],
        }
