"""asset_basics: one row per record with the basics every notebook starts from."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.names import (
    apply_name_map,
    first_name_map,
    normalize_instrument_id,
    parse_people,
    resolve_first_names,
)
from biodata_cache_pipeline.records import date_prefix, parse_utc
from biodata_cache_pipeline.snapshot import lists_of


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
# Table columns named otherwise in the snapshot, and the list columns a missing value makes empty.
STORED_AS = {"_id": "id", "_last_modified": "last_modified"}
NEVER_NULL_LISTS = ("modalities", "experimenters", "investigators")
AGE_INPUTS = ("date_of_birth", "acquisition_date_of_birth", "year_of_birth", "acquisition_start_time")


def age_in_days(
    date_of_birth: str | None, acquisition_date_of_birth: str | None, year_of_birth: int | None, start: str | None
) -> int | None:
    """Whole days from birth (date, else acquisition date, else Jan 1 of year) to acquisition start."""
    birth = parse_utc(date_of_birth) or parse_utc(acquisition_date_of_birth)
    if birth is None and year_of_birth is not None and 1 <= year_of_birth <= 9999:
        birth = datetime(year_of_birth, 1, 1, tzinfo=timezone.utc)
    started = parse_utc(start)
    if birth is None or started is None:
        return None
    return (started - birth).days


def last_process_date(starts: list[str | None]) -> str | None:
    """The date of the last process start that has one."""
    for start in reversed(starts):
        if prefix := date_prefix(start):
            return prefix
    return None


@lru_cache(maxsize=4_096)
def _people(names: tuple[str, ...]) -> tuple[str, ...]:
    """A record's experimenters or investigators, normalised: each distinct list is worked out once."""
    return tuple(resolve_first_names(parse_people(names)))


def _never_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A list column with its null lists made empty (a record's lists are never missing)."""
    return pc.if_else(pc.is_valid(column), column, pa.scalar([], column.type))


def build_asset_basics(rows: pa.Table) -> pa.Table:
    """The table from record snapshot rows (`ASSET_BASICS_ATTRIBUTES`): a row per usable record,
    sorted by name then `_id` (missing ones last). Columns read as stored are taken as they are;
    the others are worked out from their inputs' values alone."""
    rows = rows.filter(pc.or_(pc.is_valid(rows.column("name")), pc.is_valid(rows.column("id"))))
    rows = rows.take(pc.sort_indices(rows, [("name", "ascending", "at_end"), ("id", "ascending", "at_end")]))
    rows = rows.combine_chunks()
    values = {name: rows.column(name).to_pylist() for name in AGE_INPUTS + ("instrument_id",)}
    people = {
        name: [list(_people(tuple(names or []))) for names in rows.column(name).to_pylist()]
        for name in ("experimenters", "investigators")
    }
    mapping = first_name_map(name for names in people.values() for row in names for name in row)
    if mapping:
        people = {column: [apply_name_map(names, mapping) for names in lists] for column, lists in people.items()}
    starts = lists_of(rows.column("process_times").combine_chunks(), lambda times: times.field("start").to_pylist())
    derived = {
        "process_date": [last_process_date(row or []) for row in starts],
        "age": [age_in_days(*inputs) for inputs in zip(*(values[name] for name in AGE_INPUTS))],
        "experimenters_normalized": people["experimenters"],
        "instrument_id_normalized": [normalize_instrument_id(value) for value in values["instrument_id"]],
        "investigators_normalized": people["investigators"],
    }
    columns = {}
    for column in ASSET_BASICS.columns:
        if column.name in derived:
            columns[column.name] = pa.array(derived[column.name], column.type)
        else:
            stored = rows.column(STORED_AS.get(column.name, column.name))
            columns[column.name] = _never_null(stored) if column.name in NEVER_NULL_LISTS else stored
    return pa.Table.from_arrays([columns[c] for c in ASSET_BASICS.column_names], schema=ASSET_BASICS.schema)
