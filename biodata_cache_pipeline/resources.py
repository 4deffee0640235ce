"""Dagster resources: where records, open-data files and foraging sessions come from.

Each resource is a thin, configurable wrapper over a pure source in `sources/`; the same table
code runs whatever implementation is plugged in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import ConfigurableResource
from pydantic import Field

from biodata_cache_pipeline.records import NormalizedRecord
from biodata_cache_pipeline.sources.local_folder import LocalFolderRecords
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.storage import filesystem_for


class LocalRecordsResource(ConfigurableResource):
    """Metadata records read from a folder of data-asset folders (the embedded default)."""

    root: str = Field(description="Folder (or s3:// prefix) holding one folder per data asset.")

    @property
    def source(self) -> str:
        return self.root

    def records(self) -> Iterator[NormalizedRecord]:
        return LocalFolderRecords(self.root).records()


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
