"""platform_qc: QC statuses per tag of each platform's assets, partitioned by platform (its declaration)."""

from biodata_cache_client.schema.declaration import STRING, STRING_LIST, Column, TableSpec
from biodata_cache_client.schema.quality_control import QC_STATUSES

PLATFORM_QC = TableSpec(
    name="platform_qc",
    description="QC statuses per tag for the assets of each platform, partitioned by platform.",
    type="platform",
    folder="platform_qc",
    partition_key="platform",
    static_partitions=("spim", "fib", "vr", "dynamic_foraging", "slap2"),
    columns=(
        Column("asset_name", STRING, "Asset name."),
        Column("tag", STRING, "Key of quality_control.status: a 'key:value' tag or a modality."),
        Column("status", STRING, "Status of that key: Pass, Pending or Fail.", categories=QC_STATUSES),
        Column("timestamp", STRING, "Acquisition start time, raw string."),
        Column("instrument_id_normalized", STRING, "Normalised instrument id (from asset_basics)."),
        Column("experimenters_normalized", STRING_LIST, "Normalised experimenters (from asset_basics)."),
    ),
)
