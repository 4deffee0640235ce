"""A cache root in a local folder: temp file in `<root>/.staging/` renamed over the target, and the
versions file updated under an exclusive file lock."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from urllib.parse import quote

import pyarrow.fs as pafs

from biodata_cache_client.layout import STAGING_FOLDER
from biodata_cache_client.storage.base import Storage, temp_name


class LocalStorage(Storage):
    def __init__(self, root_path: str, filesystem: pafs.LocalFileSystem | None = None):
        super().__init__(filesystem or pafs.LocalFileSystem(), root_path, root_path)

    @property
    def staging_folder(self) -> str:
        """`<root>/.staging`: on the root's own file system, so a rename publishes; never inside a
        table folder, where DuckDB's `**` glob would pick a crashed leftover up."""
        return os.path.join(self.root_path, STAGING_FOLDER)

    def url(self, relative: str) -> str:
        return f"file://{quote(self.object_uri(relative))}"

    def put(self, relative: str, data: bytes) -> None:
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.makedirs(self.staging_folder, exist_ok=True)
        temp = os.path.join(self.staging_folder, temp_name(os.path.basename(path)))
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

    def publish_file(self, local_path: str, relative: str) -> None:
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(local_path, path)

    def delete(self, relative: str) -> None:
        path = self.path(relative)
        with suppress(FileNotFoundError):
            os.remove(path)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise

    def update(self, relative: str, change: Callable[[bytes | None], bytes | None]) -> None:
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            new = change(self.read_bytes(relative))
            if new is not None:
                self.put(relative, new)

    def copy(self, relative: str, target: str) -> None:
        """A hard link of the object (no second copy on disk); a plain copy where links cannot be made."""
        path = self.path(target)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.link(self.path(relative), path)
        except FileExistsError:
            pass
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            super().copy(relative, target)

    def delete_folder(self, folder: str) -> None:
        shutil.rmtree(self.path(folder))
