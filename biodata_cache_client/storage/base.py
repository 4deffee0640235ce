"""`Storage`: the primitives every backend offers over paths relative to a cache root.

Reads never change anything: an absent object is an answer (None, [], False), any other failure
raises. Writes are atomic for readers: an object appears whole or not at all. The local temp files
writers make (a local root's own, a snapshot before its upload) live in the staging folder; a temp's
name holds its writer's host and process id, so `remove_stale_temps` removes only those of writers
that are gone (killed mid-write), never one a running writer still fills.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from urllib.parse import unquote, quote

import pyarrow as pa
import pyarrow.fs as pafs

# Where the temps of a remote (S3, memory) root are made, e.g. a snapshot before its upload.
LOCAL_STAGING_FOLDER = os.path.join(tempfile.gettempdir(), f"biodata-cache-staging-{os.getuid()}")
# `.<object name>.<pid>-<token>-<host>.tmp`: a later run removes it once that process is gone.
TEMP_NAME = re.compile(r"\.(?P<name>.+?)\.(?P<pid>\d+)-[0-9a-f]{16}-(?P<host>[^/]*)\.tmp")
STALE_TEMP_SECONDS = 24 * 3600  # a temp whose writer cannot be checked (another host) is removed after this


class Storage(ABC):
    """A cache root: `filesystem` (pyarrow, for writes and datasets) at `root_path`, named `uri`.

    `read_filesystem` is what reads go through (on S3, every request retried with backoff).
    """

    def __init__(self, filesystem: pafs.FileSystem, root_path: str, uri: str):
        self.filesystem = filesystem
        self.root_path = root_path
        self.uri = uri

    @property
    def read_filesystem(self) -> pafs.FileSystem:
        return self.filesystem

    @property
    def staging_folder(self) -> str:
        """The local folder of this root's temp files."""
        return LOCAL_STAGING_FOLDER

    # -- names -----------------------------------------------------------------------------------

    def path(self, relative: str) -> str:
        """The path of `relative` in the filesystems (what pyarrow is given)."""
        return f"{self.root_path}/{relative}"

    def object_uri(self, relative: str) -> str:
        return f"{self.uri}/{relative}"

    def describe(self, relative: str) -> str:
        """An object named for messages: its URI and the cache root."""
        return f"{self.object_uri(relative)} (cache root {self.uri})"

    def url(self, relative: str) -> str | None:
        """A link a browser can open for the object, None when there is none."""
        return None

    # -- reads -----------------------------------------------------------------------------------

    def read_bytes(self, relative: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (any other failure raises)."""
        try:
            with self.read_filesystem.open_input_stream(self.path(relative)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def open_input_file(self, relative: str) -> pa.NativeFile:
        """The object for random access (a parquet file); `FileNotFoundError` when it is absent."""
        return self.read_filesystem.open_input_file(self.path(relative))

    def list_files(self, folder: str) -> list[str]:
        """Relative paths of every object under `folder`, sorted; [] when there is none."""
        selector = pafs.FileSelector(self.path(folder), recursive=True, allow_not_found=True)
        prefix = f"{self.root_path}/"
        return sorted(
            info.path.removeprefix(prefix) for info in self.read_filesystem.get_file_info(selector) if info.is_file
        )

    def list_folders(self) -> list[str]:
        """Names of the folders directly under the root, sorted."""
        selector = pafs.FileSelector(self.root_path, allow_not_found=True)
        infos = self.read_filesystem.get_file_info(selector)
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)

    def is_file(self, relative: str) -> bool:
        return self.read_filesystem.get_file_info(self.path(relative)).is_file

    # -- writes ----------------------------------------------------------------------------------

    @abstractmethod
    def put(self, relative: str, data: bytes) -> None:
        """Replace the object with `data`, atomically for readers."""

    @abstractmethod
    def publish_file(self, local_path: str, relative: str) -> None:
        """Replace the object with the local file `local_path` (a staging temp), atomically for readers."""

    @abstractmethod
    def delete(self, relative: str) -> None:
        """Remove the object and its folder (a partition folder holds one object); absent is fine."""

    @abstractmethod
    def update(self, relative: str, change: Callable[[bytes | None], bytes | None]) -> None:
        """Read-modify-write of one object, safe against concurrent writers: `change(current bytes or
        None)` gives the new bytes, or None to leave the object as it is."""

    # -- object history (build manifests name earlier objects: biodata_cache_pipeline.build_history) --

    def versioning_enabled(self) -> bool:
        """Whether the root keeps every earlier version of an object by itself (a versioned S3 bucket)."""
        return False

    def version_id(self, relative: str) -> str | None:
        """The version the object holds now, where the root keeps versions; else None."""
        return None

    def copy(self, relative: str, target: str) -> None:
        """Put a copy of the object at `target`."""
        self.put(target, self.read_bytes(relative))

    def delete_object(self, relative: str) -> None:
        """Remove this one object, with every earlier version of it; absent is fine."""
        with suppress(FileNotFoundError):
            self.filesystem.delete_file(self.path(relative))

    def delete_folder(self, folder: str) -> None:
        """Remove a folder and everything under it (every version of every object)."""
        self.filesystem.delete_dir(self.path(folder))

    # -- staging temps ---------------------------------------------------------------------------

    def staging_temp(self, name: str) -> str:
        """A new, empty temp file in the staging folder for the object `name`, named after its writer."""
        os.makedirs(self.staging_folder, exist_ok=True)
        temp = os.path.join(self.staging_folder, temp_name(name))
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return temp

    def remove_stale_temps(self) -> list[str]:
        """Remove the staging temps left by writers that are gone (killed mid-write): those written
        on this host by a process no longer running, and any older than `STALE_TEMP_SECONDS`; a
        temp of a running writer stays. Returns the paths removed."""
        try:
            entries = [entry for entry in os.scandir(self.staging_folder) if entry.name.endswith(".tmp")]
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


def temp_name(name: str) -> str:
    """A staging file name for the object `name`, holding the writer's pid and host (`TEMP_NAME`)."""
    return f".{name}.{os.getpid()}-{secrets.token_hex(8)}-{quote(socket.gethostname(), safe='')}.tmp"


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
