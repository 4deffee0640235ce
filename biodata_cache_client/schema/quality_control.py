"""quality_control: one row per QC metric, partitioned by subject (its declaration)."""

from biodata_cache_client.schema.declaration import STRING, UTC_TIMESTAMP, Column, TableSpec

# QC statuses in their order: the worst of an asset's metrics (`max()`) is its overall status.
QC_STATUSES = ("Pass", "Pending", "Fail")

QUALITY_CONTROL = TableSpec(
    name="quality_control",
    description="One row per QC metric of every record, partitioned by subject.",
    type="asset",
    folder="qc",
    partition_key="subject_id",
    columns=(
        Column("name", STRING, "Metric name."),
        Column("modality", STRING, "Modality abbreviation of the metric."),
        Column("stage", STRING, "QC stage, as stored (e.g. Raw data, Processing)."),
        Column("value", STRING, "Metric value as text; objects become the literal '{dict}'."),
        Column(
            "status",
            STRING,
            "Latest status from the status history: Pass, Pending or Fail.",
            previous_names=("status_history",),
            categories=QC_STATUSES,
        ),
        Column("asset_name", STRING, "Name of the record the metric belongs to."),
        Column("subject_id", STRING, "Subject id (the partition key)."),
        Column("timestamp", UTC_TIMESTAMP, "Acquisition start time in UTC."),
    ),
)
