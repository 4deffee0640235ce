"""The reader of one cache root: version folder, tables as Arrow, registry and build manifest.

A table is read with the pipeline's declaration (`TABLES`): partition columns as strings
(hive partitioning), the declared schema enforced, and files written by an older pipeline
version upgraded on read. "Absent" and "empty" are different answers: a missing table raises
`TableNotFoundError` (naming the table, the version folder and the root), a zero-row table gives
a typed empty table, and any read failure (network, permissions, corrupt object) raises
`CacheReadError`; nothing is ever turned into an empty result. A local root that does not
exist (a relative root read from another folder) is named as such, with how to set it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from biodata_cache_client import layout
from biodata_cache_client.builds import selected_build, with_partition_value
from biodata_cache_client.config import ROOT_ENV, Settings, current_settings
from biodata_cache_client.errors import CacheReadError, CorruptObjectError, TableNotFoundError
from biodata_cache_client.frames import matches_declaration, read_schema, upgrade
from biodata_cache_client.layout import (
    PARTITION_FILE,
    PIPELINE_VERSION,
    VERSION_FOLDER_PATTERN,
    VERSIONS_FILE,
    version_folder,
    version_number,
)
from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.sources import open_source

# Up to this many requested partitions are looked up one by one (a HEAD each on S3), more by one listing.
DIRECT_PARTITION_LOOKUPS = 16
# A reader (and its S3 connection) is reused until the settings or one of these variables change.
AWS_SETTINGS = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
)


def table_spec(name: str) -> TableSpec:
    if name not in TABLES:
        raise TableNotFoundError(f"unknown table {name!r}; the cache tables are {', '.join(TABLES)}")
    return TABLES[name]


class CacheReader:
    """Reads the cache root of `settings`; see the module docstring."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.source = open_source(settings)

    # -- versions and registry -----------------------------------------------------------------

    def versions(self) -> list[str]:
        """`cache_versions.json` of the root, in registration order ([] when there is none).

        When that file is corrupt (not JSON, or not a list of `bdc-vX.Y` names) the version folders
        found under the root are listed instead, oldest first, with a warning.
        """
        data = self.source.read_bytes(VERSIONS_FILE)
        if data is None:
            return []
        try:
            return layout.parse_versions(data)
        except ValueError as error:
            return self._listed_versions(f"{self.source.uri(VERSIONS_FILE)} {error}")

    def version(self) -> str:
        """The pinned version folder, else the installed package's, else the newest published."""
        if self.settings.version:
            return self.settings.version
        installed = version_folder(PIPELINE_VERSION)
        published = self.versions()
        if not published or installed in published:
            return installed
        newest = max(published, key=lambda v: (version_number(v), published.index(v)))
        warnings.warn(
            f"version folder {installed} (installed biodata-cache {PIPELINE_VERSION}) is not published in "
            f"{self.source.description}; reading {newest}, the newest in {VERSIONS_FILE}",
            stacklevel=3,
        )
        return newest

    def registry(self, version: str | None = None) -> dict:
        """`{"tables": [...]}`: the registry fragments merged by name, else `cache_registry.json`.

        A published table without an entry (its fragment deleted) is described by its declaration,
        without a build manifest, with a warning.
        """
        version = version or self.version()
        fragments = [
            self._json(relative)
            for relative in self.source.list_files(layout.registry_folder(version))
            if relative.endswith(".json")
        ]
        tables = fragments or (self._json(layout.registry_file(version)) or {"tables": []})["tables"]
        described = {table["name"] for table in tables}
        undescribed = [spec for name, spec in TABLES.items() if name not in described and self._exists(spec, version)]
        if undescribed:
            names = ", ".join(sorted(spec.name for spec in undescribed))
            warnings.warn(
                f"no registry entry for {names} in {layout.registry_folder(version)} of {self.source.description}; "
                "described from the declaration, without a build manifest (the next build writes it)",
                stacklevel=3,
            )
            tables = [*tables, *(spec.registry_entry(self._location(spec, version)) for spec in undescribed)]
        return {"tables": sorted(tables, key=lambda table: table["name"])}

    def table_info(self, name: str) -> dict:
        """Location and build manifest (built_at, source, rows, partitions) of a table."""
        spec = table_spec(name)
        version = self.version()
        entry = next((t for t in self.registry(version)["tables"] if t["name"] == name), None)
        if entry is None:
            raise self._missing(f"{name} (no registry entry)", version)
        build = entry.get("build", {})
        return {
            "table": name,
            "version": version,
            "location": entry["location"],
            "built_at": build.get("built_at"),
            "source": build.get("source"),
            "rows": build.get("row_count"),
            "partitions": build.get("partitions") if spec.partitioned else None,
            "pipeline_version": build.get("pipeline_version"),
        }

    # -- tables --------------------------------------------------------------------------------

    def read(
        self,
        spec: TableSpec,
        columns: list[str] | None = None,
        where: pc.Expression | None = None,
        partitions: list[str] | None = None,
    ) -> pa.Table:
        """The table (optionally some partitions) with `columns` and the `where` filter pushed down."""
        check_columns(spec, columns)
        version = self.version()
        data = self.scan(spec, partitions, version)
        with self._reading(spec.name, version):
            if isinstance(data, ds.Dataset):
                return data.to_table(columns=columns, filter=where)
            table = data if where is None else data.filter(where)
            return table.select(columns) if columns else table

    def scan(
        self, spec: TableSpec, partitions: list[str] | None = None, version: str | None = None
    ) -> ds.Dataset | pa.Table:
        """A lazy dataset when the stored files match the declaration, else the upgraded table."""
        schema = read_schema(spec)
        version = version or self.version()
        folder = layout.table_folder(version, spec)
        with self._reading(spec.name, version):
            at_build = selected_build(self, spec, version, partitions)  # as_of= / build= (builds.py)
            if at_build is not None:
                return at_build
            relatives = self._objects(spec, version, partitions)
            if not relatives:
                return schema.empty_table()
            filesystem, paths = self.source.fetch(relatives, label=spec.name)
            if matches_declaration(pq.read_schema(paths[0], filesystem=filesystem), spec):
                return ds.dataset(
                    paths,
                    schema=schema,
                    filesystem=filesystem,
                    format="parquet",
                    partitioning=_hive(spec),
                    partition_base_dir=self.source.path(folder) if spec.partitioned else None,
                )
            return pa.concat_tables([self._upgraded_file(spec, filesystem, path) for path in paths])

    def custom_tables(self, version: str | None = None) -> list[str]:
        """Names of the custom tables of the version folder, sorted."""
        folder = layout.custom_folder(version or self.version())
        files = [relative.removeprefix(f"{folder}/") for relative in self.source.list_files(folder)]
        return [file.removesuffix(".pqt") for file in files if file.endswith(".pqt") and "/" not in file]

    def missing_root(self) -> str | None:
        """Why the root cannot hold the cache when it is a local folder that does not exist, else None."""
        root = self.settings.root
        if "://" in root or os.path.isdir(root):
            return None
        return (
            f"cache root {root} does not exist; set {ROOT_ENV} (or configure(root=...), or --root) to the "
            "absolute path of the cache folder, e.g. the .biodata-cache folder that `make run` wrote"
        )

    def read_custom(self, name: str, version: str | None = None) -> pa.Table:
        version = version or self.version()
        relative = layout.custom_file(version, name)
        with self._reading(f"custom/{name}", version):
            if not self.source.is_file(relative):
                raise self._missing(f"custom/{name}", version)
            filesystem, [path] = self.source.fetch([relative], label=name)
            with filesystem.open_input_file(path) as source:
                return pq.read_table(source)

    # -- helpers -------------------------------------------------------------------------------

    def _objects(self, spec: TableSpec, version: str, partitions: list[str] | None) -> list[str]:
        """Relative paths of the table's objects in `version` (of `partitions` only, when given)."""
        base = layout.table_folder(version, spec)
        if not spec.partitioned:
            relative = layout.table_file(version, spec)
            if not self.source.is_file(relative):
                raise self._missing(spec.name, version)
            return [relative]
        if partitions is not None and 0 < len(set(partitions)) <= DIRECT_PARTITION_LOOKUPS:
            # A few partitions (one subject's QC): look each up instead of listing every partition.
            direct = [self._partition_object(spec, version, value) for value in dict.fromkeys(partitions)]
            if all(direct):
                return direct
            # Something is absent: the listing below tells a missing partition from a missing table.
        present = {}
        for relative in self.source.list_files(base):
            value = layout.partition_value(spec, relative.removeprefix(f"{base}/"))
            if value is not None:
                present[value] = relative
        if not present:
            raise self._missing(spec.name, version)
        if partitions is None:
            return [present[value] for value in sorted(present)]
        absent = [value for value in partitions if value not in present]
        if absent:
            warnings.warn(
                f"{spec.name}: no partition for {spec.partition_key} {absent} in {base} of "
                f"{self.source.description}",
                stacklevel=4,
            )
        return [present[value] for value in dict.fromkeys(partitions) if value in present]

    def _partition_object(self, spec: TableSpec, version: str, value: str) -> str | None:
        """The relative path of one partition's object, None when it is absent."""
        try:
            relative = layout.partition_file(version, spec, value)
        except (TypeError, ValueError):  # a value no partition can have (empty, '.', '..')
            return None
        return relative if self.source.is_file(relative) else None

    def _upgraded_file(self, spec: TableSpec, filesystem: pafs.FileSystem, path: str) -> pa.Table:
        """One file of an older version folder, upgraded; the partition value comes from its path."""
        with filesystem.open_input_file(path) as source:
            table = upgrade(pq.read_table(source), spec)
        if spec.partitioned:
            table = with_partition_value(table, spec, layout.partition_value_of_file(path))
        return table

    def _json(self, relative: str):
        data = self.source.read_bytes(relative)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as error:
            raise CorruptObjectError(f"{self.source.uri(relative)} is not valid JSON: {error}") from error

    def _listed_versions(self, why: str) -> list[str]:
        """The version folders under the root, oldest first, in place of a corrupt `cache_versions.json`."""
        listed = sorted(
            (folder for folder in self.source.list_folders() if VERSION_FOLDER_PATTERN.fullmatch(folder)),
            key=version_number,
        )
        warnings.warn(f"{why}; using the version folders found under the root instead: {listed}", stacklevel=4)
        return listed

    def _exists(self, spec: TableSpec, version: str) -> bool:
        """Whether the table has its object, or at least one partition object, in `version`."""
        if not spec.partitioned:
            return self.source.is_file(layout.table_file(version, spec))
        folder = layout.table_folder(version, spec)
        return any(relative.endswith(f"/{PARTITION_FILE}") for relative in self.source.list_files(folder))

    def _location(self, spec: TableSpec, version: str) -> str:
        """The registry `location` of the table: its object, or its partition folder ending in `/`."""
        if spec.partitioned:
            return f"{self.source.uri(layout.table_folder(version, spec))}/"
        return self.source.uri(layout.table_file(version, spec))

    def _missing(self, what: str, version: str) -> TableNotFoundError:
        missing_root = self.missing_root()
        if missing_root:
            return TableNotFoundError(f"table {what} not found: {missing_root}")
        published = self.versions()
        unlisted = "" if version in published else f" ({version} is not listed in {VERSIONS_FILE}: {published})"
        return TableNotFoundError(
            f"table {what} not found in version folder {version}{unlisted} of cache root "
            f"{self.source.description}; get_cache_versions() lists the published versions"
        )

    @contextmanager
    def _reading(self, name: str, version: str) -> Iterator[None]:
        """Any failure to read an existing object becomes a `CacheReadError` naming table and root."""
        try:
            yield
        except (OSError, pa.ArrowException, BotoCoreError, ClientError) as error:
            if isinstance(error, CacheReadError):
                raise
            raise CacheReadError(
                f"could not read table {name} from version folder {version} of cache root "
                f"{self.source.description}: {error}"
            ) from error


