"""Reading a table as it was at an earlier build, and the log of what this process read.

The pipeline records an immutable manifest per build of a table (`biodata_cache_pipeline/build_history.py`:
`bdc-vX.Y/_builds/<table>/<build_id>.json`, naming every object with its size, sha256 and, on a
versioned S3 bucket, its `VersionId`). A read selects a build with `build=<id>` or `as_of=<date or
time>`, set for the duration of one call by `at_build` (every table function and `query()` take
both):
- `as_of`: the newest build at or before it (a build's time, `built_at`, is the time its id starts
  with; a date alone means the end of that day, UTC; a time without a zone is UTC);
- `build`: that build of the table; when the id is another table's (`query()` over several tables,
  `raw_to_derived`), this table is read as of that build's time.
A build's objects are read from the S3 object versions the manifest names (`GetObject` with
`VersionId`, checked against its sha256; with a local copy they are kept there by checksum, and
read offline), or from the content-addressed copies `bdc-vX.Y/_history/objects/<sha256>.pqt`.
Without a selection, reads go to the published paths as before.

Every read is logged (`provenance()`): table, version folder, root, and the build read; for a read
of the published paths, the build published when the read ran (the newest manifest written
before it), looked up when the log is asked for.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timezone

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from biodata_cache_client.errors import CacheReadError
from biodata_cache_client.frames import matches_declaration, read_schema, upgrade
from biodata_cache_client.layout import BUILD_ID, BUILDS_FOLDER, build_time, history_object_relative, manifest_relative
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.sources import READ_ADVICE, CopiedS3Source, _s3_client

AS_OF_EXAMPLE = "e.g. '2026-11-30' or '2026-11-30T22:15:00Z'"


class BuildNotFoundError(LookupError):
    """No build of the table matches `build=` or `as_of=`."""


@dataclass(frozen=True)
class Selection:
    """Which build a read takes: the newest at or before `as_of`, or the build `build`."""

    as_of: datetime | None = None
    build: str | None = None

    @classmethod
    def of(cls, as_of=None, build: str | None = None) -> Selection:
        if as_of is not None and build is not None:
            raise ValueError(f"give as_of or build, not both (as_of={as_of!r}, build={build!r})")
        if build is not None and not (isinstance(build, str) and BUILD_ID.fullmatch(build)):
            raise ValueError(
                f"build {build!r} is not a build id (like 20261201T221500.123456Z-1a2b3c4d); "
                "bdc.history(table) lists a table's builds"
            )
        return cls(as_of=None if as_of is None else parse_as_of(as_of), build=build)


_selection: ContextVar[Selection | None] = ContextVar("biodata_cache_build_selection", default=None)


def parse_as_of(value) -> datetime:
    """A date (the end of that day, UTC), a datetime (naive: UTC) or an ISO string of either."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"as_of {value!r} is not a date or a time; use {AS_OF_EXAMPLE}") from None
    if isinstance(value, datetime):  # pandas' Timestamp is one too
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time.max, tzinfo=timezone.utc)
    raise ValueError(f"as_of {value!r} is not a date or a time; use {AS_OF_EXAMPLE}")


def at_build(function):
    """`function` with keyword arguments `as_of=` and `build=` selecting the build its reads take."""

    @functools.wraps(function)
    def selecting(*args, as_of=None, build=None, **kwargs):
        if as_of is None and build is None:  # inherit the selection of an enclosing call, if any
            return function(*args, **kwargs)
        with selected(Selection.of(as_of, build)):
            return function(*args, **kwargs)

    signature = inspect.signature(function)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in ("as_of", "build")]
    selecting.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])
    return selecting


@contextmanager
def selected(selection: Selection) -> Iterator[None]:
    """`selection` for the reads of a block."""
    token = _selection.set(selection)
    try:
        yield
    finally:
        _selection.reset(token)


# -- manifests ---------------------------------------------------------------------------------


