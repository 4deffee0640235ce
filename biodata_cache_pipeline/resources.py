"""Dagster resources: where records, open-data files and foraging sessions come from.

Each resource is a thin, configurable wrapper over a pure source in `sources/`; the same table
code runs whatever implementation is plugged in.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from aind_data_access_api.document_db import MetadataDbClient
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from biodata_cache_pipeline.records import NormalizedRecord
from biodata_cache_pipeline.sources import docdb
from biodata_cache_pipeline.sources.local_folder import LocalFolderRecords
from biodata_cache_pipeline.sources.record_store import RecordStore
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.storage import filesystem_for
from biodata_cache_pipeline.tables.unique_values import UNIQUE_VALUE_TABLES


class RecordsResource(ConfigurableResource):
    """Metadata records, normalised; `source` names where they come from (the build manifest).

    `fields` are the dotted record paths a caller reads (1.x fallbacks included): a remote
    source fetches only those, a local one may read whole records.
    """

    @property
    @abstractmethod
    def source(self) -> str: ...

    @abstractmethod
    def records(self, fields: Sequence[str] | None = None) -> Iterator[NormalizedRecord]:
        """Every record."""

    def records_named(self, names: Iterable[str], fields: Sequence[str] | None = None) -> Iterator[NormalizedRecord]:
        """The records whose `name` is one of `names`."""
        wanted = set(names)
        return (record for record in self.records(fields) if record.name in wanted)

    def distinct(self, attribute: str, fields: Sequence[str]) -> list:
        """Sorted distinct non-null values of `NormalizedRecord.<attribute>`, read from `fields`."""
        values = {getattr(record, attribute) for record in self.records(fields)}
        return sorted(v for v in values if v is not None)


class LocalRecordsResource(RecordsResource):
    """Metadata records read from a folder of data-asset folders (the embedded default).

    Reads whole records: `fields` only matters to remote sources. Within a run each asset folder
    is parsed at most once: the first table to read the records takes a snapshot into a record
    store (see `sources/record_store.py`) and the other tables of the run read that snapshot.
    With `record_store` set, the store is kept between runs and only folders whose files changed
    are parsed again; otherwise it is a temporary folder of the process.
    """

    root: str = Field(description="Folder (or s3:// prefix) holding one folder per data asset.")
    record_store: str | None = Field(
        default=None,
        description="Folder keeping parsed records between runs (BIODATA_RECORD_STORE); default: a "
        "temporary folder of the process, so a new process parses every folder once.",
    )
    _source: LocalFolderRecords | None = PrivateAttr(default=None)
    _distinct: dict[str, list] = PrivateAttr(default_factory=dict)  # attribute -> values, this run

    @property
    def source(self) -> str:
        return self.root

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # One snapshot per run: a new source (and store connection) for each run.
        self._source = LocalFolderRecords(self.root, store=RecordStore(self.record_store or _temporary_folder(), self.root))
        self._distinct = {}

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._source is not None and self._source.store is not None:
            self._source.store.close()
        self._source = None
        self._distinct = {}

    def records(self, fields: Sequence[str] | None = None) -> Iterator[NormalizedRecord]:
        # Outside a run (a direct call), every call reads the folders afresh.
        source = self._source if self._source is not None else LocalFolderRecords(self.root)
        return source.records()

    def distinct(self, attribute: str, fields: Sequence[str]) -> list:
        # Within a run, one pass over the snapshot gives the values of every unique_* table.
        if self._source is None:
            return super().distinct(attribute, fields)
        if attribute not in self._distinct:
            seen: dict[str, set] = {name: set() for _, name, _ in UNIQUE_VALUE_TABLES}
            seen.setdefault(attribute, set())
            for record in self._source.records():
                for name, values in seen.items():
                    values.add(getattr(record, name))
            self._distinct.update({name: sorted(v for v in values if v is not None) for name, values in seen.items()})
        return self._distinct[attribute]


_TEMPORARY: list[str] = []


def _temporary_folder() -> str:
    """A record-store folder for this process, removed when it exits."""
    if not _TEMPORARY:
        _TEMPORARY.append(tempfile.mkdtemp(prefix="biodata-records-"))
        atexit.register(shutil.rmtree, _TEMPORARY[0], True)
    return _TEMPORARY[0]


class DocDbRecordsResource(RecordsResource):
    """Metadata records from DocDB through aind-data-access-api's MetadataDbClient (production).

    Projections, `_id`-sorted paging, `$in` batches of names, an aggregation for distinct values;
    connection errors, timeouts, 429 and 5xx are retried with exponential backoff, and a
    persistent failure fails the asset (nothing is published).
    """

    host: str = Field(default=docdb.DEFAULT_HOST, description="DocDB REST API host (https://<host>/...).")
    database: str = Field(default=docdb.DEFAULT_DATABASE, description="DocDB database.")
    collection: str = Field(default=docdb.DEFAULT_COLLECTION, description="DocDB collection.")
    version: str = Field(default=docdb.DEFAULT_VERSION, description="REST API version (v2: 2.x records).")
    page_size: int = Field(default=docdb.DEFAULT_PAGE_SIZE, description="Documents asked for per find request.")
    batch_size: int = Field(default=docdb.DEFAULT_BATCH_SIZE, description="Names per $in request.")
    retry_attempts: int = Field(default=5, description="Attempts per request before the asset fails.")
    retry_delay: float = Field(default=1.0, description="Seconds before the first retry; doubles each time, at most 30.")
    timeout: float = Field(default=docdb.DEFAULT_TIMEOUT, description="Seconds a request may take.")
    loopback_port: int | None = Field(
        default=None,
        description="Tests and demos only: send the requests to the DocDB stand-in on http://127.0.0.1:<port>/.",
    )

    @property
    def source(self) -> str:
        return f"https://{self.host}/{self.version}/{self.database}/{self.collection}"

    def _records(self, read):
        """Runs `read(DocDbRecords)` on a fresh client and closes its session once consumed."""
        session = docdb.docdb_session(self.host, self.timeout, self.loopback_port)
        client = MetadataDbClient(self.host, self.database, self.collection, self.version, session=session)
        with client:
            yield from read(
                docdb.DocDbRecords(
                    client,
                    page_size=self.page_size,
                    batch_size=self.batch_size,
                    retry=docdb.RetryPolicy(attempts=self.retry_attempts, delay=self.retry_delay),
                )
            )

    def records(self, fields: Sequence[str] | None = None) -> Iterator[NormalizedRecord]:
        return self._records(lambda source: source.records(fields))

    def records_named(self, names: Iterable[str], fields: Sequence[str] | None = None) -> Iterator[NormalizedRecord]:
        names = list(names)
        return self._records(lambda source: source.records_named(names, fields))

    def distinct(self, attribute: str, fields: Sequence[str]) -> list:
        return list(self._records(lambda source: source.distinct(attribute, fields)))


class OpenDataResource(ConfigurableResource):
    """Files inside asset folders: neuroglancer configs, segmentation channels, trainer state."""

    root: str = Field(description="Root that asset locations (s3://aind-open-data/<name>) resolve against.")

    def store(self) -> OpenDataStore:
        return OpenDataStore(self.root)


class ForagingSessionsResource(ConfigurableResource):
    """The session table of aind-dynamic-foraging-database (a parquet file)."""

    path: str = Field(description="Local path or s3:// URI of the session table parquet file.")

    def read(self) -> pa.Table:
        fs, path = filesystem_for(self.path)
        try:
            return pq.read_table(path, filesystem=fs)
        except (OSError, pa.ArrowInvalid) as error:
            raise RuntimeError(f"foraging session table {self.path} could not be read: {error}") from error
