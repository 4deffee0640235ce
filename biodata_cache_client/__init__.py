"""biodata_cache_client: one-line reads of the biodata cache from notebooks, SQL and a CLI.

It reads what the pipeline published and never builds tables (no Dagster import anywhere). It
holds the contract both sides follow (`schema`: the table declarations, `layout`: every path and
encoding, `storage`: local, S3 and memory backends) and imports nothing from the pipeline.
Where it reads from is set by environment variables or `configure(...)` (see `config`).

    import biodata_cache_client as bdc
    bdc.asset_basics(columns=["name", "subject_id"], filters=[("data_level", "=", "raw")])
    bdc.qc("828418")
    bdc.search(subject_id="828418", modality="SPIM", qc_status="Pending", as_="polars")
    bdc.query("select platform, status, count(*) from platform_qc group by all")
    bdc.history("asset_basics"); bdc.asset_basics(as_of="2026-11-30"); bdc.provenance()
"""

from biodata_cache_client.builds import BuildNotFoundError
from biodata_cache_client.config import Settings, configure, current_settings
from biodata_cache_client.custom import custom
from biodata_cache_client.history import BuildDiff, diff, history, provenance
from biodata_cache_client.reader import CacheReadError, TableNotFoundError
from biodata_cache_client.search import search, search_count
from biodata_cache_client.sql import query
from biodata_cache_client.tables import (
    asset_basics,
    assets_smartspim,
    behavior_curriculum,
    cache_info,
    foraging_sessions,
    get_cache_registry,
    get_cache_versions,
    platform_fib,
    platform_qc,
    qc,
    quality_control,
    raw_to_derived,
    read_table,
    source_data,
    unique_genotypes,
    unique_project_names,
    unique_subject_ids,
)

__all__ = [
    "BuildDiff",
    "BuildNotFoundError",
    "CacheReadError",
    "Settings",
    "TableNotFoundError",
    "asset_basics",
    "assets_smartspim",
    "behavior_curriculum",
    "cache_info",
    "configure",
    "current_settings",
    "custom",
    "diff",
    "foraging_sessions",
    "get_cache_registry",
    "get_cache_versions",
    "history",
    "platform_fib",
    "platform_qc",
    "provenance",
    "qc",
    "quality_control",
    "query",
    "raw_to_derived",
    "read_table",
    "search",
    "search_count",
    "source_data",
    "unique_genotypes",
    "unique_project_names",
    "unique_subject_ids",
]
