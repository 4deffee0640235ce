"""`query(sql)`: DuckDB SQL over the tables of the selected version folder.

Each cache table is visible as a view named like the table, and each custom table as the view
`custom.<name>` (quoted when the name has a `-`: `custom."my-table"`). Only the tables whose names
appear in the statement are opened: each is registered as a pyarrow dataset (partition columns as
strings, filters and projections pushed down to the parquet scan), or as the upgraded table for
an older version folder, so local folders, the memory store, S3 and the local copy all work the
same way. When the version folder has a `catalog.duckdb`, each table is the catalog's view over
that dataset (the columns of plain DuckDB attaching the catalog, typed convenience columns
included; `catalog.py`). A table that does not exist raises `TableNotFoundError` listing the
tables there are; an object that cannot be read while DuckDB scans it raises `CacheReadError`.
`as_of=` reads each table at its newest build at or before that time; `build=<id>` reads the table
with that build at it and every other table as of its `built_at` (see `builds`); custom tables
have no builds.

`read_only=True` (the default of `biodata-cache sql`) runs one SELECT over the cache's views and
nothing else: DuckDB's parser must see exactly one SELECT statement (WITH ... SELECT, FROM ...,
DESCRIBE and SUMMARIZE included), and once the views are registered DuckDB's external access is
switched off and the configuration locked, so no file, URL, database or extension can be read,
written, attached or loaded (read_csv, read_parquet, glob, COPY, ATTACH, INSTALL, LOAD, ...).

`as_="arrow"` (or `"polars"`) gives the rows as DuckDB's Arrow table (or polars from it) instead of
its pandas frame; the types are DuckDB's (QC `status` stays a string).
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from biodata_cache_client.builds import at_build
from biodata_cache_client.catalog import catalog_views, create_view
from biodata_cache_client.errors import CacheReadError
from biodata_cache_client.formats import Rows, check_format, relation_as
from biodata_cache_client.layout import CUSTOM_FOLDER
from biodata_cache_client.reader import CacheReader, TableNotFoundError, current_reader
from biodata_cache_client.schema import TABLES
from biodata_cache_client.storage.s3 import READ_ADVICE

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CUSTOM_REFERENCE = re.compile(rf'\b{CUSTOM_FOLDER}\s*\.\s*(?:"([^"]+)"|([A-Za-z0-9_]+))', re.IGNORECASE)
MISSING_TABLE = re.compile(r'Table with name "?([^"\s]+?)"? does not exist')
# How DuckDB reports that scanning a registered Arrow dataset failed: a cache object could not be read.
ARROW_SCAN_FAILURE = "arrow_scan: get_next failed()"
PYTHON_DETAIL = " Detail: Python exception"
READ_ONLY_ADVICE = (
    "query one SELECT over the cache's views, or turn read-only off (query(sql, read_only=False), "
    "`biodata-cache sql --no-read-only`)"
)


def _for_duckdb(scanned: ds.Dataset | pa.Table) -> ds.Dataset | pa.Table:
    """What DuckDB scans: a dataset read through a Python filesystem (the retrying S3 reads) is read
    into a table first, so that DuckDB's scan threads never call into Python (a scan thread holding
    the GIL while waiting for a read that needs it deadlocked the query)."""
    if isinstance(scanned, ds.FileSystemDataset) and isinstance(scanned.filesystem, pafs.PyFileSystem):
        return scanned.to_table()
    return scanned


@at_build
def query(sql: str, read_only: bool = False, as_: str = "pandas") -> Rows:
    """The rows of one SQL statement (as `as_`); `read_only=True` allows one SELECT over the views only."""
    check_format(as_)
    if read_only:
        _check_one_select(sql)
    reader = current_reader()
    words = {word.lower() for word in IDENTIFIER.findall(sql)}
    tables = [name for name in TABLES if name in words]
    custom_names = {quoted or plain for quoted, plain in CUSTOM_REFERENCE.findall(sql)}
    version = reader.version() if tables or custom_names else None
    connection = duckdb.connect()
    try:
        views = catalog_views(reader, version) if tables else {}
        for name in tables:
            scanned = _for_duckdb(reader.scan(TABLES[name], version=version))
            if name in views:
                create_view(connection, name, views[name], scanned)
            else:
                connection.register(name, scanned)
        _register_custom_tables(connection, reader, version, custom_names)
        if read_only:
            connection.execute("set enable_external_access = false")
            connection.execute("set lock_configuration = true")
        try:
            result = connection.sql(sql)
            if result is None:
                raise ValueError(f"query() returns rows; this statement returns none: {sql!r}")
            return relation_as(result, as_)
        except duckdb.CatalogException as error:
            missing = MISSING_TABLE.search(str(error))
            if missing is None:
                raise
            raise _table_not_found(reader, missing[1], custom_names) from error
        except duckdb.PermissionException as error:
            if not read_only:
                raise
            raise PermissionError(
                f"read-only query refused: it reaches outside the cache's views ({_first_line(error)}); "
                f"{READ_ONLY_ADVICE}"
            ) from error
        except duckdb.InvalidInputException as error:
            if ARROW_SCAN_FAILURE not in str(error):
                raise
            message = _first_line(error)
            advice = "" if READ_ADVICE in message else f"; {READ_ADVICE}"
            raise CacheReadError(
                f"could not read the tables {', '.join([*tables, *sorted(custom_names)])} of version folder "
                f"{version} of cache root {reader.source.description}: {message}{advice}"
            ) from error
    finally:
        connection.close()


def _check_one_select(sql: str) -> None:
    """Refuse, before anything runs, a text that DuckDB's parser does not read as one SELECT statement."""
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = " + ".join(statement.type.name for statement in statements) or "no statement"
        raise PermissionError(f"read-only query refused: it is {kinds}, not one SELECT; {READ_ONLY_ADVICE}")


def _first_line(error: duckdb.Error) -> str:
    """DuckDB's message up to any Python traceback it carries, on one line."""
    return " ".join(str(error).partition(PYTHON_DETAIL)[0].split())


def _register_custom_tables(
    connection: duckdb.DuckDBPyConnection, reader: CacheReader, version: str | None, names: set[str]
) -> None:
    """The schema `custom`, with a view of each custom table named in the statement that exists."""
    connection.execute(f"create schema {CUSTOM_FOLDER}")
    if not names:
        return
    for name in sorted(names & set(reader.custom_tables(version))):
        hidden = f"_{CUSTOM_FOLDER}_{name}"
        connection.register(hidden, reader.read_custom(name, version))
        connection.execute(f'create view {CUSTOM_FOLDER}."{name}" as select * from "{hidden}"')


def _table_not_found(reader: CacheReader, name: str, custom_names: set[str]) -> TableNotFoundError:
    """The error for a table DuckDB did not find, listing the cache's tables and custom tables."""
    table = f"{CUSTOM_FOLDER}.{name}" if name in custom_names else name
    missing_root = reader.missing_root()
    if missing_root:
        return TableNotFoundError(f"table {table} not found: {missing_root}")
    version = reader.version()
    custom = [f"{CUSTOM_FOLDER}.{custom_table}" for custom_table in reader.custom_tables(version)]
    return TableNotFoundError(
        f"table {table} not found in version folder {version} of cache root {reader.source.description}; "
        f"query the tables {', '.join(TABLES)} or the custom tables: {', '.join(custom) or 'none'}"
    )
