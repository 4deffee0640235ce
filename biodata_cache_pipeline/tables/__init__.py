"""The eleven cache tables' pure build functions, one module per table (the declarations are the
client's contract, `biodata_cache_client.schema`)."""

from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS_FIELDS
from biodata_cache_pipeline.tables.assets_smartspim import ASSETS_SMARTSPIM_FIELDS
from biodata_cache_pipeline.tables.platform_fib import PLATFORM_FIB_FIELDS
from biodata_cache_pipeline.tables.platform_qc import PLATFORM_QC_FIELDS
from biodata_cache_pipeline.tables.quality_control import QUALITY_CONTROL_FIELDS
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA_FIELDS
from biodata_cache_pipeline.tables.unique_values import UNIQUE_VALUE_TABLES

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
