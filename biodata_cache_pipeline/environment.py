"""Environment selection in one place: which resources the pipeline runs with.

`BIODATA_CACHE_ENV` picks the resource set (`pipeline_resources()`):
- `local` (default, the embedded default): records and open-data files from a local sample
  folder (made by `biodata-cache-sample`), the foraging table inside it, a local cache folder;
  runs on a fresh machine without credentials.
- `prod`: records from DocDB through aind-data-access-api, files from `s3://aind-open-data`
  (anonymous), the foraging session table at aind-dynamic-foraging-database's `SESSION_DB`, the
  cache on `s3://allen-data-views/data-asset-cache`. S3 endpoint, region and credentials come
  from the standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, boto3's credential chain);
  the cache's through the cache resource's `S3Resource` (`aws_settings.py`), whose unset fields do the same.
  With `BIODATA_SSM_PREFIX` set, DocDB host and collection and the cache root come from Parameter
  Store (`<prefix>/docdb_host`, `<prefix>/docdb_collection`, `<prefix>/cache_root`; the variables
  below override them when set and non-empty; see `aws_settings.py`).

Per-resource overrides, in either environment:
- `BIODATA_SAMPLE_ROOT`: the local records folder (local only; default `.biodata-sample`)
- `BIODATA_OPEN_DATA_ROOT`: the open-data store (default: the sample folder / `s3://aind-open-data`)
- `BIODATA_FORAGING_SESSIONS`: the session table (default `<sample root>/_foraging/session_table.parquet` / `SESSION_DB`)
- `BIODATA_POOL_WAIT_SECONDS`: how long `materialize` waits for a pool slot another live build holds
  (`stale_runs.py`; default 600)
- `BIODATA_CACHE_ROOT`: the cache root (default `.biodata-cache` / `s3://allen-data-views/data-asset-cache`)
- DocDB (prod), as Dagster `EnvVar`s resolved at run time: `BIODATA_DOCDB_HOST`, `BIODATA_DOCDB_DATABASE`,
  `BIODATA_DOCDB_COLLECTION`, `BIODATA_DOCDB_VERSION`, `BIODATA_DOCDB_PAGE_SIZE`, `BIODATA_DOCDB_BATCH_SIZE`,
  `BIODATA_DOCDB_RETRY_ATTEMPTS`, `BIODATA_DOCDB_LOOPBACK_PORT` (tests and demos: the DocDB stand-in);
  `BIODATA_DOCDB_RETRY_DELAY` (seconds, read when the definitions load).

Every resource's description (shown by `dagster dev`) names the active environment and where it
reads or writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aind_dynamic_foraging_database import SESSION_DB
from dagster import EnvVar

from biodata_cache_pipeline.aws_settings import SSM_PREFIX_VARIABLE, SettingsError, cache_s3_resource, stored_settings
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.io_manager import CacheIOManager
from biodata_cache_pipeline.number_settings import number_setting
from biodata_cache_pipeline.resources import (
    DocDbRecordsResource,
    ForagingSessionsResource,
    LocalRecordsResource,
    OpenDataResource,
)
from biodata_cache_pipeline.sources import docdb

ENVIRONMENTS = ("local", "prod")
DEFAULT_SAMPLE_ROOT = ".biodata-sample"
DEFAULT_CACHE_ROOT = ".biodata-cache"
FORAGING_TABLE = "_foraging/session_table.parquet"
PROD_OPEN_DATA_ROOT = "s3://aind-open-data"
PROD_CACHE_ROOT = "s3://allen-data-views/data-asset-cache"
PROD_FORAGING_SESSIONS = SESSION_DB
# DocDbRecordsResource field -> (environment variable, default); int fields are read as ints.
DOCDB_SETTINGS = {
    "host": ("BIODATA_DOCDB_HOST", docdb.DEFAULT_HOST),
    "database": ("BIODATA_DOCDB_DATABASE", docdb.DEFAULT_DATABASE),
    "collection": ("BIODATA_DOCDB_COLLECTION", docdb.DEFAULT_COLLECTION),
    "version": ("BIODATA_DOCDB_VERSION", docdb.DEFAULT_VERSION),
    "page_size": ("BIODATA_DOCDB_PAGE_SIZE", docdb.DEFAULT_PAGE_SIZE),
    "batch_size": ("BIODATA_DOCDB_BATCH_SIZE", docdb.DEFAULT_BATCH_SIZE),
    "retry_attempts": ("BIODATA_DOCDB_RETRY_ATTEMPTS", 5),
    "loopback_port": ("BIODATA_DOCDB_LOOPBACK_PORT", None),
}
DOCDB_RETRY_DELAY = "BIODATA_DOCDB_RETRY_DELAY"
_INT_FIELDS = ("page_size", "batch_size", "retry_attempts", "loopback_port")


def _absolute(location: str) -> str:
    """Local paths become absolute (so runs and the UI agree); URIs are kept as they are."""
    return location if "://" in location else str(Path(location).resolve())


def environment() -> str:
    """The active environment: `BIODATA_CACHE_ENV`, `local` when unset."""
    name = os.environ.get("BIODATA_CACHE_ENV", "").strip() or "local"
    if name not in ENVIRONMENTS:
        raise ValueError(f"BIODATA_CACHE_ENV={name!r} is not a known environment; use one of {', '.join(ENVIRONMENTS)}")
    return name


def sample_root() -> str:
    return _absolute(os.environ.get("BIODATA_SAMPLE_ROOT", DEFAULT_SAMPLE_ROOT))


def _setting(name: str, default: str) -> str:
    return _absolute(os.environ.get(name) or default)


def cache_root(stored: Mapping[str, str] | None = None) -> str:
    """`BIODATA_CACHE_ROOT`, else its value in `stored` (Parameter Store), else the environment's default."""
    default = PROD_CACHE_ROOT if environment() == "prod" else DEFAULT_CACHE_ROOT
    return _setting("BIODATA_CACHE_ROOT", (stored or {}).get("BIODATA_CACHE_ROOT", default))