def build_ids(reader, table: str, version: str) -> list[str]:
    """The recorded builds of `table` in `version`, oldest first."""
    folder = f"{version}/{BUILDS_FOLDER}/{table}"
    names = [relative.removeprefix(f"{folder}/").removesuffix(".json") for relative in reader.source.list_files(folder)]
    return sorted(name for name in names if BUILD_ID.fullmatch(name))


def manifest(reader, table: str, version: str, build_id: str) -> dict:
    """A build's manifest (immutable, so read once per reader)."""
    return _manifest(reader, f"{version}/{manifest_relative(table, build_id)}")


@functools.lru_cache(maxsize=256)
def _manifest(reader, relative: str) -> dict:
    found = reader._json(relative)
    if found is None:
        raise BuildNotFoundError(f"no build manifest at {reader.source.uri(relative)} (pruned?)")
    return found


def resolve(reader, spec: TableSpec, version: str, selection: Selection) -> dict:
    """The manifest of the build `selection` picks for `spec`; `BuildNotFoundError` when there is none."""
    ids = build_ids(reader, spec.name, version)
    where = f"in version folder {version} of cache root {reader.source.description}"
    if selection.build in ids:
        return manifest(reader, spec.name, version, selection.build)
    as_of = selection.as_of
    if selection.build is not None:
        if _owner(reader, version, selection.build) is None:
            known = f"{len(ids)} builds, {ids[0]} to {ids[-1]}" if ids else "no builds"
            raise BuildNotFoundError(
                f"no build {selection.build} of {spec.name} or any other table {where}; "
                f"bdc.history({spec.name!r}) lists its {known}"
            )
        as_of = build_time(selection.build)
    if not ids:
        raise BuildNotFoundError(
            f"table {spec.name} has no recorded builds {where}: builds are recorded by biodata-cache "
            f"pipelines since build history exists; read it without as_of/build"
        )
    at_or_before = [build_id for build_id in ids if build_time(build_id) <= as_of]
    if not at_or_before:
        raise BuildNotFoundError(
            f"table {spec.name} has no build at or before {as_of.isoformat()} {where}; "
            f"its first build is {ids[0]}, built at {build_time(ids[0]).isoformat()}"
        )
    return manifest(reader, spec.name, version, at_or_before[-1])


def _owner(reader, version: str, build_id: str) -> str | None:
    """The table that has the build `build_id`, None when no table has."""
    folder = f"{version}/{BUILDS_FOLDER}"
    for relative in reader.source.list_files(folder):
        table, _, name = relative.removeprefix(f"{folder}/").partition("/")
        if name == f"{build_id}.json":
            return table
    return None


# -- reading a build -----------------------------------------------------------------------------


def selected_build(reader, spec: TableSpec, version: str, partitions: list[str] | None) -> pa.Table | None:
    """The table at the build selected for this call (None: no selection, read the published
    paths); each read is logged for `provenance()`."""
    selection = _selection.get()
    if selection is None:
        _log(reader, spec, version, None)
        return None
    found = resolve(reader, spec, version, selection)
    _log(reader, spec, version, found)
    objects = found["objects"]
    if partitions is not None:
        by_value = {entry["partition"]: entry for entry in objects}
        absent = [value for value in partitions if value not in by_value]
        if absent:
            warnings.warn(
                f"{spec.name}: no partition for {spec.partition_key} {absent} in build {found['build_id']}", stacklevel=5
            )
        objects = [by_value[value] for value in dict.fromkeys(partitions) if value in by_value]
    tables = [_read_object(reader, spec, version, entry) for entry in objects]
    return pa.concat_tables(tables) if tables else read_schema(spec).empty_table()


def with_partition_value(table: pa.Table, spec: TableSpec, value: str) -> pa.Table:
    """`table` with its partition column (set, or appended when not stored) holding `value`."""
    column = pa.array([value] * table.num_rows, pa.string())
    if spec.partition_key in table.column_names:
        return table.set_column(table.column_names.index(spec.partition_key), spec.partition_key, column)
    return table.append_column(spec.partition_key, column)


