"""Build history: every publish of a table records an immutable build manifest, the objects it names
stay readable, and `prune` deletes old builds (and old version folders) on request.

Layout (private: readers that build paths by hand never look there, and pyarrow and DuckDB hive
discovery skip `_` folders):
- `bdc-vX.Y/_builds/<table>/<build_id>.json`: one manifest per build, written once, after the
  table's objects and before its registry fragment (whose `build` then carries `build_id`).
  `{"table", "version", "build_id", "built_at", "pipeline_version", "row_count", "partition_key",
  "objects": [{"path", "partition", "rows", "size", "sha256", "version_id"}]}`: `path` is relative to
  the version folder (the published path), `partition` the decoded partition value (null for an
  unpartitioned table), `version_id` the S3 object version (null where copies are kept).
- The build id is the UTC time of the build (its `built_at`: when its manifest was recorded, after
  its objects were written) and a hash of its objects, `20261201T221500.123456Z-1a2b3c4d`: ids sort
  by time, and the newest manifest is the current build.
- A new build is recorded only when the objects differ from the newest manifest's: a table
  published again with the same bytes keeps its build id.
- A partitioned table's manifest lists every partition as of that build: the partitions of the
  build state, each with the checksum of what this run wrote or compared (`CacheStore.seen_objects`),
  else the previous manifest's entry, else (the first manifest of a table) read and hashed once.
  Runs over other partitions of the table may publish at the same time (quality_control,
  `subject_runs.py`): each records its manifest inside the conditional update of the build state
  that adds its partitions (`manifest_recorder`), from the merged state and the newest manifest as
  they are then. Every change of the state thus comes with a manifest of it, and the newest
  manifest is the one of the state as last written, naming every partition with the checksum of
  its published bytes (the previous manifest's entries being those of the previous state). On S3
  an attempt whose conditional write lost deletes its manifest when the update is tried again.

Keeping the objects readable:
- on an S3 bucket with versioning enabled, by S3 itself: the manifest records each object's
  `VersionId` (a HEAD after the write, by the run that wrote it: one run writes a partition);
- anywhere else (local root, memory store, S3 without versioning), a content-addressed copy
  `bdc-vX.Y/_history/objects/<sha256>.pqt`, stored once however many builds name it: a hard link
  of the published file on a local root (no extra space), a server-side copy on S3.

Every path comes from the layout and every write goes through the store's storage backend (its
atomic `put`, and the object-history primitives: versions, copies, deletes): the store stays the
one owner of the cache's objects. A run keeps the objects it wrote readable (copy, version id)
before the build state names them, outside the conditional update, which stays short.

Retention (`prune`): per table, the newest `keep_builds` builds and every build younger than
`keep_days` days are kept (`BIODATA_HISTORY_KEEP_BUILDS`, default 30; `BIODATA_HISTORY_KEEP_DAYS`,
default 90), and always the current build. An older build's manifest is deleted, and so is every
object version or copy it named that no kept build names; an object that no manifest names at
all (a build in flight) is left alone. `remove_old_versions` deletes the version folders older
than this pipeline's (never the current one, never a newer one); `cache_versions.json` keeps
listing them (layout.md: it never loses an entry).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


from biodata_cache_client import layout
from biodata_cache_client.layout import (
    BUILD_ID,
    BUILD_TIME_FORMAT,
    BUILDS_FOLDER,
    PIPELINE_VERSION,
    build_time,
    history_object_relative,
    manifest_relative,
)
from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_pipeline.number_settings import number_setting
from biodata_cache_pipeline.storage import CacheStore

KEEP_BUILDS_ENV = "BIODATA_HISTORY_KEEP_BUILDS"
KEEP_DAYS_ENV = "BIODATA_HISTORY_KEEP_DAYS"
DEFAULT_KEEP_BUILDS = 30
DEFAULT_KEEP_DAYS = 90
log = logging.getLogger(__name__)


# -- recording ---------------------------------------------------------------------------------


def record_build(store: CacheStore, spec: TableSpec, row_count: int, state: Mapping[str, dict] | None = None) -> str:
    """Write the manifest of the table as now published (unless the newest one names the same
    objects) and keep its objects readable; return the current build id. A partitioned table's
    objects are the partitions of `state` (default: its stored build state)."""
    return _record(store, spec, row_count, state, _kept_objects(store, spec))[0]


def manifest_recorder(store: CacheStore, spec: TableSpec) -> Callable[[Mapping[str, dict]], None]:
    """`record(state)` for `CacheStore.update_partition_state`: records the manifest of the
    partitioned table as of `state` inside the update (module docstring). The objects this store
    wrote are kept readable now, before the update; an attempt the update makes again first deletes
    the manifest of the attempt whose conditional write lost."""
    kept = _kept_objects(store, spec)
    written: list[str] = []

    def record(state: Mapping[str, dict]) -> None:
        for build_id in written:
            store.storage.delete_object(_in_version(store, manifest_relative(spec.name, build_id)))
        written.clear()
        build_id, new = _record(store, spec, sum(entry["rows"] for entry in state.values()), state, kept)
        if new:
            written.append(build_id)

    return record


def _record(
    store: CacheStore, spec: TableSpec, row_count: int, state: Mapping[str, dict] | None, kept: dict[str, dict]
) -> tuple[str, bool]:
    """The current build id, and whether this call wrote its manifest."""
    previous = latest_manifest(store, spec)
    objects = _current_objects(store, spec, row_count, state, previous, kept)
    if previous is not None and previous["objects"] == objects:
        return previous["build_id"], False
    now = datetime.now(timezone.utc)
    digest = hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:8]
    build_id = f"{now.strftime(BUILD_TIME_FORMAT)}-{digest}"
    manifest = {
        "table": spec.name,
        "version": store.version,
        "build_id": build_id,
        "built_at": now.isoformat(),
        "pipeline_version": PIPELINE_VERSION,
        "row_count": row_count,
        "partition_key": spec.partition_key,
        "objects": objects,
    }
    store.storage.put(_in_version(store, manifest_relative(spec.name, build_id)), json.dumps(manifest, separators=(",", ":")).encode())
    return build_id, True


def build_ids(store: CacheStore, spec: TableSpec) -> list[str]:
    """The table's recorded builds, oldest first."""
    folder = _in_version(store, f"{BUILDS_FOLDER}/{spec.name}")
    ids = [relative.rsplit("/", 1)[-1].removesuffix(".json") for relative in store.storage.list_files(folder)]
    return sorted(i for i in ids if BUILD_ID.fullmatch(i))


