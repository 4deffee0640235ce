"""The table declarations of the cache contract: what the pipeline writes and the client reads.

Each table is declared once, in the module named after it (`TableSpec`, see `declaration`); the
pipeline's build code for it is `biodata_cache_pipeline/tables/<table>.py`.
"""

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.assets_smartspim import ASSETS_SMARTSPIM
from biodata_cache_client.schema.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS
from biodata_cache_client.schema.platform_fib import PLATFORM_FIB
from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_client.schema.source_data import SOURCE_DATA
from biodata_cache_client.schema.unique_values import UNIQUE_GENOTYPES, UNIQUE_PROJECT_NAMES, UNIQUE_SUBJECT_IDS

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
