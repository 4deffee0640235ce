"""Dagster resources: where records, open-data files and foraging sessions come from.

Each resource is a thin, configurable wrapper over a pure source in `sources/`; the same table
code runs whatever implementation is plugged in.
"""

from __future__ import annotations

from abc import abstractmethod

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from pydantic import Field

from biodata_cache_client.storage import filesystem_for
from biodata_cache_pipeline.sources import RecordSource, docdb
from biodata_cache_pipeline.sources.local_folder import LocalFolderRecords, LocalFolderSource
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.tables import RECORD_FIELDS


class RecordsResource(ConfigurableResource):
    """Where the metadata records come from; the record snapshot is refreshed from `open()`'s source."""

    workers: int | None = Field(
        default=None, description="Processes that read and normalise records (default: every core)."
    )

    @abstractmethod
    def open(self) -> tuple[RecordSource, list[str]]:
        """The source, and warnings about what it holds that is not read as records."""


class LocalRecordsResource(RecordsResource):
    """Metadata records read from a folder of data-asset folders (the embedded default)."""

    root: str = Field(description="Folder (or s3:// prefix) holding one folder per data asset.")
    allow_no_records: bool = Field(
        default=False,
        description="Build an empty cache when no sub-folder is named like an asset folder; by default that fails.",
    )

    def open(self) -> tuple[RecordSource, list[str]]:
        """The folder's records, from one listing of it, and a warning naming the sub-folders that
        are not asset folders; an error when it has sub-folders but none is an asset folder."""
        assets, ignored = LocalFolderRecords(self.root).folders()
        if not self.allow_no_records and not assets and ignored:
            raise RuntimeError(f"no records in {self.root}: {self._ignored(ignored)}")
        warnings = [f"records folder {self.root}: {self._ignored(ignored)}"] if ignored else []
        return LocalFolderSource(self.root, tuple(assets)), warnings

    @staticmethod
    def _ignored(folders: list[str]) -> str:
        examples = ", ".join(repr(name) for name in folders[:2])
        return (
            f"{len(folders)} sub-folders ignored (e.g. {examples}): an asset folder is named "
            f"<label>_<YYYY-MM-DD_HH-MM-SS> and holds metadata.nd.json or the core JSON files"
        )


class DocDbRecordsResource(RecordsResource):
    """Metadata records from DocDB through aind-data-access-api's MetadataDbClient (production).

    `_id`-keyed listing and `$in` fetches projected on the fields the tables read; connection
    errors, timeouts, 429 and 5xx are retried with exponential backoff, and a persistent failure
    fails the snapshot (nothing is published).
    """

    host: str = Field(default=docdb.DEFAULT_HOST, description="DocDB REST API host (https://<host>/...).")
    database: str = Field(default=docdb.DEFAULT_DATABASE, description="DocDB database.")
    collection: str = Field(default=docdb.DEFAULT_COLLECTION, description="DocDB collection.")
    version: str = Field(default=docdb.DEFAULT_VERSION, description="REST API version (v2: 2.x records).")
    page_size: int = Field(default=docdb.DEFAULT_PAGE_SIZE, description="Documents asked for per find request.")
    batch_size: int = Field(default=docdb.DEFAULT_BATCH_SIZE, description="Ids per $in request.")
    retry_attempts: int = Field(default=5, description="Attempts per request before the asset fails.")
    retry_delay: float = Field(default=1.0, description="Seconds before the first retry; doubles each time, at most 30.")
    timeout: float = Field(default=docdb.DEFAULT_TIMEOUT, description="Seconds a request may take.")
    loopback_port: int | None = Field(
        default=None,
        description="Tests and demos only: send the requests to the DocDB stand-in on http://127.0.0.1:<port>/.",
    )

    def open(self) -> tuple[RecordSource, list[str]]:
        """The collection's records (no warnings)."""
        source = docdb.DocDbSource(
            host=self.host,
            database=self.database,
            collection=self.collection,
            version=self.version,
            page_size=self.page_size,
            batch_size=self.batch_size,
            retry=docdb.RetryPolicy(attempts=self.retry_attempts, delay=self.retry_delay),
            timeout=self.timeout,
            loopback_port=self.loopback_port,
            fields=RECORD_FIELDS,
        )
        return source, []


class OpenDataResource(ConfigurableResource):
    """Files inside asset folders: neuroglancer configs, segmentation channels, trainer state."""

    root: str = Field(description="Root that asset locations (s3://aind-open-data/<name>) resolve against.")

    def store(self) -> OpenDataStore:
        """The store; an error saying what to set when its root does not exist."""
        fs, path = filesystem_for(self.root)
        try:
            missing = fs.get_file_info(path).type == pafs.FileType.NotFound
        except OSError as error:
            raise RuntimeError(
                f"open-data store {self.root} cannot be reached ({_first_line(error)}): "
                f"set BIODATA_OPEN_DATA_ROOT to the folder or s3:// prefix holding the asset folders"
            ) from error
        if missing:
            raise RuntimeError(
                f"open-data store {self.root} does not exist: "
                f"set BIODATA_OPEN_DATA_ROOT to the folder or s3:// prefix holding the asset folders"
            )
        return OpenDataStore(self.root)


class ForagingSessionsResource(ConfigurableResource):
    """The session table of aind-dynamic-foraging-database (a parquet file)."""

    path: str = Field(description="Local path or s3:// URI of the session table parquet file.")

    def read(self) -> pa.Table:
        fs, path = filesystem_for(self.path)
        try:
            with fs.open_input_file(path) as file:  # one file: no pyarrow.dataset (storage._read_parquet)
                return pq.ParquetFile(file).read()
        except (OSError, pa.ArrowInvalid) as error:
            reason = "no such file" if isinstance(error, FileNotFoundError) else _first_line(error)
            raise RuntimeError(
                f"foraging session table {self.path} could not be read ({reason}): set BIODATA_FORAGING_SESSIONS "
                f"to the session table (parquet) of aind-dynamic-foraging-database"
            ) from error


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
