"""The DuckDB catalog of a version folder: `bdc-vX.Y/catalog.duckdb`, one view per published table.

`ATTACH '<root>/bdc-vX.Y/catalog.duckdb' AS bdc (READ_ONLY)` gives every table as `bdc.<table>`
in plain DuckDB (S3 roots through the httpfs extension). The file holds no data, only views:
- `stored.<table>`: the parquet as it is, by the absolute URI of the root (`s3://bucket/prefix/...`
  or `file://` + the local absolute path; DuckDB would resolve a relative path against the current
  folder, not against the catalog); a partitioned table is the glob over its partition files with hive
  partitioning, the partition column as VARCHAR (subject ids keep their leading zeros, `%XX` in a
  path is decoded).
- `main.<table>`: the declared columns (and the partition column) of `stored.<table>`, plus typed
  convenience columns for the time strings kept raw (`PARSED_COLUMNS`: `<column>_ts TIMESTAMPTZ`,
  a time without UTC offset taken as UTC whatever the session's TimeZone, `<column>_day DATE`;
  null when unparsable). The view and each of its columns carry the declaration's description as
  a DuckDB comment (`duckdb_columns().comment`).

It is a build product of the pipeline: `build_catalog` is pure (declarations of the published
tables + the version folder's URI -> the bytes of a DuckDB file built in a temp folder). DuckDB
binds a view when it creates it, so while it does, the URIs lead to zero-row stand-ins with the
declared schema (`_DeclaredFiles`): nothing is read from the cache, no S3 access is needed, and the
column types are the declared ones. The IO
manager writes it through `CacheStore` after each table it publishes, listing every table that has
a registry fragment, so a table that fails leaves the others in the catalog. The same statements
give byte-identical files, so an unchanged cache does not rewrite it. Partitions are found by the
glob when a query runs: a subject added or removed does not change the catalog. A memory root has
no catalog (DuckDB cannot read the process's in-memory store).

`biodata_cache_client.query()` uses the same catalog: it replaces the `stored` layer by its own
readers and creates the `main` views from their SQL in the catalog.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from functools import lru_cache

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from biodata_cache_client.layout import CATALOG_FILE, CATALOG_STORED_SCHEMA, PARTITION_FILE
from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.declaration import STRING, TableSpec
from biodata_cache_client.storage import MEMORY_SCHEME
from biodata_cache_pipeline.storage import CacheStore

TIMESTAMP, DATE = "timestamp", "date"
# Raw strings that the views also give typed: table -> column -> kind.
PARSED_COLUMNS: dict[str, dict[str, str]] = {
    "asset_basics": {
        "_last_modified": TIMESTAMP,
        "acquisition_start_time": TIMESTAMP,
        "acquisition_end_time": TIMESTAMP,
        "process_date": DATE,
    },
    "platform_qc": {"timestamp": TIMESTAMP},
    "assets_smartspim": {"processing_end_time": TIMESTAMP},
    "foraging_sessions": {"session_date": DATE},
}
# A time with a UTC offset (`Z`, `+07`, `-0700`, `+07:00`) after the date and time.
UTC_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ].*([Zz]|[+-]\d{2}(:?\d{2})?)$"
STAND_IN_PARTITION = "_"  # the one partition of a partitioned table's stand-in
STAND_IN_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _check_parsed_columns() -> None:
    """Each parsed column is a declared string column of its table."""
    for table, columns in PARSED_COLUMNS.items():
        declared = {column.name: column.type for column in TABLES[table].columns}
        for name in columns:
            if declared.get(name) != STRING:
                raise ValueError(f"PARSED_COLUMNS: {table}.{name} is not a declared string column")


_check_parsed_columns()


def publish_catalog(store: CacheStore) -> bool:
    """Write `catalog.duckdb` with a view of every table that has a registry fragment (and, if
    partitioned, a partition); True if it changed. A memory root has none: DuckDB cannot read it."""
    if store.root_uri.startswith(MEMORY_SCHEME):
        return False
    published = tuple(
        entry["name"]
        for entry in store.read_registry()["tables"]
        if entry["name"] in TABLES and entry.get("build", {}).get("partitions") != 0
    )
    return store.write_catalog(_catalog_bytes(published, store.version_uri))


@lru_cache(maxsize=8)
def _catalog_bytes(tables: tuple[str, ...], version_uri: str) -> bytes:
    """`build_catalog`, made once per process for a set of tables: every output of a run publishes
    the catalog, and building one takes about 0.3 s."""
    return build_catalog([TABLES[name] for name in tables], version_uri)


def build_catalog(specs: Iterable[TableSpec], version_uri: str) -> bytes:
    """The bytes of a DuckDB file with the views of `specs`, whose objects are under `version_uri`
    (`s3://bucket/prefix/bdc-vX.Y` or an absolute local path). Nothing is read from the cache:
    DuckDB binds each view, when it creates it, to a zero-row stand-in with the declared schema."""
    specs = sorted(specs, key=lambda spec: spec.name)
    folder_uri = _duckdb_uri(version_uri)
    scans = {spec.name: _object_uri(spec, folder_uri) for spec in specs}
    stand_ins = {_object_uri(spec, folder_uri, STAND_IN_PARTITION): spec for spec in specs}
    with tempfile.TemporaryDirectory(prefix="bdc-catalog-") as folder:
        path = os.path.join(folder, CATALOG_FILE)
        connection = duckdb.connect(path)
        try:
            connection.register_filesystem(_DeclaredFiles(stand_ins))
            connection.execute("BEGIN")  # one commit: much faster than one per statement
            for statement in catalog_statements(specs, scans):
                connection.execute(statement)
            connection.execute("COMMIT")
        finally:
            connection.close()
        with open(path, "rb") as built:
            return built.read()


def catalog_statements(specs: list[TableSpec], objects: dict[str, str]) -> list[str]:
    """The SQL that makes the catalog; `objects`: table name -> URI of its object (or partitions)."""
    statements = [f"CREATE SCHEMA {CATALOG_STORED_SCHEMA}"]
    for spec in specs:
        table = _identifier(spec.name)
        statements.append(f"CREATE VIEW {CATALOG_STORED_SCHEMA}.{table} AS SELECT * FROM {_parquet_scan(spec, objects[spec.name])}")
        columns = _view_columns(spec)
        selected = ", ".join(f"{expression} AS {_identifier(name)}" for name, expression, _ in columns)
        statements.append(f"CREATE VIEW main.{table} AS SELECT {selected} FROM {CATALOG_STORED_SCHEMA}.{table}")
        statements.append(f"COMMENT ON VIEW main.{table} IS {_literal(spec.description)}")
        statements += [
            f"COMMENT ON COLUMN main.{table}.{_identifier(name)} IS {_literal(description)}"
            for name, _, description in columns
        ]
    return statements


def _duckdb_uri(version_uri: str) -> str:
    """How plain DuckDB names the version folder: `s3://...`, or `file://` + the absolute path."""
    if version_uri.startswith("s3://"):
        return version_uri
    if version_uri.startswith("/"):
        return f"file://{version_uri}"
    raise ValueError(f"a DuckDB catalog needs an s3:// or absolute local version folder, not {version_uri!r}")


def _object_uri(spec: TableSpec, version_uri: str, partition: str = "*") -> str:
    """The table's object, or the file of its `partition` (by default the glob of them all)."""
    if not spec.partitioned:
        return f"{version_uri}/{spec.object_name}.pqt"
    return f"{version_uri}/{spec.object_name}/{spec.partition_key}={partition}/{PARTITION_FILE}"


