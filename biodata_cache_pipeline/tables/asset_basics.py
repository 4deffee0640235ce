"""asset_basics: one row per record with the basics every notebook starts from."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from functools import lru_cache

import pyarrow as pa

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.names import (
    apply_name_map,
    first_name_map,
    normalize_instrument_id,
    parse_people,
    resolve_first_names,
)
from biodata_cache_pipeline.records import NormalizedRecord, date_prefix, is_usable, parse_utc


# The record paths asset_basics reads (its DocDB projection), 1.x fallbacks included.
ASSET_BASICS_FIELDS = (
    "_id", "name", "location", "_last_modified", "last_modified",
    "data_description.modalities", "data_description.modality", "data_description.project_name",
    "data_description.data_level", "data_description.investigators",
    "subject.subject_id", "subject.subject_details.genotype", "subject.genotype",
    "subject.subject_details.date_of_birth", "subject.date_of_birth",
    "subject.subject_details.year_of_birth", "subject.year_of_birth", "acquisition.subject_details.date_of_birth",
    "acquisition.acquisition_start_time", "session.session_start_time", "acquisition.session_start_time",
    "acquisition.acquisition_end_time", "session.session_end_time", "acquisition.session_end_time",
    "acquisition.acquisition_type", "session.session_type", "acquisition.session_type",
    "acquisition.instrument_id", "session.rig_id", "rig.rig_id",
    "acquisition.experimenters", "session.experimenter_full_name", "acquisition.experimenter_full_name",
    "other_identifiers", "external_links",
    "processing.data_processes.start_date_time", "processing.processing_pipeline.data_processes.start_date_time",
)
# The `NormalizedRecord` attributes it reads (its record snapshot columns).
ASSET_BASICS_ATTRIBUTES = (
    "id", "name", "location", "last_modified", "modalities", "project_name", "data_level", "investigators",
    "subject_id", "genotype", "date_of_birth", "acquisition_date_of_birth", "year_of_birth",
    "acquisition_start_time", "acquisition_end_time", "acquisition_type", "instrument_id", "experimenters",
    "code_ocean", "process_times",
)


def age_in_days(record: NormalizedRecord) -> int | None:
    """Whole days from birth (date, else acquisition date, else Jan 1 of year) to acquisition start."""
    birth = parse_utc(record.date_of_birth) or parse_utc(record.acquisition_date_of_birth)
    if birth is None and record.year_of_birth is not None and 1 <= record.year_of_birth <= 9999:
        birth = datetime(record.year_of_birth, 1, 1, tzinfo=timezone.utc)
    start = parse_utc(record.acquisition_start_time)
    if birth is None or start is None:
        return None
    return (start - birth).days


def last_process_date(record: NormalizedRecord) -> str | None:
    """The date of the last process start that has one."""
    for start, _ in reversed(record.process_times):
        if prefix := date_prefix(start):
            return prefix
    return None


@lru_cache(maxsize=4_096)
def _people(names: tuple[str, ...]) -> tuple[str, ...]:
    """A record's experimenters or investigators, normalised: each distinct list is worked out once."""
    return tuple(resolve_first_names(parse_people(names)))


def _row(record: NormalizedRecord) -> dict:
    return {
        "_id": record.id,
        "_last_modified": record.last_modified,
        "modalities": record.modalities,
        "project_name": record.project_name,
        "data_level": record.data_level,
        "subject_id": record.subject_id,
        "acquisition_start_time": record.acquisition_start_time,
        "acquisition_end_time": record.acquisition_end_time,
        "code_ocean": record.code_ocean,
        "process_date": last_process_date(record),
        "genotype": record.genotype,
        "age": age_in_days(record),
        "acquisition_type": record.acquisition_type,
        "location": record.location,
        "name": record.name,
        "experimenters": record.experimenters,
        "experimenters_normalized": list(_people(tuple(record.experimenters))),
        "instrument_id": record.instrument_id,
        "instrument_id_normalized": normalize_instrument_id(record.instrument_id),
        "investigators": record.investigators,
        "investigators_normalized": list(_people(tuple(record.investigators))),
    }


def _sort_key(row: dict) -> tuple:
    return (row["name"] is None, row["name"] or "", row["_id"] is None, row["_id"] or "")


def build_asset_basics(records: Iterable[NormalizedRecord]) -> pa.Table:
    rows = sorted((_row(r) for r in records if is_usable(r)), key=_sort_key)
    people = ("experimenters_normalized", "investigators_normalized")
    mapping = first_name_map(name for row in rows for column in people for name in row[column])
    if mapping:
        for row in rows:
            for column in people:
                row[column] = apply_name_map(row[column], mapping)
    return ASSET_BASICS.from_rows(rows)
