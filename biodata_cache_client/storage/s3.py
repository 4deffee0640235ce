"""A cache root on S3 (`s3://bucket/prefix`): reads retried with backoff, each write one PUT.

Its requests follow an `S3Connection` (`s3_connection.py`: endpoint, region, retries, signing,
credentials), which makes both its pyarrow filesystem and its boto3 client; without one, the
standard AWS environment: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` /
`AWS_DEFAULT_REGION` (else the bucket's region is looked up), and credentials from boto3's chain
(environment, profile, role); without credentials reads are anonymous.

Every read request (HEAD, listing, each ranged read of a parquet file) goes through `retried`: the
AWS SDK inside pyarrow does not retry all transient failures (a 503 SlowDown answering a small
ranged read surfaces as `Failed to flush response stream`), and a read that still fails raises
`CacheReadError` naming the object. Writes keep the SDK's retries (and botocore's for the boto3
calls); a boto3 failure raises an `OSError` naming the object. A read-modify-write (`update`) is a
conditional PUT (If-Match the ETag read, or If-None-Match for a new object), tried again when a
concurrent writer won the race.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TypeVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.fs as pafs
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from biodata_cache_client.errors import CacheReadError
from biodata_cache_client.storage.base import Storage
from biodata_cache_client.storage.s3_connection import S3Connection

READ_ATTEMPTS = 5
FIRST_BACKOFF = 0.1  # seconds before the second attempt, doubling (with jitter) for each next one
READ_ADVICE = "check the network and the AWS settings (AWS_ENDPOINT_URL, credentials), then try again"
UPDATE_ATTEMPTS = 10
# S3 answers a conditional PUT that lost a race with 412, or 409 while a competing write is in flight.
RETRYABLE_CONDITIONAL_ERRORS = ("PreconditionFailed", "ConditionalRequestConflict")
S3_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys
T = TypeVar("T")


class S3Storage(Storage):
    def __init__(
        self, root_path: str, filesystem: pafs.S3FileSystem | None = None, connection: S3Connection | None = None
    ):
        """`connection`: how S3 is reached (default: the standard AWS environment)."""
        self.connection = connection or S3Connection()
        bucket = root_path.split("/", 1)[0]
        super().__init__(filesystem or self.connection.filesystem(bucket), root_path, f"s3://{root_path}")

    @cached_property
    def read_filesystem(self) -> pafs.FileSystem:
        return pafs.PyFileSystem(RetryingS3Handler(self.filesystem))

    def url(self, relative: str) -> str:
        bucket, _, key = self.path(relative).partition("/")
        return f"https://{bucket}.s3.amazonaws.com/{quote(key)}"

    def put(self, relative: str, data: bytes) -> None:
        with self.filesystem.open_output_stream(self.path(relative)) as out:
            out.write(data)

    def publish_file(self, local_path: str, relative: str) -> None:
        """A managed upload: the object appears whole or not at all."""
        bucket, key = self._bucket_key(relative)
        with self._naming_failures(relative, "write"):
            self._client.upload_file(local_path, bucket, key)

    def delete(self, relative: str) -> None:
        """Via boto3: pyarrow's S3 delete leaves empty "folder/" marker objects behind."""
        bucket, key = self._bucket_key(relative)
        with self._naming_failures(relative, "delete"):
            self._client.delete_object(Bucket=bucket, Key=key)

    def update(self, relative: str, change: Callable[[bytes | None], bytes | None]) -> None:
        bucket, key = self._bucket_key(relative)
        with self._naming_failures(relative, "update"):
            for attempt in range(UPDATE_ATTEMPTS):
                try:
                    current = self._client.get_object(Bucket=bucket, Key=key)
                except ClientError as error:
                    if _error_code(error) != "NoSuchKey":
                        raise
                    data, condition = None, {"IfNoneMatch": "*"}
                else:
                    data, condition = current["Body"].read(), {"IfMatch": current["ETag"]}
                new = change(data)
                if new is None:
                    return
                try:
                    self._client.put_object(
                        Bucket=bucket, Key=key, Body=new, ContentType="application/json", **condition
                    )
                    return
                except ClientError as error:
                    if _error_code(error) not in RETRYABLE_CONDITIONAL_ERRORS:
                        raise
                time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        raise RuntimeError(
            f"could not update {self.describe(relative)}: "
            f"{UPDATE_ATTEMPTS} conditional writes lost to concurrent writers"
        )

    def versioning_enabled(self) -> bool:
        bucket = self.root_path.split("/", 1)[0]
        with self._naming_failures("", "read the versioning status of"):
            return self._client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"

    def version_id(self, relative: str) -> str | None:
        bucket, key = self._bucket_key(relative)
        try:
            return self._client.head_object(Bucket=bucket, Key=key)["VersionId"]
        except ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise OSError(f"could not read the version of {self.describe(relative)}: {error}") from error

    def copy(self, relative: str, target: str) -> None:
        """A server-side copy."""
        bucket, key = self._bucket_key(relative)
        target_bucket, target_key = self._bucket_key(target)
        with self._naming_failures(target, "copy to"):
            self._client.copy_object(Bucket=target_bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": key})

    def delete_version(self, relative: str, version_id: str) -> None:
        """Delete one earlier version of an object."""
        bucket, key = self._bucket_key(relative)
        with self._naming_failures(relative, f"delete version {version_id} of"):
            self._client.delete_object(Bucket=bucket, Key=key, VersionId=version_id)

    def delete_object(self, relative: str) -> None:
        """Every version of the key (a plain delete on a versioned bucket would only hide it)."""
        _, key = self._bucket_key(relative)
        self._delete_versions([v for v in self._versions(relative) if v["Key"] == key], relative)

    def delete_folder(self, folder: str) -> None:
        self._delete_versions(self._versions(f"{folder}/"), folder)

    def _versions(self, prefix: str) -> list[dict]:
        """Every version and delete marker under `prefix` (an unversioned bucket lists version `null`)."""
        bucket, key_prefix = self._bucket_key(prefix)
        versions = []
        with self._naming_failures(prefix, "list the versions of"):
            for page in self._client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key_prefix):
                for listed in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    versions.append({"Key": listed["Key"], "VersionId": listed["VersionId"]})
        return versions

    def _delete_versions(self, versions: list[dict], relative: str) -> None:
        bucket = self.root_path.split("/", 1)[0]
        for start in range(0, len(versions), S3_DELETE_BATCH):
            batch = versions[start : start + S3_DELETE_BATCH]
            with self._naming_failures(relative, "delete"):
                answer = self._client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise OSError(f"could not delete s3://{bucket}/{first['Key']}: {first.get('Message', first.get('Code'))}")

    @cached_property
    def _client(self):
        return self.connection.client(region=self.filesystem.region)

    def _bucket_key(self, relative: str) -> tuple[str, str]:
        bucket, key = self.path(relative).split("/", 1)
        return bucket, key

    @contextmanager
    def _naming_failures(self, relative: str, action: str) -> Iterator[None]:
        """A boto3 failure (after botocore's own retries) as an `OSError` naming the object."""
        try:
            yield
        except (ClientError, BotoCoreError, S3UploadFailedError) as error:
            raise OSError(f"could not {action} {self.describe(relative)}: {error}") from error


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
                    f"could not read {what} ({READ_ATTEMPTS} attempts): {one_line(error)}; {READ_ADVICE}"
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


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()).rstrip(".")


def _error_code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


def _s3_uri(path: str) -> str:
    return f"s3://{path}"
