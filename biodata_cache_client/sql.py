"""`query(sql)`: DuckDB SQL over the tables of the selected version folder.

Each cache table is visible as a view named like the table. Only the tables whose names appear
in the statement are opened: each is registered as a pyarrow dataset (partition columns as
strings, filters and projections pushed down to the parquet scan), or as the upgraded table for
an older version folder, so local folders, the memory store, S3 and the local copy all work the
same way.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from biodata_cache_client.reader import current_reader
from biodata_cache_pipeline.tables import TABLES

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def query(sql: str) -> pd.DataFrame:
    """The rows of one SQL statement as a DataFrame."""
    reader = current_reader()
    words = {word.lower() for word in IDENTIFIER.findall(sql)}
    connection = duckdb.connect()
    try:
        for name in TABLES:
            if name in words:
                connection.register(name, reader.scan(TABLES[name]))
        result = connection.sql(sql)
        if result is None:
            raise ValueError(f"query() returns rows; this statement returns none: {sql!r}")
        return result.df()
    finally:
        connection.close()
