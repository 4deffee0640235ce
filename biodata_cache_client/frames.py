"""From stored Arrow data to typed results, driven by the pipeline's table declarations.

- `read_schema(spec)`: the declared columns plus, for a partitioned table whose key is not
  stored (platform_qc), the partition column as a string at the end.
- `upgrade(table, spec)`: a table written by an older pipeline version brought to the current
  declaration: renamed columns mapped (the declaration's `previous_names`), missing ones added as typed nulls, older types converted
  (comma-joined strings -> lists, epoch seconds or time strings -> UTC timestamps, times -> ISO
  strings), columns no longer declared dropped.
- `to_frame(table, spec)`: pandas with list columns as Python lists, nullable integers and
  booleans, tz-aware timestamps, and each column declared with `categories` (QC `status`:
  Pass < Pending < Fail) as an ordered categorical.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.collector import collector_paused
from biodata_cache_client.schema.declaration import Column, TableSpec

NULLABLE_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def read_schema(spec: TableSpec) -> pa.Schema:
    schema = spec.schema
    if spec.partitioned and spec.partition_key not in spec.column_names:
        schema = schema.append(pa.field(spec.partition_key, pa.string()))
    return schema


def matches_declaration(stored: pa.Schema, spec: TableSpec) -> bool:
    """Whether a stored file has exactly the current declared columns and types."""
    return stored.remove_metadata().equals(spec.schema)


def upgrade(table: pa.Table, spec: TableSpec) -> pa.Table:
    renames = {old: column.name for column in spec.columns for old in column.previous_names}
    present = set(table.column_names)
    names = [
        renames[name] if name in renames and renames[name] not in present else name for name in table.column_names
    ]
    table = table.rename_columns(names)
    arrays = []
    for column in spec.columns:
        if column.name in table.column_names:
            arrays.append(_convert(table.column(column.name).combine_chunks(), column.type, spec, column.name))
        else:
            arrays.append(pa.nulls(table.num_rows, column.type))
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def to_frame(table: pa.Table, spec: TableSpec) -> pd.DataFrame:
    with collector_paused():
        frame = table.to_pandas(types_mapper=NULLABLE_PANDAS_TYPES.get)
        for field in table.schema:
            if pa.types.is_list(field.type):
                frame[field.name] = pd.Series(_python_lists(table.column(field.name)), index=frame.index, dtype=object)
    for column in spec.columns:
        if column.categories and column.name in frame.columns:
            frame[column.name] = _ordered(frame[column.name], spec.name, column)
    return frame




def _python_lists(column: pa.ChunkedArray) -> list:
    """A list column as Python lists (None for null). For lists of strings the values are made in
    one vectorised step and sliced per row: five times faster than `to_pylist()` (100,000 rows of
    asset_basics, benchmarks/README.md)."""
    if not _is_text(column.type.value_type):
        return column.to_pylist()
    rows: list = []
    for chunk in column.chunks:
        values = chunk.flatten().to_numpy(zero_copy_only=False).tolist()
        ends = np.cumsum(chunk.value_lengths().fill_null(0).to_numpy()).tolist()
        starts = [0, *ends[:-1]]
        if chunk.null_count:
            valid = chunk.is_valid().to_numpy(zero_copy_only=False).tolist()
            rows.extend(values[s:e] if v else None for s, e, v in zip(starts, ends, valid))
        else:
            rows.extend(values[s:e] for s, e in zip(starts, ends))
    return rows


def _ordered(values: pd.Series, table: str, column: Column) -> pd.Categorical:
    """The values as the column's ordered categorical; values it does not declare come last, sorted."""
    declared = column.categories
    unknown = sorted(set(values.dropna()) - set(declared))
    if unknown:
        warnings.warn(
            f"{table}: {column.name} values {unknown} are not one of {declared}; ordered after {declared[-1]}"
        )
    return pd.Categorical(values, categories=[*declared, *unknown], ordered=True)


def _convert(array: pa.Array, target: pa.DataType, spec: TableSpec, name: str) -> pa.Array:
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    source = array.type
    if source == target:
        return array
    if pa.types.is_null(source):
        return pa.nulls(len(array), target)
    if pa.types.is_list(target) and _is_text(source):
        return pa.array([_split(v) for v in array.to_pylist()], type=target)
    if pa.types.is_timestamp(target) and pa.types.is_timestamp(source):
        return array.cast(target, safe=False)  # naive times are UTC; sub-microsecond digits dropped
    if pa.types.is_timestamp(target) and pa.types.is_integer(source):
        return pc.multiply(array.cast(pa.int64()), 1_000_000).cast(target)  # epoch seconds
    if pa.types.is_timestamp(target) and _is_text(source):
        parsed = pd.to_datetime(pd.Series(array.to_pylist(), dtype=object), utc=True, errors="coerce", format="ISO8601")
        return pa.array(parsed, type=target)
    if _is_text(target) and pa.types.is_timestamp(source):
        return pa.array([None if v is None else v.isoformat() for v in array.to_pylist()], type=target)
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"table {spec.name}: column {name} stored as {source} cannot be read as {target}") from error


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def _split(value: str | None) -> list[str] | None:
    """An older comma-joined list (`"SPIM, behavior"`) as a list."""
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]
