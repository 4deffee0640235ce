"""The cache layout (layout.md): every name and path under a cache root, and how objects are encoded.

Written by the pipeline and read by the client, so both take these rules from here:
- the version folder `bdc-v<MAJOR.MINOR>` of the installed package, and `cache_versions.json`, the
  JSON list of the version folders published under the root;
- in a version folder: `<table>.pqt`, or `<folder>/<key>=<encoded value>/data.pqt` per partition
  (hive style, see `encode_partition_value`), the column sidecar `<table>.json`, the registry
  (one fragment per table in `cache_registry/`, merged into `cache_registry.json`), user tables in
  `custom/<name>.pqt`, and two private dot/underscore folders no reader lists: `.build_state/`
  (per-partition rows and input fingerprint) and `_snapshot/` (the record snapshot: its rows, and
  the rows changed since they were written);
- `catalog.duckdb`, the DuckDB views of the version folder's tables (their stored columns in the
  schema `stored`);
- the build history (private): one immutable manifest per table build,
  `_builds/<table>/<build id>.json`, and content-addressed copies of the objects builds name,
  `_history/objects/<sha256>.pqt`; a build id is its UTC time and a hash,
  `20261201T221500.123456Z-1a2b3c4d`, so ids sort by time;
- `.staging/`, where a local writer makes its temp files (never inside a table folder);
- deterministic parquet (`parquet_bytes`) and JSON (`json_bytes`).

Paths here are relative to the root, `/`-separated; `biodata_cache_client.storage` maps them to a
local folder, S3 or the in-memory store.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from importlib.metadata import version as _distribution_version
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

from biodata_cache_client.schema.declaration import TableSpec

PIPELINE_VERSION = _distribution_version("biodata-cache")
VERSION_FOLDER_PATTERN = re.compile(r"^bdc-v(\d+)\.(\d+)$")
VERSIONS_FILE = "cache_versions.json"
PARTITION_FILE = "data.pqt"
CUSTOM_FOLDER = "custom"
CUSTOM_TABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
REGISTRY_FOLDER = "cache_registry"
REGISTRY_FILE = "cache_registry.json"
# Per-partition build state of partitioned tables (rows, input fingerprint): a dot folder, so
# hive discovery and the registry readers never see it.
BUILD_STATE_FOLDER = ".build_state"
STAGING_FOLDER = ".staging"
SNAPSHOT_FOLDER = "_snapshot"
SNAPSHOT_FILE = "records.parquet"
SNAPSHOT_CHANGES_FILE = "changes.parquet"  # the rows changed since records.parquet was written
CATALOG_FILE = "catalog.duckdb"
CATALOG_STORED_SCHEMA = "stored"  # the catalog's views of the stored columns, under its typed `main` views
BUILDS_FOLDER = "_builds"
HISTORY_OBJECTS_FOLDER = "_history/objects"
BUILD_ID = re.compile(r"(?P<time>\d{8}T\d{6}\.\d{6}Z)-[0-9a-f]{8}")
BUILD_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def version_folder(package_version: str = PIPELINE_VERSION) -> str:
    """`0.1.3` -> `bdc-v0.1`: patch releases share a folder, a minor bump starts a new one."""
    parts = package_version.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"package version {package_version!r} is not MAJOR.MINOR[.PATCH]")
    return f"bdc-v{int(parts[0])}.{int(parts[1])}"


def catalog_file(version: str) -> str:
    return f"{version}/{CATALOG_FILE}"


def build_time(build_id: str) -> datetime:
    """The UTC time a build id starts with."""
    match = BUILD_ID.fullmatch(build_id)
    if match is None:
        raise ValueError(f"{build_id!r} is not a build id (like 20261201T221500.123456Z-1a2b3c4d)")
    return datetime.strptime(match["time"], BUILD_TIME_FORMAT).replace(tzinfo=timezone.utc)


def manifest_relative(table: str, build_id: str) -> str:
    """Path of a build manifest relative to the version folder."""
    return f"{BUILDS_FOLDER}/{table}/{build_id}.json"


def history_object_relative(sha256: str) -> str:
    """Path of a content-addressed object copy relative to the version folder."""
    return f"{HISTORY_OBJECTS_FOLDER}/{sha256}.pqt"


def version_number(folder: str) -> tuple[int, int]:
    """`bdc-v0.10` -> (0, 10), for ordering version folders; (-1, -1) for any other name."""
    match = VERSION_FOLDER_PATTERN.match(folder)
    return (int(match[1]), int(match[2])) if match else (-1, -1)


def parse_versions(data: bytes) -> list[str]:
    """The version folders listed in `cache_versions.json`; `ValueError` saying what is wrong with it
    (the caller names the object): not JSON, or not a list of `bdc-vX.Y` names."""
    try:
        versions = json.loads(data)
    except ValueError as error:
        raise ValueError(f"is not valid JSON: {error}") from error
    if not isinstance(versions, list) or not all(
        isinstance(v, str) and VERSION_FOLDER_PATTERN.fullmatch(v) for v in versions
    ):
        raise ValueError("is not a JSON list of bdc-vX.Y names")
    return versions


# -- tables ----------------------------------------------------------------------------------------


def table_file(version: str, spec: TableSpec) -> str:
    """The object of an unpartitioned table."""
    return f"{version}/{spec.object_name}.pqt"


def table_folder(version: str, spec: TableSpec) -> str:
    """The folder of a partitioned table's partitions."""
    return f"{version}/{spec.object_name}"


