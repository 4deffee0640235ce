"""source_data: one row per (derived asset, source asset), the lineage table (its declaration)."""

from biodata_cache_client.schema.declaration import STRING, Column, TableSpec

SOURCE_DATA = TableSpec(
    name="source_data",
    description="Derived assets and the assets they were made from (data_description.source_data).",
    type="asset",
    columns=(
        Column("name", STRING, "Derived asset name."),
        Column("source_data", STRING, "Name of a source asset; empty string when none is listed."),
        Column("pipeline_name", STRING, "processing.pipelines[0].name, or empty string."),
        Column("processing_time", STRING, "YYYY-MM-DD_HH-MM-SS at the end of the name, or empty string."),
    ),
)