def read_manifest(store: CacheStore, spec: TableSpec, build_id: str) -> dict:
    return store._read_json(_in_version(store, manifest_relative(spec.name, build_id)))


def latest_manifest(store: CacheStore, spec: TableSpec) -> dict | None:
    """The newest manifest; None when there is none, or it is unreadable (logged: the next manifest
    is then made from the published objects, as for a table's first build)."""
    ids = build_ids(store, spec)
    try:
        found = read_manifest(store, spec, ids[-1]) if ids else None
        if found is not None and not isinstance(found.get("objects"), list):
            described = store.storage.describe(_in_version(store, manifest_relative(spec.name, ids[-1])))
            raise ValueError(f"{described} is not a build manifest")
    except (ValueError, AttributeError) as error:
        log.warning("%s; the next manifest is made from the published objects", error)
        return None
    return found


def _kept_objects(store: CacheStore, spec: TableSpec) -> dict[str, dict]:
    """Manifest entries (but their rows) of the table's objects this store wrote or compared
    (`CacheStore.seen_objects`), by path relative to the version folder, each kept readable unless
    the newest manifest names it with the same bytes."""
    known = _entries(latest_manifest(store, spec))
    versioned = store.storage.versioning_enabled()
    kept = {}
    for path, partition in _table_objects(store, spec, sorted(store.seen_objects)):
        sha256, size = store.seen_objects[path]
        relative = path.removeprefix(f"{store.version}/")
        entry = known.get(relative)
        if entry is None or (entry["sha256"], entry["size"]) != (sha256, size):
            entry = _kept_entry(store, path, partition, sha256, size, versioned)
        kept[relative] = entry
    return kept


def _table_objects(store: CacheStore, spec: TableSpec, paths: list[str]) -> list[tuple[str, str | None]]:
    """The paths among `paths` that are objects of the table, each with its partition value (None
    for an unpartitioned table's object)."""
    if not spec.partitioned:
        return [(path, None) for path in paths if path == layout.table_file(store.version, spec)]
    folder = f"{layout.table_folder(store.version, spec)}/"
    values = [(path, layout.partition_value(spec, path.removeprefix(folder))) for path in paths if path.startswith(folder)]
    return [(path, value) for path, value in values if value is not None]


