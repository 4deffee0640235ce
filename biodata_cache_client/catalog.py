"""The table views of a version folder's `catalog.duckdb`, for `query()`.

The pipeline publishes the catalog (`biodata_cache_pipeline.catalog`): views `stored.<table>` over
the parquet files and `main.<table>` over them (declared columns plus typed convenience columns).
`query()` keeps its own readers (retrying S3 reads, local copy, offline, upgrades) as the `stored`
layer and creates the `main` views from their SQL in the catalog, so a query sees the same tables
and columns as plain DuckDB attaching the catalog. The catalog is read from where the reader
reads (a local root directly, S3 through the local copy when one is configured, else downloaded
into a temp file). A version folder without a catalog (older pipeline, memory root) gives no
views; an unreadable catalog gives none either, with a warning naming it.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import duckdb
import pyarrow.fs as pafs

from biodata_cache_client.reader import CacheReader
from biodata_cache_client.layout import CATALOG_FILE, CATALOG_STORED_SCHEMA

ATTACHED_AS = "published_catalog"


def catalog_views(reader: CacheReader, version: str) -> dict[str, str]:
    """Table name -> `CREATE VIEW` statement of its view in the catalog of `version`; {} without one."""
    relative = f"{version}/{CATALOG_FILE}"
    source = reader.source
    if not source.is_file(relative):
        return {}
    filesystem, [path] = source.fetch([relative], label=CATALOG_FILE)
    if isinstance(filesystem, pafs.LocalFileSystem):
        return _views(path, source.uri(relative))
    with tempfile.TemporaryDirectory(prefix="bdc-catalog-") as folder:
        local = os.path.join(folder, CATALOG_FILE)
        with filesystem.open_input_stream(path) as stream, open(local, "wb") as out:
            out.write(stream.read())
        return _views(local, source.uri(relative))


def _views(path: str, uri: str) -> dict[str, str]:
    connection = duckdb.connect()
    try:
        connection.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {ATTACHED_AS} (READ_ONLY)")
        rows = connection.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE database_name = ? AND schema_name = 'main'",
            [ATTACHED_AS],
        ).fetchall()
    except duckdb.Error as error:
        warnings.warn(f"{uri} is not a readable DuckDB catalog ({error}); query() reads without it", stacklevel=4)
        return {}
    finally:
        connection.close()
    return dict(rows)


def create_view(connection: duckdb.DuckDBPyConnection, name: str, statement: str, scanned) -> None:
    """The catalog's view `name` over `scanned` (what the reader gives for the table)."""
    hidden = f"_{CATALOG_STORED_SCHEMA}_{name}"
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {CATALOG_STORED_SCHEMA}")
    connection.register(hidden, scanned)
    connection.execute(f'CREATE VIEW {CATALOG_STORED_SCHEMA}."{name}" AS SELECT * FROM "{hidden}"')
    connection.execute(statement)
