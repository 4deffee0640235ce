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

The functions below are imported on first use: importing a part of the package (the pipeline's
snapshot workers import the collector and the storage layer) does not import pandas and DuckDB.
"""

from importlib import import_module

# Exported name -> the module defining it.
_EXPORTS = {
    "BuildNotFoundError": "builds",
    "Settings": "config",
    "configure": "config",
    "current_settings": "config",
    "custom": "user_tables",
    "BuildDiff": "time_travel",
    "diff": "time_travel",
    "history": "time_travel",
    "provenance": "time_travel",
    "CacheReadError": "errors",
    "TableNotFoundError": "errors",
    "search": "asset_search",
    "search_count": "asset_search",
    "query": "sql",
    **{
        name: "tables"
        for name in (
            "asset_basics", "assets_smartspim", "behavior_curriculum", "cache_info", "foraging_sessions",
            "get_cache_registry", "get_cache_versions", "platform_fib", "platform_qc", "qc", "quality_control",
            "raw_to_derived", "read_table", "source_data", "unique_genotypes", "unique_project_names",
            "unique_subject_ids",
        )
    },
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