def encode_partition_value(value: str) -> str:
    """The path segment for a partition value: `[A-Za-z0-9._-]` verbatim, anything else `%XX`."""
    if not isinstance(value, str):
        raise TypeError(f"partition value {value!r} must be a string, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise ValueError(f"partition value {value!r} cannot be stored: empty, '.' and '..' are not valid")
    return quote(value, safe="")


def partition_segment(spec: TableSpec, value: str) -> str:
    """`<key>=<encoded value>`, the folder of one partition."""
    return f"{spec.partition_key}={encode_partition_value(value)}"


def partition_file(version: str, spec: TableSpec, value: str) -> str:
    return f"{table_folder(version, spec)}/{partition_segment(spec, value)}/{PARTITION_FILE}"


def partition_value(spec: TableSpec, relative: str) -> str | None:
    """The decoded partition value of a path relative to the table folder (`<key>=<value>/data.pqt`),
    None when the path is not a partition object of this table."""
    segment, _, name = relative.partition("/")
    key, equals, value = segment.partition("=")
    if name == PARTITION_FILE and equals and key == spec.partition_key:
        return unquote(value)
    return None


def partition_value_of_file(path: str) -> str:
    """The decoded partition value of a partition object's path (its folder's `<key>=<value>`)."""
    return unquote(path.rsplit("/", 2)[-2].partition("=")[2])


def columns_file(version: str, spec: TableSpec) -> str:
    """The column sidecar: `{"columns": [...]}`."""
    return f"{version}/{spec.object_name}.json"


def build_state_file(version: str, spec: TableSpec) -> str:
    return f"{version}/{BUILD_STATE_FOLDER}/{spec.name}.json"


def snapshot_file(version: str) -> str:
    return f"{version}/{SNAPSHOT_FOLDER}/{SNAPSHOT_FILE}"


def snapshot_changes_file(version: str) -> str:
    return f"{version}/{SNAPSHOT_FOLDER}/{SNAPSHOT_CHANGES_FILE}"


# -- registry --------------------------------------------------------------------------------------


def registry_folder(version: str) -> str:
    return f"{version}/{REGISTRY_FOLDER}"


def registry_fragment(version: str, table: str) -> str:
    return f"{registry_folder(version)}/{table}.json"


def registry_file(version: str) -> str:
    return f"{version}/{REGISTRY_FILE}"


# -- custom tables ---------------------------------------------------------------------------------


def check_custom_table_name(name: str) -> None:
    """`ValueError` unless `name` is a valid custom table name (it can never leave its folder)."""
    if not isinstance(name, str) or not CUSTOM_TABLE_NAME.fullmatch(name):
        raise ValueError(f"custom table name {name!r} is not valid: use 1 to 128 of A-Z, a-z, 0-9, '_' and '-'")


def custom_folder(version: str) -> str:
    return f"{version}/{CUSTOM_FOLDER}"


def custom_file(version: str, name: str) -> str:
    """The object of a custom table (writers check the name first: `check_custom_table_name`)."""
    return f"{custom_folder(version)}/{name}.pqt"


# -- encodings -------------------------------------------------------------------------------------


def json_bytes(value) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic parquet: zstd, dictionary on non-float leaves, BYTE_STREAM_SPLIT on floats."""
    leaves = [leaf for field in table.schema for leaf in _leaf_columns(field.name, field.type)]
    floats = [path for path, leaf_type in leaves if pa.types.is_floating(leaf_type)]
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=[path for path, _ in leaves if path not in floats],
        column_encoding=dict.fromkeys(floats, "BYTE_STREAM_SPLIT"),
        use_compliant_nested_type=True,
    )
    return sink.getvalue().to_pybytes()


def _leaf_columns(name: str, arrow_type: pa.DataType) -> list[tuple[str, pa.DataType]]:
    """Parquet leaf column paths, as `use_dictionary` and `column_encoding` name them.

    A top-level name like `tags` matches nothing for a nested column: the options address leaves,
    so `list<string>` is `tags.list.element` (with compliant nested types).
    """
    if pa.types.is_list(arrow_type):
        return _leaf_columns(f"{name}.list.element", arrow_type.value_type)
    if pa.types.is_nested(arrow_type):
        raise TypeError(f"column {name}: nested type {arrow_type} is not supported by the cache writer")
    return [(name, arrow_type)]
