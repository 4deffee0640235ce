"""source_data: one row per (derived asset, source asset) — the lineage table."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa

from biodata_cache_client.schema.source_data import SOURCE_DATA
from biodata_cache_pipeline.records import NormalizedRecord

# The record paths source_data reads (its DocDB projection), 1.x fallbacks included.
SOURCE_DATA_FIELDS = (
    "name", "data_description.data_level", "data_description.source_data", "data_description.input_data_name",
    "processing.pipelines.name",
)
SOURCE_DATA_ATTRIBUTES = ("name", "data_level", "source_data", "pipeline_name")  # its record snapshot columns

_PROCESSING_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})$")


def processing_time(name: str) -> str:
    match = _PROCESSING_TIME.search(name)
    return match.group(1) if match else ""


def build_source_data(records: Iterable[NormalizedRecord]) -> pa.Table:
    rows = []
    for record in records:
        if record.data_level != "derived" or record.name is None:
            continue
        for source in record.source_data or [""]:
            rows.append(
                {
                    "name": record.name,
                    "source_data": source,
                    "pipeline_name": record.pipeline_name or "",
                    "processing_time": processing_time(record.name),
                }
            )
    rows.sort(key=lambda row: (row["name"], row["source_data"]))
    return SOURCE_DATA.from_rows(rows)
