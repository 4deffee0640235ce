"""A cache root in fsspec's process-wide in-memory store (`memory://name`), for tests: each write
is one store assignment, so no reader sees an object half-written."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextlib import suppress

import pyarrow.fs as pafs

from biodata_cache_client.storage.base import Storage

MEMORY_SCHEME = "memory://"
# Serialises read-modify-writes in the in-memory store (one process by definition).
_UPDATE_LOCK = threading.Lock()


def memory_filesystem() -> pafs.PyFileSystem:
    """The in-memory store shared by every writer and reader of this process (fsspec's `memory`)."""
    import fsspec

    return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("memory")))


class MemoryStorage(Storage):
    def __init__(self, root_path: str, filesystem: pafs.PyFileSystem | None = None):
        super().__init__(filesystem or memory_filesystem(), root_path, f"{MEMORY_SCHEME}{root_path.lstrip('/')}")

    def put(self, relative: str, data: bytes) -> None:
        self.filesystem.handler.fs.pipe_file(self.path(relative), data)

    def publish_file(self, local_path: str, relative: str) -> None:
        with open(local_path, "rb") as source:
            self.put(relative, source.read())

    def delete(self, relative: str) -> None:
        with suppress(FileNotFoundError):
            self.filesystem.delete_dir(os.path.dirname(self.path(relative)))

    def update(self, relative: str, change: Callable[[bytes | None], bytes | None]) -> None:
        with _UPDATE_LOCK:
            new = change(self.read_bytes(relative))
            if new is not None:
                self.put(relative, new)
