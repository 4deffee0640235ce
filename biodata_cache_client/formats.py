"""The `as_=` argument of every table function: the rows as pandas (default), Arrow or polars.

- `"pandas"`: the typed DataFrame of `frames.to_frame` (nullable integers, tz-aware timestamps,
  QC `status` as the ordered categorical Pass < Pending < Fail);
- `"arrow"`: the `pyarrow.Table` with the declared Arrow types (QC `status` a string);
- `"polars"`: `polars.from_arrow` of that table; polars is the optional extra
  `pip install 'biodata-cache[polars]'`.

`check_format` runs before anything is read, so a bad `as_` or a missing polars fails at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Union

import duckdb
import pandas as pd
import pyarrow as pa

from biodata_cache_client.frames import to_frame
from biodata_cache_client.schema.declaration import TableSpec

if TYPE_CHECKING:
    import polars

FORMATS = ("pandas", "arrow", "polars")
# What a table function returns, by `as_`.
Rows = Union[pd.DataFrame, pa.Table, "polars.DataFrame"]
POLARS_INSTALL = "pip install 'biodata-cache[polars]'"


def check_format(as_: str) -> None:
    """Refuse an unknown `as_`, and `as_="polars"` when polars is not installed, in one line."""
    if not isinstance(as_, str) or as_ not in FORMATS:
        raise ValueError(f"as_={as_!r} is not a result format; use one of {', '.join(map(repr, FORMATS))}")
    if as_ == "polars":
        _polars()


def table_as(table: pa.Table, spec: TableSpec | None, as_: str) -> Rows:
    """`table` in the format `as_`; `spec` (None for a custom table) types the pandas frame."""
    check_format(as_)
    if as_ == "arrow":
        return table
    if as_ == "polars":
        return _polars().from_arrow(table)
    return table.to_pandas() if spec is None else to_frame(table, spec)


def relation_as(relation: duckdb.DuckDBPyRelation, as_: str) -> Rows:
    """The rows of a DuckDB result in the format `as_`, with DuckDB's own types (for `query()`)."""
    check_format(as_)
    if as_ == "arrow":
        return relation.to_arrow_table()
    if as_ == "polars":
        return _polars().from_arrow(relation.to_arrow_table())
    return relation.df()


def _polars():
    try:
        return importlib.import_module("polars")
    except ImportError as error:
        raise ImportError(f"as_='polars' needs polars, which is not installed: {POLARS_INSTALL}") from error
