"""Object access under a cache root, directly or through a local copy of S3 objects.

Every reader works with paths relative to the root (`bdc-v0.1/qc/subject_id=1/data.pqt`):
- `DirectSource` reads the root through its storage (`biodata_cache_client.storage`, the one the
  pipeline writes with): a local folder, the in-process `memory://` store, or S3 (anonymous when
  no AWS credentials are found), where every request is retried with backoff (`storage.s3`).
- `CopiedS3Source` keeps every S3 object it reads in a local folder, mirroring the bucket layout
  (`<copy>/<bucket>/<prefix>/...`); the object's ETag and size are recorded next to it (under
  `<copy>/.validators/`) and compared with S3 before each read, so only changed objects are
  downloaded again (with a progress bar). Offline, a `DirectSource` over the copy folder is used.
  Its S3 requests are retried by botocore (standard mode, exponential backoff).

A read that still fails raises `CacheReadError` naming the object; an absent object is not a failure.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager, suppress
from pathlib import Path

import boto3
import pyarrow.fs as pafs
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError
from tqdm.auto import tqdm

from biodata_cache_client.config import Settings
from biodata_cache_client.errors import CacheReadError
from biodata_cache_client.layout import STAGING_FOLDER
from biodata_cache_client.storage import LocalStorage, S3Connection, Storage, storage_for
from biodata_cache_client.storage.s3 import READ_ADVICE, READ_ATTEMPTS, one_line

NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")
VALIDATORS_FOLDER = ".validators"


def root_uri(root: str) -> str:
    """The display URI of a root: `s3://b/p`, `memory://name` or an absolute folder."""
    return root.rstrip("/") if "://" in root else os.path.abspath(root)


class DirectSource:
    """Reads objects under a root through its storage (`biodata_cache_client.storage`).

    `root_uri` is the root as users name it; `description` adds how it is read (e.g. offline).
    """

    def __init__(self, storage: Storage, uri: str | None = None, note: str = ""):
        self.storage = storage
        self.root_uri = uri or storage.uri
        self.description = f"{self.root_uri} ({note})" if note else self.root_uri

    def uri(self, relative: str) -> str:
        return f"{self.root_uri}/{relative}"

    def path(self, relative: str) -> str:
        """The path of `relative` in the storage's filesystem (what pyarrow is given)."""
        return self.storage.path(relative)

    def read_bytes(self, relative: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (any other failure raises)."""
        return self.storage.read_bytes(relative)

    def list_files(self, folder: str) -> list[str]:
        """Relative paths of every object under `folder`, sorted; [] when there is none."""
        return self.storage.list_files(folder)

    def list_folders(self) -> list[str]:
        """Names of the folders directly under the root, sorted."""
        return self.storage.list_folders()

    def is_file(self, relative: str) -> bool:
        return self.storage.is_file(relative)

    def fetch(self, relatives: list[str], label: str) -> tuple[pafs.FileSystem, list[str]]:
        """The filesystem and paths pyarrow reads `relatives` from (here: where they are)."""
        return self.storage.read_filesystem, [self.path(r) for r in relatives]


class CopiedS3Source:
    """S3 objects read through the local copy; see the module docstring."""

    def __init__(self, root: str, copy_folder: str):
        self.root_uri = root_uri(root)
        self.bucket, _, self.prefix = self.root_uri.removeprefix("s3://").partition("/")
        base = f"{self.bucket}/{self.prefix}".rstrip("/")
        self.copy_root = Path(copy_folder) / base
        self.validators_root = Path(copy_folder) / VALIDATORS_FOLDER / base
        self.staging = Path(copy_folder) / STAGING_FOLDER
        self.description = f"{self.root_uri} (local copy in {self.copy_root})"
        self.local = DirectSource(LocalStorage(str(self.copy_root)), self.root_uri)
        self.client = _s3_client()
        # ETag and size from the latest listing or HEAD, used once by the next read instead of a HEAD.
        self._known: dict[str, tuple[str, int]] = {}

    def uri(self, relative: str) -> str:
        return f"{self.root_uri}/{relative}"

    def path(self, relative: str) -> str:
        return self.local.path(relative)

    def read_bytes(self, relative: str) -> bytes | None:
        validator = self._known.pop(relative, None) or self._head(relative)
        if validator is None:
            self._forget(relative)
            return None
        self._download({relative: validator}, label=relative)
        return self.local.read_bytes(relative)

    def list_files(self, folder: str) -> list[str]:
        """List on S3 (recording ETags and sizes), and drop copies of objects that are gone."""
        listed = {}
        key_prefix = self._key(folder).rstrip("/") + "/"
        with self._naming(f"the listing of {self.uri(folder)}/"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key_prefix):
                for item in page.get("Contents", []):
                    listed[self._relative(item["Key"])] = (item["ETag"], item["Size"])
        self._known.update(listed)
        for stale in set(self.local.list_files(folder)) - set(listed):
            self._forget(stale)
        return sorted(listed)

    def list_folders(self) -> list[str]:
        """Names of the folders directly under the root on S3, sorted."""
        root_prefix = f"{self.prefix}/" if self.prefix else ""
        with self._naming(f"the listing of {self.root_uri}/"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root_prefix, Delimiter="/"
            )
            return sorted(
                common["Prefix"].removeprefix(root_prefix).rstrip("/")
                for page in pages
                for common in page.get("CommonPrefixes", [])
            )

    def is_file(self, relative: str) -> bool:
        validator = self._head(relative)
        if validator is not None:
            self._known[relative] = validator
        return validator is not None

    def fetch(self, relatives: list[str], label: str) -> tuple[pafs.FileSystem, list[str]]:
        """Bring `relatives` up to date in the copy; return the local filesystem and paths."""
        validators = {}
        for relative in relatives:
            validator = self._known.pop(relative, None) or self._head(relative)
            if validator is None:
                raise FileNotFoundError(f"{self.uri(relative)} does not exist")
            validators[relative] = validator
        self._download(validators, label)
        return self.local.fetch(relatives, label)

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _relative(self, key: str) -> str:
        return key.removeprefix(f"{self.prefix}/") if self.prefix else key

    def _head(self, relative: str) -> tuple[str, int] | None:
        with self._naming(self.uri(relative)):
            try:
                response = self.client.head_object(Bucket=self.bucket, Key=self._key(relative))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in NOT_FOUND_CODES:
                    return None
                raise
        return response["ETag"], response["ContentLength"]

    @contextmanager
    def _naming(self, what: str):
        """An S3 failure left after botocore's retries becomes a `CacheReadError` naming `what`."""
        try:
            yield
        except (BotoCoreError, ClientError, RetriesExceededError) as error:
            raise CacheReadError(f"could not read {what}: {one_line(error)}; {READ_ADVICE}") from error

    def _validator_path(self, relative: str) -> Path:
        return self.validators_root / f"{relative}.json"

    def _is_current(self, relative: str, validator: tuple[str, int]) -> bool:
        copy = self.copy_root / relative
        try:
            recorded = json.loads(self._validator_path(relative).read_text())
        except (FileNotFoundError, ValueError):
            return False
        etag, size = validator
        return recorded == {"etag": etag, "size": size} and copy.is_file() and copy.stat().st_size == size

    def _download(self, validators: dict[str, tuple[str, int]], label: str) -> None:
        stale = {r: v for r, v in validators.items() if not self._is_current(r, v)}
        if not stale:
            return
        self.staging.mkdir(parents=True, exist_ok=True)
        total = sum(size for _, size in stale.values())
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {label}", leave=False) as progress:
            for relative, (etag, size) in sorted(stale.items()):
                self._download_one(relative, progress.update)
                _replace_text(self._validator_path(relative), json.dumps({"etag": etag, "size": size}), self.staging)

    def _download_one(self, relative: str, on_bytes) -> None:
        target = self.copy_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = self.staging / f"{target.name}.{secrets.token_hex(8)}.tmp"
        try:
            with self._naming(self.uri(relative)), open(temp, "wb") as out:
                self.client.download_fileobj(self.bucket, self._key(relative), out, Callback=on_bytes)
            os.replace(temp, target)
        finally:
            with suppress(FileNotFoundError):
                temp.unlink()

    def _forget(self, relative: str) -> None:
        for path in (self.copy_root / relative, self._validator_path(relative)):
            with suppress(FileNotFoundError):
                path.unlink()


def open_source(settings: Settings) -> DirectSource | CopiedS3Source:
    """The source for these settings; the local copy only concerns s3:// roots."""
    uri = root_uri(settings.root)
    is_s3 = uri.startswith("s3://")
    if is_s3 and settings.offline:
        if not settings.local_copy:
            raise ValueError(
                f"offline reads of {uri} need a local copy: set BIODATA_CACHE_LOCAL_COPY or configure(local_copy=...)"
            )
        copy_root = os.path.join(settings.local_copy, uri.removeprefix("s3://"))
        return DirectSource(LocalStorage(copy_root), uri, note=f"offline, local copy in {copy_root}")
    if is_s3 and settings.local_copy:
        return CopiedS3Source(settings.root, settings.local_copy)
    return DirectSource(storage_for(settings.root), uri)


def _s3_client():
    """A boto3 S3 client from the standard AWS environment, retrying with backoff; unsigned without credentials."""
    unsigned = boto3.Session().get_credentials() is None
    return S3Connection(max_attempts=READ_ATTEMPTS, unsigned=unsigned).client()


def _replace_text(path: Path, text: str, staging: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = staging / f"{path.name}.{secrets.token_hex(8)}.tmp"
    temp.write_text(text)
    os.replace(temp, path)
