"""Cache storage: every path, parquet write, registry and version entry of the cache (layout.md).

`CacheStore` owns a cache root, a local folder, `s3://bucket/prefix` or `memory://name` (the
process-wide in-memory store of fsspec, for tests), and writes it through one pyarrow filesystem.
On S3 it reads through the client's `RetryingS3Handler` over that filesystem: every read request
(HEAD, listing, each ranged read of a parquet file) is retried with backoff, since the AWS SDK
inside pyarrow does not retry a 503 answering a small ranged read, and a read that still fails
raises `CacheReadError` naming the object. Writes keep the SDK's retries (and botocore's for the
boto3 calls). Writes are atomic for readers: locally a temp file in
`<root>/.staging/` is renamed over the target (never inside a table folder, where DuckDB's `**`
glob would pick a crashed leftover up); on S3 each object is one PUT. `cache_versions.json` is
updated under an exclusive file lock locally and with conditional writes on S3, so concurrent
registrations never lose an entry. Partitioned tables also keep a small build state per
partition (rows, fingerprint of the input it was built from) in `bdc-vX.Y/.build_state/`, which
change detection and the registry row counts read instead of listing or opening every partition.
A table or partition whose new bytes equal the stored ones is not written again. The record
snapshot every table is built from lives in `bdc-vX.Y/_snapshot/`, a private area no reader lists.

A temp file's name holds its writer's host and process id: each snapshot refresh first removes the
temps of writers that are gone (`remove_stale_temps`), never one a running writer still fills. An
unreadable published object (a truncated parquet, a corrupt registry fragment or build state) is
reported by path with a warning and treated as absent, so the next build replaces it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import random
import re
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, unquote, urlsplit

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema.declaration import TableSpec

PARTITION_FILE = "data.pqt"
CUSTOM_FOLDER = "custom"
CUSTOM_TABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
REGISTRY_FOLDER = "cache_registry"
REGISTRY_FILE = "cache_registry.json"
# Per-partition build state of partitioned tables (rows, input fingerprint): a dot folder, so
# hive discovery and the registry readers never see it.
BUILD_STATE_FOLDER = ".build_state"
VERSIONS_FILE = "cache_versions.json"
STAGING_FOLDER = ".staging"
# Where the snapshot of a remote (S3, memory) root is written before its upload.
LOCAL_STAGING_FOLDER = os.path.join(tempfile.gettempdir(), f"biodata-cache-staging-{os.getuid()}")
# `.<object name>.<pid>-<token>-<host>.tmp`: a later run removes it once that process is gone.
TEMP_NAME = re.compile(r"\.(?P<name>.+?)\.(?P<pid>\d+)-[0-9a-f]{16}-(?P<host>[^/]*)\.tmp")
STALE_TEMP_SECONDS = 24 * 3600  # a temp whose writer cannot be checked (another host) is removed after this
SNAPSHOT_FOLDER = "_snapshot"
SNAPSHOT_FILE = "records.parquet"
VERSION_WRITE_ATTEMPTS = 10
# S3 answers a conditional PUT that lost a race with 412, or 409 while a competing write is in flight.
RETRYABLE_CONDITIONAL_ERRORS = ("PreconditionFailed", "ConditionalRequestConflict")
MEMORY_SCHEME = "memory://"
# Serialises version registrations in the in-memory store (one process by definition).
_MEMORY_VERSIONS_LOCK = threading.Lock()
log = logging.getLogger(__name__)


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for a local path, an `s3://` or `memory://` URI.

    S3 settings come from the standard AWS environment: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`,
    `AWS_REGION` / `AWS_DEFAULT_REGION` (else the bucket's region is looked up), and credentials
    from boto3's chain (environment, profile, role); without credentials access is anonymous.
    """
    path = _filesystem_path(uri)
    if _is_s3_uri(uri):
        return _s3_filesystem(bucket=path.split("/", 1)[0]), path
    if _is_memory_uri(uri):
        return memory_filesystem(), path
    return pafs.LocalFileSystem(), path


