"""One storage layer for cache roots, used by the pipeline's writer and the client's reader alike.

`storage_for(root)` gives the backend of the root's scheme behind one interface (`Storage`):
`LocalStorage` for a local folder, `S3Storage` for `s3://bucket/prefix` and `MemoryStorage` for
`memory://name` (fsspec's process-wide in-memory store, for tests). What the objects under a root
are called and hold is the layout (`biodata_cache_client.layout`), not this package's concern.
How an S3 root is reached (endpoint, region, retries, credentials) is an `S3Connection`.
"""

from __future__ import annotations

import os

import pyarrow.fs as pafs

from biodata_cache_client.storage.base import Storage, process_alive
from biodata_cache_client.storage.local import LocalStorage
from biodata_cache_client.storage.memory import MEMORY_SCHEME, MemoryStorage
from biodata_cache_client.storage.s3 import S3Storage
from biodata_cache_client.storage.s3_connection import S3Connection

__all__ = [
    "LocalStorage", "MemoryStorage", "S3Connection", "S3Storage", "Storage", "filesystem_for", "process_alive",
    "storage_for",
]


def storage_for(
    root: str, filesystem: pafs.FileSystem | None = None, connection: S3Connection | None = None
) -> Storage:
    """The storage of a local path, an `s3://` or a `memory://` URI (through `filesystem` when given;
    an S3 root reached through `connection`, default the AWS environment)."""
    if root.startswith("s3://"):
        backend, path = S3Storage, root.removeprefix("s3://").strip("/")
        if not path:
            raise ValueError(f"cache root {root!r} names no bucket")
    elif root.startswith(MEMORY_SCHEME):
        backend, path = MemoryStorage, "/" + root.removeprefix(MEMORY_SCHEME).strip("/")
    elif "://" in root:
        raise ValueError(f"cache root {root!r}: only local paths, s3:// and memory:// URIs are supported")
    else:
        backend, path = LocalStorage, os.path.abspath(os.path.expanduser(root))
    expected = {S3Storage: pafs.S3FileSystem, MemoryStorage: pafs.PyFileSystem, LocalStorage: pafs.LocalFileSystem}
    if filesystem is not None and not isinstance(filesystem, expected[backend]):
        raise TypeError(
            f"cache root {root!r} needs a {expected[backend].__name__}, got {type(filesystem).__name__}"
        )
    if backend is S3Storage:
        return S3Storage(path, filesystem, connection)
    return backend(path, filesystem)


def filesystem_for(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for a local path, an `s3://` or `memory://` URI
    (S3 settings from the AWS environment, see `storage.s3`)."""
    storage = storage_for(uri)
    return storage.filesystem, storage.root_path
