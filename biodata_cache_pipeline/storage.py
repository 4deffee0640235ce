"""The cache writer: every parquet write, registry and version entry of one version folder.

`CacheStore` writes the layout (`biodata_cache_client.layout`, layout.md) of a cache root through
its storage (`biodata_cache_client.storage`: a local folder, `s3://bucket/prefix` or
`memory://name`), the same storage layer the client reads with. Writes are atomic for readers
(see the backends); `cache_versions.json`, the registry (fragments and `cache_registry.json`) and
the build states are updated as read-modify-writes the backend makes safe (`Storage.update`: an
exclusive file lock locally, conditional writes on S3), so concurrent writers (runs over other
partitions of a table, other tables, registrations) never lose each other's entries. Partitioned
tables also keep a small build state per partition (rows, fingerprint of the input it was built
from) in `bdc-vX.Y/.build_state/`, which change detection and the registry row counts read instead
of listing or opening every partition. A table or partition whose new bytes equal the stored ones
is not written again. The record snapshot every table is built from lives in `bdc-vX.Y/_snapshot/`,
a private area no reader lists: its rows (`records.parquet`) and, when a refresh changed only a few,
those changes (`changes.parquet`, see `snapshot_refresh.py`). Both are written to local staging
temps first, and each snapshot refresh first removes the temps of writers that are gone.

An unreadable published object (a truncated parquet, a corrupt registry fragment or build state) is
reported by path with a warning and treated as absent, so the next build replaces it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from biodata_cache_client import layout
from biodata_cache_client.layout import json_bytes, parquet_bytes, version_folder
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.storage import S3Connection, storage_for
from biodata_cache_pipeline.snapshot import CHANGES, ROWS, RecordSnapshot

log = logging.getLogger(__name__)


@dataclass
class SnapshotOutput:
    """Where the next record snapshot is written (see `CacheStore.snapshot_output`): all its rows
    to `path`, or only the changes to the stored rows to `changes_path`; `written` says which
    (`snapshot.ROWS` or `snapshot.CHANGES`; None: neither, the stored snapshot is up to date)."""

    path: str
    changes_path: str
    written: str | None = None


class CacheStore:
    """Reads and writes one version folder of a cache root; see the module docstring."""

    def __init__(
        self,
        root: str,
        version: str = version_folder(),
        filesystem: pafs.FileSystem | None = None,
        connection: S3Connection | None = None,
    ):
        """`connection`: how an s3:// root is reached (default: the standard AWS environment)."""
        self.storage = storage_for(root, filesystem, connection)
        self.version = version
        self.root_uri = self.storage.uri
        # relative path -> (sha256, size) of each object this store wrote or found unchanged (build_history.py)
        self.seen_objects: dict[str, tuple[str, int]] = {}

    # -- paths ---------------------------------------------------------------------------------

    def table_location(self, spec: TableSpec) -> str:
        """The registry `location`: URI of `<table>.pqt`, or of the partition folder ending in `/`."""
        if spec.partitioned:
            return f"{self.storage.object_uri(layout.table_folder(self.version, spec))}/"
        return self.storage.object_uri(layout.table_file(self.version, spec))

    def table_url(self, spec: TableSpec) -> str | None:
        """A link a browser can open for `table_location` (None for the in-memory store)."""
        if spec.partitioned:
            return self.storage.url(f"{layout.table_folder(self.version, spec)}/")
        return self.storage.url(layout.table_file(self.version, spec))

    def partition_path(self, spec: TableSpec, value: str) -> str:
        """Filesystem path of `<folder>/<key>=<encoded value>/data.pqt`."""
        return self.storage.path(self._partition_file(spec, value))

    # -- the record snapshot ---------------------------------------------------------------------

    @property
    def snapshot_location(self) -> str:
        return self.storage.object_uri(layout.snapshot_file(self.version))

    def open_snapshot(self) -> RecordSnapshot | None:
        """The stored record snapshot (its rows, and the changes made since), None when there is none yet."""
        try:
            records = pq.ParquetFile(self.storage.open_input_file(layout.snapshot_file(self.version)))
        except FileNotFoundError:
            return None
        try:
            changes = pq.ParquetFile(self.storage.open_input_file(layout.snapshot_changes_file(self.version)))
        except FileNotFoundError:
            changes = None
        return RecordSnapshot(records, changes)

    @contextmanager
    def snapshot_output(self) -> Iterator[SnapshotOutput]:
        """Local files for the next snapshot. When the block ends without an error, the one it
        wrote (`output.written`) is published, atomically for readers: new rows replace the stored
        rows (and the stored changes file is then removed), new changes replace the changes file.
        Otherwise the stored snapshot stays. The temps of writers that are gone are removed first."""
        self.remove_stale_temps()
        output = SnapshotOutput(self.storage.staging_temp("records"), self.storage.staging_temp("changes"))
        try:
            yield output
            if output.written == ROWS:
                self.storage.publish_file(output.path, layout.snapshot_file(self.version))
                # Changes made to the replaced rows no longer apply (and `RecordSnapshot` ignores
                # them, as they name the rows they were made for: also when this delete never runs).
                self.storage.delete_object(layout.snapshot_changes_file(self.version))
            elif output.written == CHANGES:
                self.storage.publish_file(output.changes_path, layout.snapshot_changes_file(self.version))
        finally:
            for temp in (output.path, output.changes_path):
                with suppress(FileNotFoundError):
                    os.remove(temp)

    def remove_stale_temps(self) -> list[str]:
        """Remove the staging temps left by writers that are gone (see `Storage.remove_stale_temps`)."""
        return self.storage.remove_stale_temps()

    # -- tables --------------------------------------------------------------------------------

    def write_table(self, spec: TableSpec, table: pa.Table) -> bool:
        """Write the table unless the stored object holds the same bytes; True if it was written."""
        self._require_partitioned(spec, False)
        relative = layout.table_file(self.version, spec)
        return self._put_if_changed(relative, parquet_bytes(self._conform(spec, table, relative)))

    def write_partition(self, spec: TableSpec, value: str, table: pa.Table) -> bool:
        """Write one partition unless the stored object holds the same bytes; True if it was written."""
        relative = self._partition_file(spec, value)
        conformed = self._conform(spec, table, relative)
        if spec.partition_key in conformed.column_names:
            stray = [v for v in conformed.column(spec.partition_key).unique().to_pylist() if v != value]
            if stray:
                raise ValueError(
                    f"{self.storage.describe(relative)}: rows with {spec.partition_key} {stray[:5]!r} "
                    f"do not belong in partition {value!r}"
                )
        return self._put_if_changed(relative, parquet_bytes(conformed))

    def delete_partition(self, spec: TableSpec, value: str) -> None:
        """Remove a partition's object and its folder; a partition that is already gone is fine."""
        self.storage.delete(self._partition_file(spec, value))

    def list_partitions(self, spec: TableSpec) -> list[str]:
        """Decoded values of the partitions present on storage, sorted."""
        self._require_partitioned(spec, True)
        folder = layout.table_folder(self.version, spec)
        values = (layout.partition_value(spec, f.removeprefix(f"{folder}/")) for f in self.storage.list_files(folder))
        return sorted(value for value in values if value is not None)

    def read_table(self, spec: TableSpec) -> pa.Table:
        """An unpartitioned table; `UnreadableObject` (naming it) when its object is not parquet."""
        self._require_partitioned(spec, False)
        return self._read_parquet(spec, layout.table_file(self.version, spec))

    def read_partition(self, spec: TableSpec, value: str, columns: list[str] | None = None) -> pa.Table:
        """One partition (or some of its columns, with their declared types)."""
        relative = self._partition_file(spec, value)
        return self._read_parquet(spec, relative) if columns is None else self._read_columns(spec, relative, columns)

    def read_columns(self, spec: TableSpec, columns: list[str]) -> pa.Table:
        """Some columns of an unpartitioned table, with their declared types."""
        self._require_partitioned(spec, False)
        return self._read_columns(spec, layout.table_file(self.version, spec), columns)

    def _read_columns(self, spec: TableSpec, relative: str, columns: list[str]) -> pa.Table:
        try:
            with self.storage.open_input_file(relative) as source:
                file = pq.ParquetFile(source)
                stored = set(file.schema_arrow.names)
                missing = [name for name in columns if name not in stored]
                if missing:  # ParquetFile.read would leave them out without a word
                    raise pa.ArrowInvalid(f"no column {', '.join(missing)}")
                table = file.read(columns)
        except FileNotFoundError:
            raise FileNotFoundError(f"table {spec.name}: no object at {self.storage.describe(relative)}") from None
        except pa.ArrowInvalid as error:
            raise UnreadableObject(f"{self._unreadable(spec, relative, error)}; the next build replaces it") from error
        declared = spec.schema
        return table.cast(pa.schema([declared.field(name) for name in columns]))

    def read_parquet_metadata(self, spec: TableSpec, value: str | None = None) -> pq.FileMetaData | None:
        """Footer (schema, row count) of a table or of one partition; None when it is absent, or
        unreadable (logged as a warning naming it: the publish guard sees no previous table)."""
        relative = self._partition_file(spec, value) if spec.partitioned else layout.table_file(self.version, spec)
        try:
            with self.storage.open_input_file(relative) as source:
                return pq.read_metadata(source)
        except FileNotFoundError:
            return None
        except pa.ArrowInvalid as error:
            log.warning("%s; treated as absent: this build replaces it", self._unreadable(spec, relative, error))
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
        try:
            entry = self._read_json(layout.registry_fragment(self.version, spec.name))
        except ValueError as error:  # {}: the table is built and published again, which rewrites it
            log.warning("%s; treated as no published build", error)
            return {}
        if entry is None:
            entry = next((t for t in self.read_registry()["tables"] if t["name"] == spec.name), {})
        return entry.get("build", {})

    def publish_metadata(self, spec: TableSpec, build: dict | Callable[[], dict]) -> None:
        """After a successful data write: column sidecar, this table's fragment, merged registry.

        The fragment and the merged registry are each written in a read-modify-write
        (`Storage.update`), the merged registry made from the fragments as read inside it, so
        publishers at the same time (runs over other partitions, other tables) never leave it
        without the others' entries: the last update reads everything before it. `build` may be a
        function giving the build manifest, called inside the fragment's update (a partitioned
        table's, made from its build state as it is then)."""

        def fragment(_current: bytes | None) -> bytes:
            manifest = build() if callable(build) else build
            return json_bytes({**spec.registry_entry(self.table_location(spec)), "build": manifest})

        self.storage.put(layout.columns_file(self.version, spec), json_bytes({"columns": spec.column_names}))
        self.storage.update(layout.registry_fragment(self.version, spec.name), fragment)
        self.storage.update(
            layout.registry_file(self.version), lambda _current: json_bytes({"tables": self._read_fragments(repair=True)})
        )

    @property
    def version_uri(self) -> str:
        """The URI of the version folder (absolute for a local root)."""
        return f"{self.root_uri}/{self.version}"

    def catalog_exists(self) -> bool:
        return self.storage.is_file(layout.catalog_file(self.version))

    def write_catalog(self, data: bytes) -> bool:
        """Write `catalog.duckdb` unless the stored one holds the same bytes; True if it was written."""
        return self._put_if_changed(layout.catalog_file(self.version), data)

    def read_partition_state(self, spec: TableSpec) -> dict[str, dict]:
        """Partition value -> `{"rows", "fingerprint"}` as last written; {} before the first build.
        An unreadable state is logged and rebuilt from the partitions' footers, with no fingerprint
        (so each partition is built again when next requested)."""
        self._require_partitioned(spec, True)
        return self._parse_state(spec, self.storage.read_bytes(layout.build_state_file(self.version, spec)))

    def write_partition_state(self, spec: TableSpec, partitions: dict[str, dict]) -> None:
        self._require_partitioned(spec, True)
        self.storage.put(layout.build_state_file(self.version, spec), _state_bytes(spec, partitions))

    def update_partition_state(
        self,
        spec: TableSpec,
        changes: Mapping[str, dict | None],
        record: Callable[[dict[str, dict]], None] | None = None,
    ) -> dict[str, dict]:
        """Apply `changes` (partition -> entry; None removes it) to the build state and return the
        state as written. A read-modify-write (`Storage.update`): runs over other partitions that
        update it at the same time keep each other's entries. `record(state)` is called inside the
        update with the new state before it is written (the build manifest, `build_history.py`),
        again when the update is tried again (on S3, another writer won the conditional write);
        with it the state is always written, so the conditional write covers what it recorded."""
        self._require_partitioned(spec, True)
        written: dict[str, dict] = {}

        def apply(current: bytes | None) -> bytes | None:
            state = self._parse_state(spec, current)
            before = dict(state)
            for key, entry in changes.items():
                if entry is None:
                    state.pop(key, None)
                else:
                    state[key] = entry
            if record is not None:
                record(state)
            written.clear()
            written.update(state)
            return _state_bytes(spec, state) if record is not None or state != before else None

        self.storage.update(layout.build_state_file(self.version, spec), apply)
        return written

    def read_registry(self) -> dict:
        """`{"tables": [...]}` from the fragments sorted by name, else from `cache_registry.json`."""
        tables = self._read_fragments()
        if tables:
            return {"tables": tables}
        return self._read_json(layout.registry_file(self.version)) or {"tables": []}

    def read_versions(self) -> list[str]:
        data = self.storage.read_bytes(layout.VERSIONS_FILE)
        return [] if data is None else self._parse_versions(data)

    def register_version(self) -> None:
        """Append this version folder to `<root>/cache_versions.json` unless already listed."""

        def appended(current: bytes | None) -> bytes | None:
            versions = [] if current is None else self._parse_versions(current)
            return None if self.version in versions else json_bytes([*versions, self.version])

        self.storage.update(layout.VERSIONS_FILE, appended)

    # -- helpers -------------------------------------------------------------------------------

    def _parse_state(self, spec: TableSpec, data: bytes | None) -> dict[str, dict]:
        """The partitions of a stored build state ({} for none). An unreadable one is logged and
        rebuilt from the partitions' footers, with no fingerprint (so each partition is built again
        when next requested)."""
        relative = layout.build_state_file(self.version, spec)
        try:
            try:
                state = {} if data is None else json.loads(data)
            except ValueError as error:
                raise ValueError(f"{self.storage.describe(relative)} is not valid JSON: {error}") from error
            partitions = state.get("partitions", {}) if isinstance(state, dict) else None
            if not isinstance(partitions, dict):
                raise ValueError(f"{self.storage.describe(relative)} is not a build state")
        except ValueError as error:
            log.warning("%s; rebuilt from the stored partitions", error)
            footers = {value: self.read_parquet_metadata(spec, value) for value in self.list_partitions(spec)}
            return {value: {"rows": f.num_rows, "fingerprint": None} for value, f in footers.items() if f is not None}
        return partitions

    def _parse_versions(self, data: bytes) -> list[str]:
        try:
            return layout.parse_versions(data)
        except ValueError as error:
            raise ValueError(
                f"{self.storage.describe(layout.VERSIONS_FILE)} {error}; refusing to overwrite it"
            ) from error

    def _partition_file(self, spec: TableSpec, value: str) -> str:
        self._require_partitioned(spec, True)
        return layout.partition_file(self.version, spec, value)

    def _require_partitioned(self, spec: TableSpec, partitioned: bool) -> None:
        if spec.partitioned != partitioned:
            kind = "partitioned" if spec.partitioned else "unpartitioned"
            raise ValueError(f"table {spec.name} is {kind} (cache root {self.root_uri})")

    def _conform(self, spec: TableSpec, table: pa.Table, relative: str) -> pa.Table:
        try:
            return spec.conform(table)
        except ValueError as error:  # SchemaMismatch, re-raised naming the object
            raise type(error)(f"{error}; object {self.storage.describe(relative)}") from error

    def _put_if_changed(self, relative: str, data: bytes) -> bool:
        self.seen_objects[relative] = (hashlib.sha256(data).hexdigest(), len(data))
        if self.storage.read_bytes(relative) == data:
            return False
        self.storage.put(relative, data)
        return True

    def _read_json(self, relative: str):
        data = self.storage.read_bytes(relative)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as error:
            raise ValueError(f"{self.storage.describe(relative)} is not valid JSON: {error}") from error

    def _read_fragments(self, repair: bool = False) -> list[dict]:
        """The registry fragments. An unreadable one is logged and replaced by its table's entry in
        `cache_registry.json` (`repair`: rewritten from it), or left out when that has none."""
        fragments, merged = [], None
        folder = layout.registry_folder(self.version)
        for relative in self.storage.list_files(folder):
            if not relative.endswith(".json") or "/" in relative.removeprefix(f"{folder}/"):
                continue
            try:
                fragment = self._read_json(relative)
                if not isinstance(fragment, dict) or not isinstance(fragment.get("name"), str):
                    raise ValueError(f"{self.storage.describe(relative)} is not a registry entry")
            except ValueError as error:
                if merged is None:
                    merged = self._merged_registry_entries()
                name = os.path.basename(relative).removesuffix(".json")
                fragment = merged.get(name)
                log.warning("%s; %s", error, "its entry in cache_registry.json is used" if fragment else "left out")
                if fragment is None:
                    continue
                if repair:
                    self.storage.put(relative, json_bytes(fragment))
            fragments.append(fragment)
        return sorted(fragments, key=lambda fragment: fragment["name"])

    def _merged_registry_entries(self) -> dict[str, dict]:
        """Table name -> entry of `cache_registry.json` ({} when it is absent or unreadable)."""
        try:
            merged = self._read_json(layout.registry_file(self.version)) or {}
            return {entry["name"]: entry for entry in merged.get("tables", [])}
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}

    def _read_parquet(self, spec: TableSpec, relative: str) -> pa.Table:
        # pq.ParquetFile, not pq.read_table: one object needs no dataset discovery, and a process that
        # never imports pyarrow.dataset saves 0.4 s.
        try:
            with self.storage.open_input_file(relative) as source:
                table = pq.ParquetFile(source).read()
        except FileNotFoundError:
            raise FileNotFoundError(f"table {spec.name}: no object at {self.storage.describe(relative)}") from None
        except pa.ArrowInvalid as error:
            raise UnreadableObject(f"{self._unreadable(spec, relative, error)}; the next build replaces it") from error
        return self._conform(spec, table, relative)

    def _unreadable(self, spec: TableSpec, relative: str, error: Exception) -> UnreadableObject:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        described = self.storage.describe(relative)
        return UnreadableObject(f"table {spec.name}: {described} is not readable parquet ({reason})")


def _state_bytes(spec: TableSpec, partitions: Mapping[str, dict]) -> bytes:
    return json.dumps({"table": spec.name, "partitions": partitions}, sort_keys=True, separators=(",", ":")).encode()


class UnreadableObject(ValueError):
    """A published object that is not what it should be (e.g. a truncated parquet file)."""