def docdb_records(stored: Mapping[str, str] | None = None) -> DocDbRecordsResource:
    """The DocDB resource: each setting an `EnvVar` when its variable is set (non-empty), else its
    value in `stored` (Parameter Store), else the default."""
    config = {}
    for field, (variable, default) in DOCDB_SETTINGS.items():
        if os.environ.get(variable):
            config[field] = EnvVar.int(variable) if field in _INT_FIELDS else EnvVar(variable)
        elif stored and variable in stored:
            config[field] = stored[variable]
        elif default is not None:
            config[field] = default
    delay = number_setting(DOCDB_RETRY_DELAY, None, "seconds", "2")
    if delay is not None:
        config["retry_delay"] = delay
    return DocDbRecordsResource(**config)


def _docdb_description(stored: Mapping[str, str]) -> str:
    value = {
        field: os.environ.get(variable) or stored.get(variable, default)
        for field, (variable, default) in DOCDB_SETTINGS.items()
    }
    url = f"https://{value['host']}/{value['version']}/{value['database']}/{value['collection']}"
    text = f"metadata records from DocDB {url}"
    if value["loopback_port"]:
        text += f", served by the DocDB stand-in on 127.0.0.1:{value['loopback_port']}"
    return text


def _described(resource, text: str):
    """`resource` with `text` as its description: Dagster shows a resource's `__doc__` in the UI."""
    object.__setattr__(resource, "__doc__", f"[BIODATA_CACHE_ENV={environment()}] {text}")
    return resource


def pipeline_resources() -> dict:
    """The resources of the active environment, with the per-resource overrides applied (a
    `SettingsError` when a Parameter Store setting cannot be read)."""
    stored = {}
    if environment() == "prod":
        stored = stored_settings()
        records = _described(docdb_records(stored), _docdb_description(stored))
        open_data = _setting("BIODATA_OPEN_DATA_ROOT", PROD_OPEN_DATA_ROOT)
        sessions = _setting("BIODATA_FORAGING_SESSIONS", PROD_FORAGING_SESSIONS)
    else:
        if os.environ.get(SSM_PREFIX_VARIABLE, "").strip():
            raise SettingsError(
                f"{SSM_PREFIX_VARIABLE} is set but Parameter Store is read in prod only: set BIODATA_CACHE_ENV=prod"
            )
        samples = sample_root()
        records = _described(LocalRecordsResource(root=samples), f"metadata records from the asset folders in {samples}")
        open_data = _setting("BIODATA_OPEN_DATA_ROOT", samples)
        sessions = _setting("BIODATA_FORAGING_SESSIONS", f"{samples}/{FORAGING_TABLE}")
    root = cache_root(stored)
    cache = _described(CacheResource(root=root, s3=cache_s3_resource()), f"the cache published to {root}")
    return {
        "records": records,
        "open_data": _described(OpenDataResource(root=open_data), f"files inside asset folders, read from {open_data}"),
        "sessions": _described(ForagingSessionsResource(path=sessions), f"foraging session table, read from {sessions}"),
        "cache": cache,
        "cache_io_manager": _described(CacheIOManager(cache=cache), f"cache tables written to {root}"),
    }