def check_columns(spec: TableSpec, columns: list[str] | None) -> None:
    if columns is None:
        return
    if isinstance(columns, str):
        raise ValueError(f"table {spec.name}: columns must be a list of names, not the string {columns!r}")
    known = read_schema(spec).names
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(f"table {spec.name}: unknown columns {unknown}; its columns are {known}")


def filter_expression(spec: TableSpec, filters) -> pc.Expression | None:
    """`(column, op, value)`, a list of them (AND) or a list of such lists (OR), pushed down."""
    if filters is None or isinstance(filters, pc.Expression):
        return filters
    if not isinstance(filters, (list, tuple)):
        raise _filter_shape_error(spec, filters)
    if not filters:
        return None
    if _is_clause(filters):
        filters = [filters]
    disjunction = [filters] if _is_conjunction(filters) else filters
    if not all(_is_conjunction(conjunction) for conjunction in disjunction):
        raise _filter_shape_error(spec, filters)
    check_columns(spec, [clause[0] for conjunction in disjunction for clause in conjunction])
    return pq.filters_to_expression([[tuple(clause) for clause in conjunction] for conjunction in disjunction])


def _is_clause(value) -> bool:
    """Whether `value` is one `(column, op, value)` filter."""
    return isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str)


def _is_conjunction(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_clause(clause) for clause in value)


def _filter_shape_error(spec: TableSpec, filters) -> ValueError:
    return ValueError(
        f"table {spec.name}: filters {filters!r} are not (column, op, value), a list of them (AND) or a list "
        """of such lists (OR); e.g. filters=[("data_level", "=", "raw")]"""
    )


def current_reader() -> CacheReader:
    """The reader of the settings now in effect (kept while settings and AWS environment hold)."""
    return _reader_for(current_settings(), tuple(os.environ.get(name) for name in AWS_SETTINGS))


@lru_cache(maxsize=8)
def _reader_for(settings: Settings, aws_environment: tuple) -> CacheReader:
    return CacheReader(settings)


def _hive(spec: TableSpec) -> ds.Partitioning | None:
    if not spec.partitioned:
        return None
    return ds.partitioning(pa.schema([(spec.partition_key, pa.string())]), flavor="hive")