def _retrying_reads(s3: pafs.S3FileSystem) -> pafs.PyFileSystem:
    """`s3` for reading: every request retried with backoff, a read that still fails names its object."""
    from biodata_cache_client.sources import RetryingS3Handler  # the client imports this module: import when used

    return pafs.PyFileSystem(RetryingS3Handler(s3))


def memory_filesystem() -> pafs.PyFileSystem:
    """The in-memory store shared by every writer and reader of this process (fsspec's `memory`)."""
    import fsspec

    return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("memory")))


def encode_partition_value(value: str) -> str:
    """The path segment for a partition value: `[A-Za-z0-9._-]` verbatim, anything else `%XX`."""
    if not isinstance(value, str):
        raise TypeError(f"partition value {value!r} must be a string, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise ValueError(f"partition value {value!r} cannot be stored: empty, '.' and '..' are not valid")
    return quote(value, safe="")


@dataclass
class SnapshotOutput:
    """Where the next record snapshot is written (see `CacheStore.snapshot_output`)."""

    path: str
    publish: bool = True

    def discard(self) -> None:
        """Keep the stored snapshot (the new one holds the same rows)."""
        self.publish = False


class CacheStore:
    """Reads and writes one version folder of a cache root; see the module docstring."""

    def __init__(self, root: str, version: str = version_folder(), filesystem: pafs.FileSystem | None = None):
        if filesystem is None:
            filesystem, root_path = filesystem_for(root)
        else:
            root_path = _filesystem_path(root)
        expected = (
            pafs.S3FileSystem if _is_s3_uri(root) else pafs.PyFileSystem if _is_memory_uri(root) else pafs.LocalFileSystem
        )
        if not isinstance(filesystem, expected):
            raise TypeError(
                f"cache root {root!r} needs a {expected.__name__}, got {type(filesystem).__name__}"
            )
        self.filesystem = filesystem
        self.version = version
        self._is_s3 = _is_s3_uri(root)
        self._read_filesystem = _retrying_reads(filesystem) if self._is_s3 else filesystem
        self._is_memory = _is_memory_uri(root)
        self._root_path = root_path
        self.root_uri = self._uri(root_path)

    # -- paths ---------------------------------------------------------------------------------

    def table_location(self, spec: TableSpec) -> str:
        """The registry `location`: URI of `<table>.pqt`, or of the partition folder ending in `/`."""
        if spec.partitioned:
            return f"{self.root_uri}/{self.version}/{spec.object_name}/"
        return f"{self.root_uri}/{self.version}/{spec.object_name}.pqt"

    def table_url(self, spec: TableSpec) -> str | None:
        """A link a browser can open for `table_location` (None for the in-memory store)."""
        location = self.table_location(spec)
        if self._is_s3:
            bucket, _, key = location.removeprefix("s3://").partition("/")
            return f"https://{bucket}.s3.amazonaws.com/{quote(key)}"
        return None if self._is_memory else f"file://{quote(location)}"

    def partition_path(self, spec: TableSpec, value: str) -> str:
        """Filesystem path of `<folder>/<key>=<encoded value>/data.pqt`."""
        self._require_partitioned(spec, True)
        segment = f"{spec.partition_key}={encode_partition_value(value)}"
        return self._path(spec.object_name, segment, PARTITION_FILE)

    # -- the record snapshot ---------------------------------------------------------------------

    @property
    def snapshot_location(self) -> str:
        return self._uri(self._path(SNAPSHOT_FOLDER, SNAPSHOT_FILE))

    def open_snapshot(self) -> pq.ParquetFile | None:
        """The stored record snapshot, None when there is none yet."""
        try:
            return pq.ParquetFile(
                self._read_filesystem.open_input_file(self._path(SNAPSHOT_FOLDER, SNAPSHOT_FILE))
            )
        except FileNotFoundError:
            return None

    @contextmanager
    def snapshot_output(self) -> Iterator[SnapshotOutput]:
        """A local file for the next snapshot, published over the stored one (atomically for
        readers) when the block ends without an error and without `discard()`; otherwise the
        stored one stays. The temps of writers that are gone are removed first."""
        path = self._path(SNAPSHOT_FOLDER, SNAPSHOT_FILE)
        self.remove_stale_temps()
        folder = self._staging_folder
        os.makedirs(folder, exist_ok=True)
        temp = os.path.join(folder, _temp_name("records"))
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        output = SnapshotOutput(temp)
        try:
            yield output
            if not output.publish:
                return
            if self._is_s3:  # a managed upload: the object appears whole or not at all
                bucket, key = path.split("/", 1)
                with self._naming_failures(path, "write"):
                    self._s3_client.upload_file(temp, bucket, key)
            elif self._is_memory:
                with open(temp, "rb") as source:
                    self.filesystem.handler.fs.pipe_file(path, source.read())
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.replace(temp, path)
        finally:
            with suppress(FileNotFoundError):
                os.remove(temp)

    def remove_stale_temps(self) -> list[str]:
        """Remove the staging temps left by writers that are gone (killed mid-write): those written
        on this host by a process no longer running, and any older than `STALE_TEMP_SECONDS`; a
        temp of a running writer stays. Returns the paths removed."""
        try:
            entries = [entry for entry in os.scandir(self._staging_folder) if entry.name.endswith(".tmp")]
        except FileNotFoundError:
            return []
        now, removed = time.time(), []
        for entry in entries:
            match = TEMP_NAME.fullmatch(entry.name)
            mine = match is not None and unquote(match["host"]) == socket.gethostname()
            try:
                old = now - entry.stat().st_mtime > STALE_TEMP_SECONDS
            except FileNotFoundError:  # its writer just renamed it
                continue
            if old or (mine and not process_alive(int(match["pid"]))):
                with suppress(FileNotFoundError):
                    os.remove(entry.path)
                    removed.append(entry.path)
        return removed

    # -- tables --------------------------------------------------------------------------------

    def write_table(self, spec: TableSpec, table: pa.Table) -> bool:
        """Write the table unless the stored object holds the same bytes; True if it was written."""
        self._require_partitioned(spec, False)
        path = self._table_path(spec)
        return self._put_if_changed(path, _parquet_bytes(self._conform(spec, table, path)))

    def write_partition(self, spec: TableSpec, value: str, table: pa.Table) -> bool:
        """Write one partition unless the stored object holds the same bytes; True if it was written."""
        path = self.partition_path(spec, value)
        conformed = self._conform(spec, table, path)
        if spec.partition_key in conformed.column_names:
            stray = [v for v in conformed.column(spec.partition_key).unique().to_pylist() if v != value]
            if stray:
                raise ValueError(
                    f"{self._describe(path)}: rows with {spec.partition_key} {stray[:5]!r} "
                    f"do not belong in partition {value!r}"
                )
        return self._put_if_changed(path, _parquet_bytes(conformed))

    def delete_partition(self, spec: TableSpec, value: str) -> None:
        """Remove a partition's object and its folder; a partition that is already gone is fine."""
        path = self.partition_path(spec, value)
        if self._is_s3:
            # Via boto3: pyarrow's S3 delete leaves empty "folder/" marker objects behind.
            bucket, key = path.split("/", 1)
            with self._naming_failures(path, "delete"):
                self._s3_client.delete_object(Bucket=bucket, Key=key)
            return
        if self._is_memory:
            with suppress(FileNotFoundError):
                self.filesystem.delete_dir(os.path.dirname(path))
            return
        with suppress(FileNotFoundError):
            os.remove(path)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise

    def list_partitions(self, spec: TableSpec) -> list[str]:
        """Decoded values of the partitions present on storage, sorted."""
        self._require_partitioned(spec, True)
        folder = self._path(spec.object_name)
        prefix = f"{spec.partition_key}="
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        listing = self._read_filesystem.get_file_info(selector)
        values = []
        for info in listing:
            segment, _, name = info.path.removeprefix(f"{folder}/").partition("/")
            if info.is_file and name == PARTITION_FILE and segment.startswith(prefix):
                values.append(unquote(segment[len(prefix) :]))
        return sorted(values)

    def read_table(self, spec: TableSpec) -> pa.Table:
        """An unpartitioned table; `UnreadableObject` (naming it) when its object is not parquet."""
        self._require_partitioned(spec, False)
        return self._read_parquet(spec, self._table_path(spec))

    def read_partition(self, spec: TableSpec, value: str, columns: list[str] | None = None) -> pa.Table:
        """One partition (or some of its columns, with their declared types)."""
        path = self.partition_path(spec, value)
        return self._read_parquet(spec, path) if columns is None else self._read_columns(spec, path, columns)

    def read_columns(self, spec: TableSpec, columns: list[str]) -> pa.Table:
        """Some columns of an unpartitioned table, with their declared types."""
        self._require_partitioned(spec, False)
        return self._read_columns(spec, self._table_path(spec), columns)

    def _read_columns(self, spec: TableSpec, path: str, columns: list[str]) -> pa.Table:
        try:
            with self._read_filesystem.open_input_file(path) as source:
                table = pq.read_table(source, columns=columns)
        except FileNotFoundError:
            raise FileNotFoundError(f"table {spec.name}: no object at {self._describe(path)}") from None
        except pa.ArrowInvalid as error:
            raise UnreadableObject(f"{self._unreadable(spec, path, error)}; the next build replaces it") from error
        declared = spec.schema
        return table.cast(pa.schema([declared.field(name) for name in columns]))

    def read_parquet_metadata(self, spec: TableSpec, value: str | None = None) -> pq.FileMetaData | None:
        """Footer (schema, row count) of a table or of one partition; None when it is absent, or
        unreadable (logged as a warning naming it: the publish guard sees no previous table)."""
        path = self.partition_path(spec, value) if spec.partitioned else self._table_path(spec)
        try:
            with self._read_filesystem.open_input_file(path) as source:
                return pq.read_metadata(source)
        except FileNotFoundError:
            return None
        except pa.ArrowInvalid as error:
            log.warning("%s; treated as absent: this build replaces it", self._unreadable(spec, path, error))
            return None

    def table_exists(self, spec: TableSpec) -> bool:
        """A partitioned table has at least one partition, or an unpartitioned table's object exists
        and its footer reads (an unreadable one is logged and counts as absent, to be built again)."""
        if spec.partitioned:
            return bool(self.list_partitions(spec))
        return self.read_parquet_metadata(spec) is not None

    # -- registry and versions -----------------------------------------------------------------

    def read_build(self, spec: TableSpec) -> dict:
        """The published build manifest of one table ({} when there is none): its registry fragment,
        else its entry in `cache_registry.json`."""
        path = self._path(REGISTRY_FOLDER, f"{spec.name}.json")
        try:
            entry = self._read_json(path)
        except ValueError as error:  # {}: the table is built and published again, which rewrites it
            log.warning("%s; treated as no published build", error)
            return {}
        if entry is None:
            entry = next((t for t in self.read_registry()["tables"] if t["name"] == spec.name), {})
        return entry.get("build", {})

    def publish_metadata(self, spec: TableSpec, build: dict) -> None:
        """After a successful data write: column sidecar, this table's fragment, merged registry."""
        fragment = _json_bytes({**spec.registry_entry(self.table_location(spec)), "build": build})
        self._put(self._path(f"{spec.object_name}.json"), _json_bytes({"columns": spec.column_names}))
        self._put(self._path(REGISTRY_FOLDER, f"{spec.name}.json"), fragment)
        self._put(self._path(REGISTRY_FILE), _json_bytes({"tables": self._read_fragments(repair=True)}))

    def read_partition_state(self, spec: TableSpec) -> dict[str, dict]:
        """Partition value -> `{"rows", "fingerprint"}` as last written; {} before the first build.
        An unreadable state is logged and rebuilt from the partitions' footers, with no fingerprint
        (so each partition is built again when next requested)."""
        self._require_partitioned(spec, True)
        path = self._path(BUILD_STATE_FOLDER, f"{spec.name}.json")
        try:
            state = self._read_json(path) or {}
            partitions = state.get("partitions", {}) if isinstance(state, dict) else None
            if not isinstance(partitions, dict):
                raise ValueError(f"{self._describe(path)} is not a build state")
        except ValueError as error:
            log.warning("%s; rebuilt from the stored partitions", error)
            footers = {value: self.read_parquet_metadata(spec, value) for value in self.list_partitions(spec)}
            return {value: {"rows": f.num_rows, "fingerprint": None} for value, f in footers.items() if f is not None}
        return partitions

    def write_partition_state(self, spec: TableSpec, partitions: dict[str, dict]) -> None:
        self._require_partitioned(spec, True)
        body = json.dumps({"table": spec.name, "partitions": partitions}, sort_keys=True, separators=(",", ":"))
        self._put(self._path(BUILD_STATE_FOLDER, f"{spec.name}.json"), body.encode())

    def read_registry(self) -> dict:
        """`{"tables": [...]}` from the fragments sorted by name, else from `cache_registry.json`."""
        tables = self._read_fragments()
        if tables:
            return {"tables": tables}
        return self._read_json(self._path(REGISTRY_FILE)) or {"tables": []}

    def read_versions(self) -> list[str]:
        path = self._versions_path
        data = self._read_bytes(path)
        return [] if data is None else _parse_versions(data, self._describe(path))

    def register_version(self) -> None:
        """Append this version folder to `<root>/cache_versions.json` unless already listed."""
        if self._is_s3:
            self._register_version_s3()
        elif self._is_memory:
            with _MEMORY_VERSIONS_LOCK:
                self._append_version()
        else:
            self._register_version_local()

    def write_custom(self, name: str, table: pa.Table) -> None:
        """Write a user table to `<version>/custom/<name>.pqt` (its own namespace), atomically."""
        if not isinstance(name, str) or not CUSTOM_TABLE_NAME.fullmatch(name):
            raise ValueError(f"custom table name {name!r} is not valid: use 1 to 128 of A-Z, a-z, 0-9, '_' and '-'")
        self._put(self._path(CUSTOM_FOLDER, f"{name}.pqt"), _parquet_bytes(table))

    def _register_version_local(self) -> None:
        os.makedirs(self._root_path, exist_ok=True)
        with open(f"{self._versions_path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._append_version()

    def _append_version(self) -> None:
        """Read-modify-write of the versions file; callers hold the lock that makes it safe."""
        versions = self.read_versions()
        if self.version not in versions:
            self._put(self._versions_path, _json_bytes([*versions, self.version]))

    def _register_version_s3(self) -> None:
        with self._naming_failures(self._versions_path, "update"):
            self._register_version_s3_attempts()

    def _register_version_s3_attempts(self) -> None:
        bucket, key = self._versions_path.split("/", 1)
        for attempt in range(VERSION_WRITE_ATTEMPTS):
            try:
                current = self._s3_client.get_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if _error_code(error) != "NoSuchKey":
                    raise
                versions, condition = [], {"IfNoneMatch": "*"}
            else:
                versions = _parse_versions(current["Body"].read(), self._describe(self._versions_path))
                condition = {"IfMatch": current["ETag"]}
            if self.version in versions:
                return
            body = _json_bytes([*versions, self.version])
            try:
                self._s3_client.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType="application/json", **condition
                )
                return
            except ClientError as error:
                if _error_code(error) not in RETRYABLE_CONDITIONAL_ERRORS:
                    raise
            time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        raise RuntimeError(
            f"could not register {self.version} in {self._describe(self._versions_path)}: "
            f"{VERSION_WRITE_ATTEMPTS} conditional writes lost to concurrent writers"
        )

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _staging_folder(self) -> str:
        """Local temp files: `<root>/.staging` for a local root, else a folder of the system's temp dir."""
        return LOCAL_STAGING_FOLDER if self._is_s3 or self._is_memory else os.path.join(self._root_path, STAGING_FOLDER)

    @property
    def _versions_path(self) -> str:
        return f"{self._root_path}/{VERSIONS_FILE}"

    @cached_property
    def _s3_client(self):
        region = self.filesystem.region or _env_region()
        return boto3.client("s3", endpoint_url=_env_endpoint_url(), region_name=region)

    def _path(self, *parts: str) -> str:
        return "/".join((self._root_path, self.version, *parts))

    def _table_path(self, spec: TableSpec) -> str:
        return self._path(f"{spec.object_name}.pqt")

    def _uri(self, path: str) -> str:
        if self._is_s3:
            return f"s3://{path}"
        return f"{MEMORY_SCHEME}{path.lstrip('/')}" if self._is_memory else path

    @contextmanager
    def _naming_failures(self, path: str, action: str) -> Iterator[None]:
        """A boto3 failure (after botocore's own retries) as an `OSError` naming the object."""
        try:
            yield
        except (ClientError, BotoCoreError, S3UploadFailedError) as error:
            raise OSError(f"could not {action} {self._describe(path)}: {error}") from error

    def _describe(self, path: str) -> str:
        return f"{self._uri(path)} (cache root {self.root_uri})"

    def _require_partitioned(self, spec: TableSpec, partitioned: bool) -> None:
        if spec.partitioned != partitioned:
            kind = "partitioned" if spec.partitioned else "unpartitioned"
            raise ValueError(f"table {spec.name} is {kind} (cache root {self.root_uri})")

    def _conform(self, spec: TableSpec, table: pa.Table, path: str) -> pa.Table:
        try:
            return spec.conform(table)
        except ValueError as error:  # SchemaMismatch, re-raised naming the object
            raise type(error)(f"{error}; object {self._describe(path)}") from error

    def _put(self, path: str, data: bytes) -> None:
        """Replace the object at `path` atomically for readers."""
        if self._is_s3:
            with self.filesystem.open_output_stream(path) as out:
                out.write(data)
            return
        if self._is_memory:  # one store assignment; an open output stream would be visible half-written
            self.filesystem.handler.fs.pipe_file(path, data)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        staging = os.path.join(self._root_path, STAGING_FOLDER)
        os.makedirs(staging, exist_ok=True)
        temp = os.path.join(staging, _temp_name(os.path.basename(path)))
        try:
            with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.remove(temp)
            raise

    def _put_if_changed(self, path: str, data: bytes) -> bool:
        if self._read_bytes(path) == data:
            return False
        self._put(path, data)
        return True

    def _read_bytes(self, path: str) -> bytes | None:
        try:
            with self._read_filesystem.open_input_stream(path) as source:
                return source.read()
        except FileNotFoundError:
            return None

    def _read_json(self, path: str):
        data = self._read_bytes(path)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as error:
            raise ValueError(f"{self._describe(path)} is not valid JSON: {error}") from error

    def _read_fragments(self, repair: bool = False) -> list[dict]:
        """The registry fragments. An unreadable one is logged and replaced by its table's entry in
        `cache_registry.json` (`repair`: rewritten from it), or left out when that has none."""
        folder = self._path(REGISTRY_FOLDER)
        infos = self._read_filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        fragments, merged = [], None
        for info in infos:
            if not (info.is_file and info.path.endswith(".json")):
                continue
            try:
                fragment = self._read_json(info.path)
                if not isinstance(fragment, dict) or not isinstance(fragment.get("name"), str):
                    raise ValueError(f"{self._describe(info.path)} is not a registry entry")
            except ValueError as error:
                if merged is None:
                    merged = self._merged_registry_entries()
                name = os.path.basename(info.path).removesuffix(".json")
                fragment = merged.get(name)
                log.warning("%s; %s", error, "its entry in cache_registry.json is used" if fragment else "left out")
                if fragment is None:
                    continue
                if repair:
                    self._put(info.path, _json_bytes(fragment))
            fragments.append(fragment)
        return sorted(fragments, key=lambda fragment: fragment["name"])

    def _merged_registry_entries(self) -> dict[str, dict]:
        """Table name -> entry of `cache_registry.json` ({} when it is absent or unreadable)."""
        try:
            merged = self._read_json(self._path(REGISTRY_FILE)) or {}
            return {entry["name"]: entry for entry in merged.get("tables", [])}
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}

    def _read_parquet(self, spec: TableSpec, path: str) -> pa.Table:
        try:
            with self._read_filesystem.open_input_file(path) as source:
                table = pq.read_table(source)
        except FileNotFoundError:
            raise FileNotFoundError(f"table {spec.name}: no object at {self._describe(path)}") from None
        except pa.ArrowInvalid as error:
            raise UnreadableObject(f"{self._unreadable(spec, path, error)}; the next build replaces it") from error
        return self._conform(spec, table, path)

    def _unreadable(self, spec: TableSpec, path: str, error: Exception) -> UnreadableObject:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return UnreadableObject(f"table {spec.name}: {self._describe(path)} is not readable parquet ({reason})")


