"""Environment selection in one place: which resources the pipeline runs with.

The embedded default reads a local sample folder (made by `biodata-cache-sample`) and writes a
local cache folder, so the whole pipeline runs on a fresh machine without credentials.
Environment variables:
- `BIODATA_SAMPLE_ROOT`: folder of data-asset folders, also the open-data store (default `.biodata-sample`)
- `BIODATA_FORAGING_SESSIONS`: session table parquet (default `<sample root>/_foraging/session_table.parquet`)
- `BIODATA_CACHE_ROOT`: cache root, a local folder or `s3://bucket/prefix` (default `.biodata-cache`)
"""

from __future__ import annotations

import os
from pathlib import Path

from biodata_cache_pipeline.io_manager import CacheIOManager
from biodata_cache_pipeline.resources import ForagingSessionsResource, LocalRecordsResource, OpenDataResource

DEFAULT_SAMPLE_ROOT = ".biodata-sample"
DEFAULT_CACHE_ROOT = ".biodata-cache"
FORAGING_TABLE = "_foraging/session_table.parquet"


def _absolute(location: str) -> str:
    """Local paths become absolute (so runs and the UI agree); URIs are kept as they are."""
    return location if "://" in location else str(Path(location).resolve())


def sample_root() -> str:
    return _absolute(os.environ.get("BIODATA_SAMPLE_ROOT", DEFAULT_SAMPLE_ROOT))


def cache_root() -> str:
    return _absolute(os.environ.get("BIODATA_CACHE_ROOT", DEFAULT_CACHE_ROOT))


def local_resources() -> dict:
    samples = sample_root()
    foraging = os.environ.get("BIODATA_FORAGING_SESSIONS", f"{samples}/{FORAGING_TABLE}")
    return {
        "records": LocalRecordsResource(root=samples),
        "open_data": OpenDataResource(root=samples),
        "sessions": ForagingSessionsResource(path=_absolute(foraging)),
        "cache_io_manager": CacheIOManager(root=cache_root()),
    }
