"""assets_smartspim: raw SmartSPIM assets, their latest stitched asset and viewer links (its declaration)."""

from biodata_cache_client.schema.declaration import BOOL, STRING, Column, TableSpec

ASSETS_SMARTSPIM = TableSpec(
    name="assets_smartspim",
    description="Raw SmartSPIM assets with their latest stitched asset, one row per channel, with Neuroglancer links.",
    type="platform",
    columns=(
        Column("name", STRING, "Latest stitched asset name, or the raw name when unprocessed."),
        Column("raw_name", STRING, "Raw SmartSPIM asset name."),
        Column("processed", BOOL, "Whether a stitched asset exists."),
        Column("institution", STRING, "Institution abbreviation of the stitched asset."),
        Column("processing_end_time", STRING, "end_date_time of the stitched asset's last data process."),
        Column("stitched_link", STRING, "Neuroglancer link to the stitched volume."),
        Column("raw_link", STRING, "ng_link of the raw asset's SPIM/derivatives neuroglancer config."),
        Column("channel", STRING, "Segmentation channel folder name."),
        Column("segmentation_link", STRING, "Neuroglancer link to the channel's cell segmentation."),
        Column("quantification_link", STRING, "Neuroglancer link to the channel's cell quantification."),
        Column("alignment_link", STRING, "Neuroglancer link to the atlas alignment."),
    ),
)
