"""asset_basics: one row per record with the basics every notebook starts from."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache

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
PEOPLE_TYPE = ASSET_BASICS.schema.field("experimenters_normalized").type
BIRTH_INPUTS = ("date_of_birth", "acquisition_date_of_birth", "year_of_birth")


def birth_time(
    date_of_birth: str | None, acquisition_date_of_birth: str | None, year_of_birth: int | None
) -> datetime | None:
    """The subject's birth: its date, else the acquisition's date, else Jan 1 of its year."""
    birth = parse_utc(date_of_birth) or parse_utc(acquisition_date_of_birth)
    if birth is None and year_of_birth is not None and 1 <= year_of_birth <= 9999:
        birth = datetime(year_of_birth, 1, 1, tzinfo=timezone.utc)
    return birth


def age_in_days(birth: datetime | None, start: str | None) -> int | None:
    """Whole days from birth to acquisition start."""
    started = parse_utc(start) if birth is not None else None
    return None if started is None else (started - birth).days


def last_process_dates(process_times: pa.ChunkedArray) -> list[str | None]:
    """Per row, the date of its last process start that has one (None when none has). Each row's
    last start is read first; the earlier ones only when it has no date (rare)."""
    lists = process_times.combine_chunks()
    rows = pc.indices_nonzero(pc.fill_null(pc.greater(pc.list_value_length(lists), 0), False))
    lists = lists.take(rows)  # the rows with starts, and nothing else: their starts line up when flattened
    starts = lists.flatten().field("start")
    ends = pc.cumulative_sum(pc.list_value_length(lists)).to_pylist()  # past each row's last start
    dates: list[str | None] = [None] * len(process_times)
    lasts = pc.take(starts, pc.subtract(ends, 1)).to_pylist()
    for row, first, end, last in zip(rows.to_pylist(), [0, *ends], ends, lasts):
        dates[row] = date_prefix(last)
        if dates[row] is None:
            earlier = reversed(starts.slice(first, end - 1 - first).to_pylist())
            dates[row] = next(filter(None, map(date_prefix, earlier)), None)
    return dates


def _distinct_lists(column: pa.ChunkedArray) -> tuple[list[tuple], pa.Array]:
    """The distinct lists of a list column (a null list counts as empty) and, per row, the index
    of its list among them: few distinct lists, each worked out once."""
    index: dict[tuple, int] = {}
    rows = [index.setdefault(tuple(names or ()), len(index)) for names in column.to_pylist()]
    return list(index), pa.array(rows, pa.int32())


def _normalised_people(columns: dict[str, pa.ChunkedArray]) -> dict[str, pa.Array]:
    """Each people column normalised (`parse_people`, `resolve_first_names`), then with the
    table-wide first-name map of all of them applied."""
    distinct = {name: _distinct_lists(column) for name, column in columns.items()}
    people = {name: [resolve_first_names(parse_people(names)) for names in distinct[name][0]] for name in distinct}
    mapping = first_name_map(person for lists in people.values() for names in lists for person in names)
    if mapping:
        people = {name: [apply_name_map(names, mapping) for names in lists] for name, lists in people.items()}
    return {name: pa.array(people[name], PEOPLE_TYPE).take(rows) for name, (_, rows) in distinct.items()}


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
    # Few distinct values (a birth per subject, nearly): each is worked out once.
    births = list(map(cache(birth_time), *(rows.column(name).to_pylist() for name in BIRTH_INPUTS)))
    people = _normalised_people({name: rows.column(name) for name in ("experimenters", "investigators")})
    derived = {
        "process_date": last_process_dates(rows.column("process_times")),
        "age": list(map(age_in_days, births, rows.column("acquisition_start_time").to_pylist())),
        "experimenters_normalized": people["experimenters"],
        "instrument_id_normalized": list(map(cache(normalize_instrument_id), rows.column("instrument_id").to_pylist())),
        "investigators_normalized": people["investigators"],
    }
    columns = {}
    for column in ASSET_BASICS.columns:
        if column.name in derived:
            value = derived[column.name]
            columns[column.name] = value if isinstance(value, pa.Array) else pa.array(value, column.type)
        else:
            stored = rows.column(STORED_AS.get(column.name, column.name))
            columns[column.name] = _never_null(stored) if column.name in NEVER_NULL_LISTS else stored
    return pa.Table.from_arrays([columns[c] for c in ASSET_BASICS.column_names], schema=ASSET_BASICS.schema)
