"""Object access under a cache root, directly or through a local copy of S3 objects.

Every reader works with paths relative to the root (`bdc-v0.1/qc/subject_id=1/data.pqt`):
- `DirectSource` reads the root through its pyarrow filesystem: a local folder, the in-process
  `memory://` store, or S3 (anonymous when no AWS credentials are found). On S3 every request
  (listing, HEAD, each ranged read of a parquet file) is retried with backoff: the AWS SDK inside
  pyarrow does not retry all transient failures (a 503 SlowDown answering a small ranged read
  surfaces as `Failed to flush response stream`).
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
import random
import secrets
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError
from tqdm.auto import tqdm

from biodata_cache_client.config import Settings
from biodata_cache_client.errors import CacheReadError
from biodata_cache_pipeline.storage import filesystem_for

NOT_FOUND_CODES = ("404", "NoSuchKey", "NotFound")
READ_ATTEMPTS = 5
FIRST_BACKOFF = 0.1  # seconds before the second attempt, doubling (with jitter) for each next one
READ_ADVICE = "check the network and the AWS settings (AWS_ENDPOINT_URL, credentials), then try again"
VALIDATORS_FOLDER = ".validators"
STAGING_FOLDER = ".staging"
T = TypeVar("T")


def root_uri(root: str) -> str:
    """The display URI of a root: `s3://b/p`, `memory://name` or an absolute folder."""
    return root.rstrip("/") if "://" in root else os.path.abspath(root)


class DirectSource:
    """Reads objects under `root_path` of a pyarrow filesystem.

    `uri` is the root as users name it; `description` adds how it is read (e.g. offline).
    """

    def __init__(self, filesystem: pafs.FileSystem, root_path: str, uri: str, note: str = ""):
        self.filesystem = filesystem
        self.root_path = root_path.rstrip("/")
        self.root_uri = uri
        self.description = f"{uri} ({note})" if note else uri

    def uri(self, relative: str) -> str:
        return f"{self.root_uri}/{relative}"

    def path(self, relative: str) -> str:
        """The path of `relative` in `self.filesystem` (what pyarrow is given)."""
        return f"{self.root_path}/{relative}"

    def read_bytes(self, relative: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (any other failure raises)."""
        try:
            with self.filesystem.open_input_stream(self.path(relative)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def list_files(self, folder: str) -> list[str]:
        """Relative paths of every object under `folder`, sorted; [] when there is none."""
        selector = pafs.FileSelector(self.path(folder), recursive=True, allow_not_found=True)
        prefix = f"{self.root_path}/"
        return sorted(
            info.path.removeprefix(prefix) for info in self.filesystem.get_file_info(selector) if info.is_file
        )

    def list_folders(self) -> list[str]:
        """Names of the folders directly under the root, sorted."""
        selector = pafs.FileSelector(self.root_path, allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)

    def is_file(self, relative: str) -> bool:
        return self.filesystem.get_file_info(self.path(relative)).is_file

    def fetch(self, relatives: list[str], label: str) -> tuple[pafs.FileSystem, list[str]]:
        """The filesystem and paths pyarrow reads `relatives` from (here: where they are)."""
        return self.filesystem, [self.path(r) for r in relatives]


def retried(operation: Callable[[], T], what: str) -> T:
    """`operation()`, retried with backoff; the last failure raises `CacheReadError` naming `what`.

    An absent object (`FileNotFoundError`) is an answer, not a failure: it is raised at once.
    """
    attempt = 1
    while True:
        try:
            return operation()
        except FileNotFoundError:
            raise
        except OSError as error:
            if attempt == READ_ATTEMPTS:
                raise CacheReadError(
                    f"could not read {what} ({READ_ATTEMPTS} attempts): {_one_line(error)}; {READ_ADVICE}"
                ) from error
        time.sleep(FIRST_BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
        attempt += 1


class RetryingS3Handler(pafs.FileSystemHandler):
    """Read-only access to an S3 filesystem in which every request goes through `retried`."""

    def __init__(self, s3: pafs.S3FileSystem):
        self.s3 = s3

    def get_type_name(self) -> str:
        return "retrying-s3"

    def normalize_path(self, path: str) -> str:
        return self.s3.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return retried(lambda: self.s3.get_file_info(paths), ", ".join(_s3_uri(path) for path in paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return retried(lambda: self.s3.get_file_info(selector), f"the listing of {_s3_uri(selector.base_dir)}/")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return pa.BufferReader(retried(lambda: self._read_all(path), _s3_uri(path)))

    def open_input_file(self, path: str) -> pa.NativeFile:
        uri = _s3_uri(path)
        return pa.PythonFile(_RetryingFile(retried(lambda: self.s3.open_input_file(path), uri), uri), mode="r")

    def _read_all(self, path: str) -> pa.Buffer:
        with self.s3.open_input_stream(path) as stream:
            return stream.read_buffer()

    def _read_only(self, *args, **kwargs):
        raise PermissionError("the client reads the cache through this filesystem and never writes through it")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = delete_file = _read_only
    move = copy_file = open_output_stream = open_append_stream = _read_only


class _RetryingFile:
    """A random-access S3 object for `pa.PythonFile`: each read is a ranged GET through `retried`."""

    def __init__(self, inner: pa.NativeFile, uri: str):
        self.inner = inner
        self.uri = uri
        self.position = 0
        self.closed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.inner.size()}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def read(self, nbytes: int | None = None) -> bytes:
        if nbytes is None or nbytes < 0:
            nbytes = self.inner.size() - self.position
        data = retried(lambda: self.inner.read_at(nbytes, self.position), self.uri)
        self.position += len(data)
        return data

    def close(self) -> None:
        self.inner.close()
        self.closed = True


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
        self.local = DirectSource(pafs.LocalFileSystem(), str(self.copy_root), self.root_uri)
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
            raise CacheReadError(f"could not read {what}: {_one_line(error)}; {READ_ADVICE}") from error

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
        return DirectSource(pafs.LocalFileSystem(), copy_root, uri, note=f"offline, local copy in {copy_root}")
    if is_s3 and settings.local_copy:
        return CopiedS3Source(settings.root, settings.local_copy)
    filesystem, root_path = filesystem_for(settings.root)
    if is_s3:
        filesystem = pafs.PyFileSystem(RetryingS3Handler(filesystem))
    return DirectSource(filesystem, root_path, uri)


def _s3_client():
    """A boto3 S3 client from the standard AWS environment, retrying with backoff; unsigned without credentials."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    config = Config(retries={"mode": "standard", "total_max_attempts": READ_ATTEMPTS})
    if boto3.Session().get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    return boto3.client("s3", region_name=region, config=config)


def _s3_uri(path: str) -> str:
    return f"s3://{path}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()).rstrip(".")


def _replace_text(path: Path, text: str, staging: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = staging / f"{path.name}.{secrets.token_hex(8)}.tmp"
    temp.write_text(text)
    os.replace(temp, path)
