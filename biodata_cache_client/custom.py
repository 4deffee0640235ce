"""User tables: `custom(name)` reads and `custom(name, df)` writes `<version>/custom/<name>.pqt`.

Names must match `[A-Za-z0-9_-]{1,128}`, so a user table can never leave its folder, and the
folder is its own namespace (a built table is never overwritten). Writes go through the
pipeline's `CacheStore` with its deterministic parquet writer, atomically for readers. A local
or memory root is written directly; an S3 root needs AWS credentials (reads never do).
"""

from __future__ import annotations

import boto3
import pandas as pd
import pyarrow as pa

from biodata_cache_client.reader import current_reader
from biodata_cache_client.sources import root_uri
from biodata_cache_pipeline.storage import CUSTOM_TABLE_NAME, CacheStore


def custom(name: str, df: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Read the user table `name`, or (with `df`) write it, replacing any previous one."""
    if not isinstance(name, str) or not CUSTOM_TABLE_NAME.fullmatch(name):
        raise ValueError(f"custom table name {name!r} is not valid: use 1 to 128 of A-Z, a-z, 0-9, '_' and '-'")
    reader = current_reader()
    if df is None:
        return reader.read_custom(name).to_pandas()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"custom table {name}: expected a pandas DataFrame to write, got {type(df).__name__}")
    settings = reader.settings
    root = root_uri(settings.root)
    if settings.offline:
        raise RuntimeError(f"custom table {name}: cannot write to {root} while offline (configure(offline=False))")
    if root.startswith("s3://") and boto3.Session().get_credentials() is None:
        raise PermissionError(
            f"writing custom table {name} to {root} needs AWS credentials (reading does not): set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (e.g. after `aws sso login`)"
        )
    store = CacheStore(settings.root, version=reader.version())
    store.write_custom(name, pa.Table.from_pandas(df, preserve_index=False))
