"""platform_fib: fiber photometry layout, one row per (asset, fiber, patch cord, channel)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from biodata_cache_client.schema.platform_fib import PLATFORM_FIB
from biodata_cache_pipeline.records import NormalizedRecord


# The record paths platform_fib reads (its DocDB projection), 1.x fallbacks included.
PLATFORM_FIB_FIELDS = (
    "name", "data_description.modalities", "data_description.modality",
    "procedures.subject_procedures.procedures.object_type",
    "procedures.subject_procedures.procedures.implanted_device.name",
    "procedures.subject_procedures.procedures.device_config.primary_targeted_structure.acronym",
    "acquisition.data_streams.connections.source_device", "acquisition.data_streams.connections.target_device",
    "acquisition.data_streams.configurations.object_type", "acquisition.data_streams.configurations.device_name",
    "acquisition.data_streams.configurations.channels.channel_name",
    "acquisition.data_streams.configurations.channels.intended_measurement",
)
PLATFORM_FIB_ATTRIBUTES = ("name", "modalities", "probe_implants", "data_streams")  # its record snapshot columns

MISSING = "missing"


def fiber_name(name: str) -> str:
    return name.replace("_", " ")


def fib_rows(record: NormalizedRecord) -> list[dict]:
    structures = {
        fiber_name(fiber): acronym if acronym and acronym != "root" else MISSING
        for fiber, acronym in record.probe_implants
        if fiber
    }
    rows = []
    for stream in record.data_streams:
        fiber_by_patch_cord = {
            source: fiber_name(target)
            for source, target in stream.connections
            if isinstance(source, str) and isinstance(target, str) and fiber_name(target) in structures
        }
        for config in stream.patch_cords:
            fiber = fiber_by_patch_cord.get(config.patch_cord)
            if fiber is None:
                continue
            for channel, measurement in config.channels:
                if measurement == "None":
                    continue
                rows.append(
                    {
                        "asset_name": record.name,
                        "fiber": fiber,
                        "patch_cord": config.patch_cord,
                        "channel": channel if isinstance(channel, str) else MISSING,
                        "intended_measurement": measurement if isinstance(measurement, str) else MISSING,
                        "targeted_structure": structures[fiber],
                    }
                )
    return rows


def build_platform_fib(records: Iterable[NormalizedRecord]) -> pa.Table:
    rows = [
        row
        for record in records
        if record.name is not None and "fib" in (m.lower() for m in record.modalities)
        for row in fib_rows(record)
    ]
    rows.sort(key=lambda row: (row["asset_name"], row["fiber"], row["patch_cord"], row["channel"]))
    return PLATFORM_FIB.from_rows(rows)
