"""The embedded-default records source: a folder of data-asset folders (sources.md §1).

An asset folder is named `<label>_<YYYY-MM-DD_HH-MM-SS>`. Its record is `metadata.nd.json`, or,
when that file is absent, the core JSON files assembled into one record. Anything else in the
folder is ignored. An unreadable file becomes a record carrying the reason, never an exception.

`LocalFolderRecords` reads and normalises the folders; `LocalFolderSource` is how the record
snapshot reads them: a listing of the folders with their signatures (names, sizes and modification
times of the files the record is read from: `metadata.nd.json` alone when it is there; on S3 the
names only), then, in worker processes, the records of the folders whose signature changed since
the snapshot.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import msgspec
import orjson
import pyarrow.fs as pafs

from biodata_cache_client.storage import filesystem_for
from biodata_cache_pipeline.records import RECORD_SECTIONS, NormalizedRecord, normalize_record
from biodata_cache_pipeline.sources import ChangedRecords

WHOLE_RECORD_FILE = "metadata.nd.json"
# core file -> record section; the v1 names map onto the same sections as in their own layout.
CORE_FILES = {
    "subject.json": "subject",
    "data_description.json": "data_description",
    "procedures.json": "procedures",
    "instrument.json": "instrument",
    "rig.json": "rig",
    "acquisition.json": "acquisition",
    "session.json": "session",
    "processing.json": "processing",
    "quality_control.json": "quality_control",
    "model.json": "model",
}
# Stable namespace for the UUID5 `_id` of records assembled from core files.
RECORD_ID_NAMESPACE = uuid.UUID("5a0f3d52-7f43-4d0c-9a57-3f1c8a2f6b10")


# A whole record decoded into the fields the normaliser reads: skipping the others (the instrument
# is about half of an AIND record) makes reading a record a quarter cheaper.
_RECORD_DECODER = msgspec.json.Decoder(
    msgspec.defstruct("RecordSections", [(name, Any, msgspec.UNSET) for name in RECORD_SECTIONS])
)
_ASSET_FOLDER = re.compile(r".+_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}")


def is_asset_folder_name(name: str) -> bool:
    return _ASSET_FOLDER.fullmatch(name) is not None


class LocalFolderRecords:
    """Reads the records of every asset folder under `root` (local path or `s3://...`)."""

    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None):
        self.root = root.rstrip("/")
        self.fs, self.base = (filesystem, self.root) if filesystem else filesystem_for(self.root)
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    def asset_folders(self) -> list[str]:
        return self.folders()[0]

    def folders(self) -> tuple[list[str], list[str]]:
        """The asset folders and the other sub-folders (private ones, `_foraging` or `.staging`,
        left out), sorted, from one listing."""
        try:
            names = sorted(self._sub_folders())
        except FileNotFoundError as error:
            raise FileNotFoundError(f"records folder {self.root} does not exist") from error
        assets = [name for name in names if is_asset_folder_name(name)]
        return assets, [n for n in names if not is_asset_folder_name(n) and not n.startswith(("_", "."))]

    def _sub_folders(self) -> Iterator[str]:
        if self.is_local:  # os.scandir knows a folder from its directory entry: no stat per entry (5x faster)
            with os.scandir(self.base) as entries:
                yield from (entry.name for entry in entries if entry.is_dir())
            return
        infos = self.fs.get_file_info(pafs.FileSelector(self.base))
        yield from (i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def folder_files(self, folder: str) -> dict[str, pafs.FileInfo]:
        """The files directly inside an asset folder, by name."""
        return {
            i.base_name: i
            for i in self.fs.get_file_info(pafs.FileSelector(f"{self.base}/{folder}"))
            if i.type == pafs.FileType.File
        }

    def record_files(self, folder: str) -> dict[str, pafs.FileInfo]:
        """The files an asset folder's record is read from, by name: `metadata.nd.json` alone when
        it is there (one look-up, not a listing of the folder), else every file of the folder."""
        whole = self.fs.get_file_info(f"{self.base}/{folder}/{WHOLE_RECORD_FILE}")
        if whole.type == pafs.FileType.File:
            return {WHOLE_RECORD_FILE: whole}
        return self.folder_files(folder)

    def signature(self, folder: str) -> str:
        """`files_signature(record_files(folder))`, the same text: on a local disk, when metadata.nd.json
        is a file, from one `os.stat` (cheaper than `record_files`, which the listing runs per folder);
        otherwise from `record_files` (FileNotFoundError when the folder is gone)."""
        if self.is_local:
            try:
                found = os.stat(f"{self.base}/{folder}/{WHOLE_RECORD_FILE}")
            except OSError:  # absent, or not to be followed (a symlink loop): as `record_files` finds it
                found = None
            if found is not None and stat.S_ISREG(found.st_mode):
                return _file_signature(WHOLE_RECORD_FILE, found.st_size, found.st_mtime_ns)
        return files_signature(self.record_files(folder))

    def _read_json(self, path: str, sections_only: bool = False) -> Any:
        """A JSON file's value; `sections_only`: of a record, only the `RECORD_SECTIONS` (the
        others are skipped, not decoded) when it is an object msgspec reads."""
        with self.fs.open_input_stream(path) as stream:
            data = stream.read()
        if sections_only:
            try:
                sections = _RECORD_DECODER.decode(data)
            except (msgspec.MsgspecError, RecursionError):  # not an object, or what orjson or json must read
                pass
            else:
                values = ((name, getattr(sections, name)) for name in RECORD_SECTIONS)
                return {name: value for name, value in values if value is not msgspec.UNSET}
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # NaN, integers beyond 64 bits, lone surrogates: what json reads
            try:
                return json.loads(data)
            except RecursionError:  # deeper than orjson reads (1024 levels), and than Python recurses
                raise ValueError("nested too deeply to read") from None

    def raw_record(
        self, folder: str, files: dict[str, pafs.FileInfo] | None = None, sections_only: bool = False
    ) -> tuple[Any, list[str]]:
        """(record, problems) for one asset folder (`files`: its `record_files`, if known);
        `sections_only`: a whole record may hold only the `RECORD_SECTIONS`, what is normalised."""
        folder_path = f"{self.base}/{folder}"
        files = self.record_files(folder) if files is None else files
        if WHOLE_RECORD_FILE in files:
            try:
                whole = self._read_json(f"{folder_path}/{WHOLE_RECORD_FILE}", sections_only)
            except (OSError, ValueError) as error:
                return None, [f"{folder}/{WHOLE_RECORD_FILE}: unreadable ({error})"]
            return whole, [] if whole is not None else [f"{folder}/{WHOLE_RECORD_FILE}: holds null, not a record"]
        record: dict[str, Any] = {}
        problems: list[str] = []
        newest = None
        for file_name, section in CORE_FILES.items():
            if file_name not in files:
                continue
            try:
                record[section] = self._read_json(f"{folder_path}/{file_name}")
            except (OSError, ValueError) as error:
                problems.append(f"{folder}/{file_name}: unreadable ({error})")
                continue
            mtime = files[file_name].mtime
            newest = mtime if newest is None or (mtime and mtime > newest) else newest
        if not record:
            return None, problems or [f"{folder}: no {WHOLE_RECORD_FILE} and no core metadata files"]
        record = {
            "_id": str(uuid.uuid5(RECORD_ID_NAMESPACE, folder)),
            "name": folder,
            "location": f"{self.root}/{folder}",
            "_last_modified": newest.astimezone(timezone.utc).isoformat() if isinstance(newest, datetime) else None,
            **record,
        }
        return record, problems

    def record(self, folder: str, files: dict[str, pafs.FileInfo] | None = None) -> NormalizedRecord:
        """The normalised record of one asset folder; problems reading it are in `problems`."""
        raw, problems = self.raw_record(folder, files, sections_only=True)
        record = normalize_record(raw) if raw is not None else NormalizedRecord()
        record.problems[:0] = problems
        return record

    def records(self) -> Iterator[NormalizedRecord]:
        """Every record, in folder order."""
        return (self.record(folder) for folder in self.asset_folders())


@lru_cache(maxsize=4)
def _reader(root: str) -> LocalFolderRecords:
    """One reader (and filesystem) per root and process."""
    return LocalFolderRecords(root)


@dataclass(frozen=True)
class LocalFolderSource:
    """The records of a folder of asset folders, as the record snapshot reads them (picklable:
    `read_changed` runs in worker processes). `folders`: its asset folders when they were just
    listed (the listing then reads their signatures only); never sent to a worker."""

    root: str
    folders: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    def __reduce__(self):
        return LocalFolderSource, (self.root,)  # a worker reads records, never the listing

    @property
    def label(self) -> str:
        return self.root

    def listing(self) -> list[tuple[str, str | None]]:
        """(asset folder, signature) in folder order. On a local disk the signature is read here (a
        `stat` of metadata.nd.json, about 10 µs), so only changed folders go to the workers; on S3
        (a request per folder) it is None, and the workers read it."""
        reader = _reader(self.root)
        folders = self.folders if self.folders is not None else reader.asset_folders()
        if not reader.is_local:
            return [(folder, None) for folder in folders]
        listed = []
        for folder in folders:
            try:
                listed.append((folder, reader.signature(folder)))
            except FileNotFoundError:  # gone since the folders were listed
                continue
        return listed

    def read_changed(self, entries: Sequence[tuple[str, str | None, str | None]]) -> ChangedRecords:
        """For (folder, _, signature in the snapshot) entries: the records of the folders whose
        signature differs, and the folders that did not change (a folder gone since the listing is
        in neither)."""
        reader = _reader(self.root)
        result = ChangedRecords()
        for folder, _, previous in entries:
            try:
                files = reader.record_files(folder)
            except FileNotFoundError:
                continue
            signature = files_signature(files)
            if signature == previous:
                result.unchanged.append(folder)
            else:
                result.records.append((folder, signature, reader.record(folder, files)))
        return result


def files_signature(files: dict[str, pafs.FileInfo]) -> str:
    """Names, sizes and modification times of the files a record is parsed from (`record_files`)."""
    return "\n".join(_file_signature(name, files[name].size, files[name].mtime_ns) for name in sorted(files))


def _file_signature(name: str, size: int | None, mtime_ns: int | None) -> str:
    return f"{name}\t{size}\t{mtime_ns}"