class UnreadableObject(ValueError):
    """A published object that is not what it should be (e.g. a truncated parquet file)."""


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:  # no /proc (macOS), or it just ended
        return True


def _temp_name(name: str) -> str:
    """A staging file name for the object `name`, holding the writer's pid and host (`TEMP_NAME`)."""
    return f".{name}.{os.getpid()}-{secrets.token_hex(8)}-{quote(socket.gethostname(), safe='')}.tmp"


def _parquet_bytes(table: pa.Table) -> bytes:
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


def _parse_versions(data: bytes, described_path: str) -> list[str]:
    try:
        versions = json.loads(data)
    except ValueError as error:
        raise ValueError(f"{described_path} is not valid JSON ({error}); refusing to overwrite it") from error
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise ValueError(f"{described_path} is not a JSON list of version names; refusing to overwrite it")
    return versions


def _json_bytes(value) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def _error_code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def _is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def _is_memory_uri(uri: str) -> bool:
    return uri.startswith(MEMORY_SCHEME)


def _filesystem_path(uri: str) -> str:
    if _is_s3_uri(uri):
        path = uri.removeprefix("s3://").strip("/")
        if not path:
            raise ValueError(f"cache root {uri!r} names no bucket")
        return path
    if _is_memory_uri(uri):
        return "/" + uri.removeprefix(MEMORY_SCHEME).strip("/")
    if "://" in uri:
        raise ValueError(f"cache root {uri!r}: only local paths, s3:// and memory:// URIs are supported")
    return os.path.abspath(os.path.expanduser(uri))


def _env_endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _s3_filesystem(bucket: str) -> pafs.S3FileSystem:
    options = {}
    endpoint = _env_endpoint_url()
    if endpoint and "://" in endpoint:
        parts = urlsplit(endpoint)
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme)
    elif endpoint:
        options.update(endpoint_override=endpoint)
    region = _env_region() or (None if endpoint else pafs.resolve_s3_region(bucket))
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        options["anonymous"] = True
    else:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    return pafs.S3FileSystem(region=region, **options)
