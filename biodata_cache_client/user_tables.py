"""User tables: `custom(name)` reads and `custom(name, df)` writes `<version>/custom/<name>.pqt`.

Names must match `[A-Za-z0-9_-]{1,128}`, so a user table can never leave its folder, and the
folder is its own namespace (a built table is never overwritten). Writes go through the cache's
storage layer with the layout's deterministic parquet encoding, atomically for readers. A local
or memory root is written directly; an S3 root needs AWS credentials (reads never do).

The frame is stored with its index: a RangeIndex as metadata, any other index (a MultiIndex too)
as columns, so `custom(name)` gives the same frame back and `query()` sees the index levels as
columns of the view `custom.<name>`. `custom(name, as_="arrow")` (or `"polars"`) reads the stored
table as it is, index levels as columns.
"""

from __future__ import annotations

import boto3
import pandas as pd
import pyarrow as pa

from biodata_cache_client.formats import Rows, check_format, table_as
from biodata_cache_client.layout import check_custom_table_name, custom_file, parquet_bytes
from biodata_cache_client.reader import current_reader
from biodata_cache_client.sources import root_uri
from biodata_cache_client.storage import storage_for


def custom(name: str, df: pd.DataFrame | None = None, as_: str = "pandas") -> Rows | None:
    """Read the user table `name` (as `as_`), or (with `df`) write it, replacing any previous one."""
    check_custom_table_name(name)
    check_format(as_)
    reader = current_reader()
    if df is None:
        return table_as(reader.read_custom(name), None, as_)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"custom table {name}: expected a pandas DataFrame to write, got {type(df).__name__}")
    settings = reader.settings
    root = root_uri(settings.root)
    if settings.offline:
        raise RuntimeError(f"custom table {name}: cannot write to {root} while offline (configure(offline=False))")
    if root.startswith("s3://") and boto3.Session().get_credentials() is None:
        raise PermissionError(
            f"writing custom table {name} to {root} needs AWS credentials (reading does not): set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (e.g. after `aws sso login`)"
        )
    storage_for(settings.root).put(custom_file(reader.version(), name), parquet_bytes(_arrow_table(name, df)))


def _arrow_table(name: str, df: pd.DataFrame) -> pa.Table:
    """The frame with its index as Arrow; a column Arrow cannot hold is named with its type."""
    try:
        return pa.Table.from_pandas(df, preserve_index=None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        for column, values in df.items():
            try:
                pa.array(values, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as column_error:
                raise TypeError(
                    f"custom table {name}: column {column!r} of type {values.dtype} cannot be stored "
                    f"({column_error}); convert it first, e.g. complex numbers to two float columns "
                    "(.real, .imag) or mixed objects with .astype(str)"
                ) from error
        raise TypeError(
            f"custom table {name}: the frame cannot be stored ({error}); convert its index or columns first"
        ) from error
