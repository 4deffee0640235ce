"""The eleven cache tables: pure build functions, each next to its declaration."""

from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.tables.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_pipeline.tables.declaration import TableSpec
from biodata_cache_pipeline.tables.fib import PLATFORM_FIB
from biodata_cache_pipeline.tables.foraging import FORAGING_SESSIONS
from biodata_cache_pipeline.tables.quality_control import PLATFORM_QC, QUALITY_CONTROL
from biodata_cache_pipeline.tables.smartspim import ASSETS_SMARTSPIM
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA
from biodata_cache_pipeline.tables.unique_values import UNIQUE_GENOTYPES, UNIQUE_PROJECT_NAMES, UNIQUE_SUBJECT_IDS

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        UNIQUE_PROJECT_NAMES,
        UNIQUE_SUBJECT_IDS,
        UNIQUE_GENOTYPES,
        ASSET_BASICS,
        SOURCE_DATA,
        QUALITY_CONTROL,
        PLATFORM_QC,
        ASSETS_SMARTSPIM,
        PLATFORM_FIB,
        FORAGING_SESSIONS,
        BEHAVIOR_CURRICULUM,
    )
}
