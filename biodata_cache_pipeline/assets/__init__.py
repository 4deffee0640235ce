"""Dagster assets, one module per domain; each asset is a thin wrapper over a pure build function."""

from biodata_cache_pipeline.assets.metadata import (
    asset_basics,
    source_data,
    unique_genotypes,
    unique_project_names,
    unique_subject_ids,
)
from biodata_cache_pipeline.assets.platforms import (
    assets_smartspim,
    behavior_curriculum,
    foraging_sessions,
    platform_fib,
)
from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS, platform_qc, quality_control
from biodata_cache_pipeline.assets.snapshot import metadata_records, record_snapshot

ALL_ASSETS = [
    metadata_records,
    record_snapshot,
    unique_project_names,
    unique_subject_ids,
    unique_genotypes,
    asset_basics,
    source_data,
    quality_control,
    platform_qc,
    assets_smartspim,
    platform_fib,
    foraging_sessions,
    behavior_curriculum,
]

__all__ = ["ALL_ASSETS", "SUBJECT_PARTITIONS"]