def _parquet_scan(spec: TableSpec, uri: str) -> str:
    if not spec.partitioned:
        return f"read_parquet({_literal(uri)})"
    return f"read_parquet({_literal(uri)}, hive_partitioning = true, hive_types = {{{_literal(spec.partition_key)}: VARCHAR}})"


class _DeclaredFiles(AbstractFileSystem):
    """What DuckDB reads while it creates the views, for `s3://` and `file://` URIs: at each
    table's object (one partition for a partitioned table), a zero-row parquet file with the
    declared schema."""

    protocol = ("s3", "file")
    cachable = False

    def __init__(self, objects: dict[str, TableSpec]):
        super().__init__()
        self.files = {}
        for uri, spec in objects.items():
            sink = pa.BufferOutputStream()
            pq.write_table(spec.empty(), sink)
            self.files[self._strip_protocol(uri)] = sink.getvalue().to_pybytes()

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path).rstrip("/")
        entries = {}
        for name, data in self.files.items():
            if name == path:
                entries[name] = {"name": name, "size": len(data), "type": "file"}
            elif name.startswith(f"{path}/"):
                child = f"{path}/{name[len(path) + 1 :].split('/')[0]}"
                is_file = child == name
                entries[child] = {"name": child, "size": len(data) if is_file else 0, "type": "file" if is_file else "directory"}
        if not entries:
            raise FileNotFoundError(path)
        return list(entries.values()) if detail else sorted(entries)

    def modified(self, path):
        return STAND_IN_TIME

    def _open(self, path, mode="rb", **kwargs):
        return io.BytesIO(self.files[self._strip_protocol(path)])


def _view_columns(spec: TableSpec) -> list[tuple[str, str, str]]:
    """(name, SQL expression, description) of each column of the table's view."""
    columns = [(column.name, _identifier(column.name), column.description) for column in spec.columns]
    if spec.partitioned and spec.partition_key not in spec.column_names:
        key = spec.partition_key
        columns.append((key, _identifier(key), f"Partition key: the {key} of the partition folder."))
    for name, kind in PARSED_COLUMNS.get(spec.name, {}).items():
        raw = _identifier(name)
        if kind == TIMESTAMP:
            expression = (
                f"CASE WHEN regexp_matches({raw}, {_literal(UTC_OFFSET)}) THEN TRY_CAST({raw} AS TIMESTAMPTZ) "
                f"ELSE TRY_CAST({raw} AS TIMESTAMP) AT TIME ZONE 'UTC' END"
            )
            columns.append((f"{name}_ts", expression, f"{name} as a UTC timestamp (no offset: UTC); null if unparsable."))
        else:
            columns.append((f"{name}_day", f"TRY_CAST({raw} AS DATE)", f"{name} as a date; null if unparsable."))
    return columns


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
