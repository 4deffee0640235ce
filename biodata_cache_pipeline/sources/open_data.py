"""The open-data store: files inside asset folders (neuroglancer configs, channels, trainer state).

Production reads `s3://aind-open-data`; the embedded default is the local sample folder. An
asset's `location` (`s3://aind-open-data/<name>`) is resolved against the configured root, so
the same record works against either. A location that is a local asset folder (a record the
local source assembled from core files: `<records root>/<name>`) resolves by its folder name
when it is not under the root, the records root standing for the bucket. A location with a `..`
segment resolves to nothing: only files inside the root are read.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow.fs as pafs

from biodata_cache_client.storage import filesystem_for


class OpenDataStore:
    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None):
        self.fs, self.base = (filesystem, root.rstrip("/")) if filesystem else filesystem_for(root)
        self.root = root.rstrip("/")
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    def resolve(self, location: str | None, *parts: str) -> str | None:
        """The filesystem path of `parts` inside the asset folder at `location`, or None (no
        location, or one leading out of the root)."""
        if not location:
            return None
        location = location.rstrip("/")
        if location == self.root or location.startswith(self.root + "/"):
            relative = location[len(self.root):].lstrip("/")
        elif location.startswith("s3://") and "/" in location[len("s3://"):]:
            relative = location[len("s3://"):].split("/", 1)[1]
        elif location.startswith("/"):
            relative = location.rsplit("/", 1)[1]
        else:
            return None
        if ".." in relative.split("/"):
            return None
        return "/".join(p for p in (self.base, relative, *parts) if p)

    def _infos(self, path: str | None, recursive: bool = False) -> list[pafs.FileInfo]:
        if path is None:
            return []
        if self.is_local and not os.path.isdir(path):  # one stat, not a listing: most folders asked for are absent
            return []
        try:
            return self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive))
        except (OSError, ValueError):  # not a directory, or unreachable: nothing to list
            return []

    def has_folder(self, location: str | None, *parts: str) -> bool:
        """Whether `parts` is a folder with something in it in the asset folder (on an object store:
        a prefix with objects); an absent local folder costs one stat (`_infos`)."""
        return bool(self._infos(self.resolve(location, *parts)))

    def list_dirs(self, location: str | None, *parts: str) -> list[str]:
        """Names of the sub-folders of `parts` in the asset folder, sorted."""
        return sorted(i.base_name for i in self._infos(self.resolve(location, *parts)) if i.type == pafs.FileType.Directory)

    def find_files(self, location: str | None, folder: str, prefix: str, suffix: str) -> list[str]:
        """Paths (relative to `folder`) of files under `folder` whose relative path starts with
        `prefix` and ends with `suffix`, sorted: an object-store prefix listing."""
        base = self.resolve(location, folder)
        found = []
        for info in self._infos(base):
            if not info.base_name.startswith(prefix):
                continue
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix):
                found.append(info.base_name)
            elif info.type == pafs.FileType.Directory:
                found += [
                    i.path[len(base) + 1:]
                    for i in self._infos(info.path, recursive=True)
                    if i.type == pafs.FileType.File and i.path.endswith(suffix)
                ]
        return sorted(found)

    def read_json(self, location: str | None, *parts: str) -> Any | None:
        """The parsed JSON file at `parts` in the asset folder; None if absent or unreadable."""
        path = self.resolve(location, *parts)
        if path is None or (self.is_local and not os.path.isfile(path)):  # one stat: most files asked for are absent
            return None
        try:
            with self.fs.open_input_stream(path) as stream:
                return json.loads(stream.read())
        except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply to read
            return None
