"""The eleven cache tables: pure build functions, each next to its declaration."""

from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS, ASSET_BASICS_FIELDS
from biodata_cache_pipeline.tables.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_pipeline.tables.declaration import TableSpec
from biodata_cache_pipeline.tables.fib import PLATFORM_FIB, PLATFORM_FIB_FIELDS
from biodata_cache_pipeline.tables.foraging import FORAGING_SESSIONS
from biodata_cache_pipeline.tables.quality_control import (
    PLATFORM_QC,
    PLATFORM_QC_FIELDS,
    QUALITY_CONTROL,
    QUALITY_CONTROL_FIELDS,
)
from biodata_cache_pipeline.tables.smartspim import ASSETS_SMARTSPIM, ASSETS_SMARTSPIM_FIELDS
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA, SOURCE_DATA_FIELDS
from biodata_cache_pipeline.tables.unique_values import (
    UNIQUE_GENOTYPES,
    UNIQUE_PROJECT_NAMES,
    UNIQUE_SUBJECT_IDS,
    UNIQUE_VALUE_TABLES,
)

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

# Every record path a table reads: what the record snapshot fetches from DocDB (its projection).
RECORD_FIELDS: tuple[str, ...] = tuple(
    sorted(
        {
            *ASSET_BASICS_FIELDS,
            *SOURCE_DATA_FIELDS,
            *QUALITY_CONTROL_FIELDS,
            *PLATFORM_QC_FIELDS,
            *ASSETS_SMARTSPIM_FIELDS,
            *PLATFORM_FIB_FIELDS,
            *(field for _, _, fields in UNIQUE_VALUE_TABLES for field in fields),
        }
    )
)