def _read_object(reader, spec: TableSpec, version: str, entry: dict) -> pa.Table:
    relative = f"{version}/{history_object_relative(entry['sha256'])}"
    if entry.get("version_id"):
        data = _version_bytes(reader.source, version, entry, relative)
        table = pq.read_table(pa.BufferReader(data))
    else:
        filesystem, [path] = reader.source.fetch([relative], label=f"{spec.name} {entry['path']}")
        with filesystem.open_input_file(path) as source:
            table = pq.read_table(source)
    table = table.replace_schema_metadata(None) if matches_declaration(table.schema, spec) else upgrade(table, spec)
    return with_partition_value(table, spec, entry["partition"]) if spec.partitioned else table


def _version_bytes(source, version: str, entry: dict, relative: str) -> bytes:
    """One S3 object version: from the local copy when it holds it, else `GetObject` with `VersionId`
    (kept in the local copy, if any, by checksum)."""
    copy = source.local if isinstance(source, CopiedS3Source) else None
    offline = copy is None and isinstance(source.storage.filesystem, pafs.LocalFileSystem)
    if offline:
        copy = source
    if copy is not None:
        data = copy.read_bytes(relative)
        if data is not None:
            return data
    uri = f"{source.uri(version + '/' + entry['path'])} version {entry['version_id']}"
    if offline:
        raise CacheReadError(f"{uri} is not in the local copy; read it once online first")
    bucket, _, prefix = source.root_uri.removeprefix("s3://").partition("/")
    key = "/".join(part for part in (prefix, version, entry["path"]) if part)
    client = source.client if isinstance(source, CopiedS3Source) else _s3_client()
    try:
        data = client.get_object(Bucket=bucket, Key=key, VersionId=entry["version_id"])["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise CacheReadError(f"could not read {uri}: {' '.join(str(error).split())}; {READ_ADVICE}") from error
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CacheReadError(f"{uri} does not match the checksum its build manifest records")
    if copy is not None:
        target = copy.path(relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temp = f"{target}.{secrets.token_hex(8)}.tmp"
        with open(temp, "wb") as out:
            out.write(data)
        os.replace(temp, target)
    return data


# -- provenance ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    reader: object
    table: str
    version: str
    build_id: str | None  # None: the published paths, resolved by `read_at`
    built_at: str | None
    read_at: datetime


_reads: list[_Read] = []


def _log(reader, spec: TableSpec, version: str, found: dict | None) -> None:
    build_id, at = (found["build_id"], found["built_at"]) if found else (None, None)
    _reads.append(_Read(reader, spec.name, version, build_id, at, datetime.now(timezone.utc)))


def provenance(since: datetime | None = None) -> list[dict]:
    """Every table and build this process has read (`since`: at or after that time), first read
    first, each once: `{"table", "version", "build_id", "built_at", "root"}` (build None: no build
    was recorded, or the root cannot be listed now, which a warning says, once per root)."""
    if since is not None and not isinstance(since, datetime):
        raise ValueError(
            f"since {since!r} is not a datetime; use e.g. datetime.now(timezone.utc) taken before the reads"
        )
    since = None if since is None else parse_as_of(since)
    entries, listed, unreachable = {}, {}, set()
    for read in list(_reads):
        if since is not None and read.read_at < since:
            continue
        build_id, at = read.build_id, read.built_at
        root = read.reader.source.root_uri
        if build_id is None:  # the published paths: the build published when the read ran
            where = (read.reader, read.table, read.version)
            if where not in listed:
                listed[where] = []
                if root not in unreachable:
                    try:
                        listed[where] = build_ids(*where)
                    except (CacheReadError, OSError) as error:  # e.g. the root is not reachable any more
                        warnings.warn(f"provenance: the builds read from {root} are unknown: {error}", stacklevel=2)
                        unreachable.add(root)
            ids = [i for i in listed[where] if build_time(i) <= read.read_at]
            build_id, at = (ids[-1], build_time(ids[-1]).isoformat()) if ids else (None, None)
        entry = {"table": read.table, "version": read.version, "build_id": build_id, "built_at": at, "root": root}
        entries.setdefault(tuple(entry.values()), entry)
    return list(entries.values())