def _current_objects(
    store: CacheStore,
    spec: TableSpec,
    row_count: int,
    state: Mapping[str, dict] | None,
    previous: dict | None,
    kept: dict[str, dict],
) -> list[dict]:
    """The manifest entries of the table as published now (a partitioned table: as of `state`):
    the objects this run kept, else the previous manifest's, else read, hashed and kept."""
    if spec.partitioned:
        state = store.read_partition_state(spec) if state is None else state
        listed = [(layout.partition_file(store.version, spec, key), key, state[key]["rows"]) for key in sorted(state)]
    else:
        listed = [(layout.table_file(store.version, spec), None, row_count)]
    known = _entries(previous)
    versioned = None  # asked once, when an object must be kept here
    objects = []
    for path, partition, rows in listed:
        relative = path.removeprefix(f"{store.version}/")
        entry = kept.get(relative) or known.get(relative)
        if entry is None:  # first manifest of this table: read and hash the published object once
            data = store.storage.read_bytes(path)
            if data is None:
                continue
            if versioned is None:
                versioned = store.storage.versioning_enabled()
            entry = _kept_entry(store, path, partition, hashlib.sha256(data).hexdigest(), len(data), versioned)
        objects.append({**entry, "rows": rows})
    return objects


def _entries(manifest: dict | None) -> dict[str, dict]:
    """A manifest's entries by path."""
    return {entry["path"]: entry for entry in (manifest or {}).get("objects", [])}


def _kept_entry(store: CacheStore, path: str, partition: str | None, sha256: str, size: int, versioned: bool) -> dict:
    """The manifest entry (but its rows) of the published object at `path`, kept readable: its
    version id on a versioned bucket, else a copy."""
    version_id = store.storage.version_id(path) if versioned else _keep_copy(store, path, sha256)
    return {"path": path.removeprefix(f"{store.version}/"), "partition": partition, "rows": None, "size": size,
            "sha256": sha256, "version_id": version_id}


def _keep_copy(store: CacheStore, path: str, sha256: str) -> None:
    """Keep the published object at `path` as `_history/objects/<sha256>.pqt` (once)."""
    target = _in_version(store, history_object_relative(sha256))
    if not store.storage.is_file(target):
        store.storage.copy(path, target)


def _in_version(store: CacheStore, relative: str) -> str:
    """A path relative to the version folder, made relative to the root."""
    return f"{store.version}/{relative}"


# -- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """Keep the newest `keep_builds` builds of each table and every build younger than `keep_days`."""

    keep_builds: int = DEFAULT_KEEP_BUILDS
    keep_days: float = DEFAULT_KEEP_DAYS

    def __post_init__(self) -> None:
        if not isinstance(self.keep_builds, int) or self.keep_builds < 1:
            raise ValueError(f"keep_builds {self.keep_builds!r} must be a whole number of at least 1 (the current build)")
        if not isinstance(self.keep_days, (int, float)) or self.keep_days < 0:
            raise ValueError(f"keep_days {self.keep_days!r} must be a number of days, 0 or more")

    @classmethod
    def from_environment(cls, keep_builds: int | None = None, keep_days: float | None = None) -> Retention:
        """The given values, else `BIODATA_HISTORY_KEEP_BUILDS` / `_KEEP_DAYS`, else 30 / 90."""
        return cls(
            keep_builds=keep_builds if keep_builds is not None else number_setting(
                KEEP_BUILDS_ENV, DEFAULT_KEEP_BUILDS, "builds", str(DEFAULT_KEEP_BUILDS), whole=True, positive=True
            ),
            keep_days=keep_days if keep_days is not None else number_setting(
                KEEP_DAYS_ENV, DEFAULT_KEEP_DAYS, "days", str(DEFAULT_KEEP_DAYS)
            ),
        )

    def expired(self, ids: list[str], now: datetime) -> list[str]:
        """The builds (oldest first) this retention lets go: never the newest, the current one."""
        kept = set(ids[-self.keep_builds :])
        cutoff = now - timedelta(days=self.keep_days)
        return [i for i in ids if i not in kept and build_time(i) < cutoff]


@dataclass(frozen=True)
class Deletion:
    """One thing prune deletes: a description for the terminal and how to delete it."""

    description: str
    delete: Callable[[], None]


def prune(
    store: CacheStore,
    retention: Retention,
    remove_old_versions: bool = False,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
    now: datetime | None = None,
) -> list[str]:
    """Delete the builds `retention` lets go (and with `remove_old_versions` the older version
    folders), saying each first; with `dry_run` only say. Returns the descriptions."""
    deletions = _expired_builds(store, retention, now or datetime.now(timezone.utc))
    if remove_old_versions:
        deletions += _old_version_folders(store)
    verb = "would delete" if dry_run else "deleting"
    for deletion in deletions:
        say(f"{verb} {deletion.description}")
        if not dry_run:
            deletion.delete()
    if not deletions:
        say("nothing to delete")
    return [deletion.description for deletion in deletions]


def _expired_builds(store: CacheStore, retention: Retention, now: datetime) -> list[Deletion]:
    """Expired manifests, then the object versions or copies only they name."""
    kept_refs, expired_refs, deletions = set(), {}, []
    for spec in TABLES.values():
        ids = build_ids(store, spec)
        expired = set(retention.expired(ids, now))
        for build_id in ids:
            try:
                manifest = read_manifest(store, spec, build_id)
                refs = {_reference(entry) for entry in manifest["objects"]}
            except (ValueError, TypeError, KeyError) as error:
                log.warning("build %s of %s is unreadable (%s): left as it is", build_id, spec.name, error)
                continue
            if build_id in expired:
                for ref in refs:
                    expired_refs.setdefault(ref, f"{spec.name} {build_id}")
                path = _in_version(store, manifest_relative(spec.name, build_id))
                deletions.append(
                    Deletion(f"build {spec.name} {build_id} (built {manifest['built_at']}): {store.storage.object_uri(path)}",
                             lambda path=path: store.storage.delete_object(path))
                )
            else:
                kept_refs |= refs
    # A copy is shared by every object (of any build, any table) with its bytes: deleted once, when none is kept.
    kept_copies = {sha256 for _, sha256, version_id in kept_refs if version_id is None}
    deleted_copies = set()
    for (path, sha256, version_id), build in sorted(expired_refs.items(), key=lambda item: item[0]):
        if (path, sha256, version_id) in kept_refs:
            continue
        if version_id is None:
            if sha256 in kept_copies or sha256 in deleted_copies:
                continue
            deleted_copies.add(sha256)
            target = _in_version(store, history_object_relative(sha256))
            deletions.append(Deletion(f"copy of {path} from build {build}: {store.storage.object_uri(target)}",
                                      lambda target=target: store.storage.delete_object(target)))
        elif store.storage.version_id(_in_version(store, path)) != version_id:  # never the object's current version
            full = _in_version(store, path)
            deletions.append(Deletion(f"{store.storage.object_uri(full)} version {version_id} from build {build}",
                                      lambda full=full, version_id=version_id: store.storage.delete_version(full, version_id)))
    return deletions


def _reference(entry: dict) -> tuple[str, str, str | None]:
    return entry["path"], entry["sha256"], entry.get("version_id")


def _old_version_folders(store: CacheStore) -> list[Deletion]:
    """Every `bdc-vX.Y` folder under the root older than this pipeline's version folder."""
    current = layout.version_number(store.version)
    deletions = []
    for folder in store.storage.list_folders():
        if layout.VERSION_FOLDER_PATTERN.match(folder) and layout.version_number(folder) < current:
            deletions.append(Deletion(f"old version folder {store.storage.object_uri(folder)}/ (current: {store.version})",
                                      lambda folder=folder: store.storage.delete_folder(folder)))
    return deletions


# -- command line ---------------------------------------------------------------------------------


def add_prune_command(commands) -> None:
    """`biodata-cache-pipeline prune [--dry-run] [--keep-builds N] [--keep-days D] [--remove-old-versions]`."""
    command = commands.add_parser("prune", help="delete old builds (and old version folders), never the current ones")
    command.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    command.add_argument("--keep-builds", type=int, metavar="N",
                         help=f"builds kept per table (default ${KEEP_BUILDS_ENV} or {DEFAULT_KEEP_BUILDS})")
    command.add_argument("--keep-days", type=float, metavar="D",
                         help=f"builds younger than this are kept (default ${KEEP_DAYS_ENV} or {DEFAULT_KEEP_DAYS})")
    command.add_argument("--remove-old-versions", action="store_true",
                         help="also delete the bdc-vX.Y folders older than this pipeline's")


def run_prune(args: argparse.Namespace, store: CacheStore) -> int:
    """The `prune` command on `store`'s root: 0 when done, 2 for bad settings, 1 when a deletion failed."""
    try:
        retention = Retention.from_environment(args.keep_builds, args.keep_days)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"cache: {store.root_uri}/{store.version}/ keeping per table the newest {retention.keep_builds} builds "
          f"and every build younger than {retention.keep_days:g} days")
    try:
        prune(store, retention, remove_old_versions=args.remove_old_versions, dry_run=args.dry_run)
    except OSError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    return 0
