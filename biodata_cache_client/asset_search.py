"""`search(...)`: the asset_basics rows matching every filter given, one page at a time, by DuckDB.

    bdc.search(subject_id="600015", modality="fib", acquired_after="2025-03-01", limit=20)
    bdc.search(qc_status="Pending").attrs["total"]     # matches over all pages
    bdc.search_count(project_name="Cognitive flexibility in patch foraging")

Filters (all optional, combined with AND; `None` means "no filter"):
- `subject_id`, `project_name`, `data_level`: equal to the value (a subject id may be an int);
- `modality`: one of the asset's modalities, compared case-insensitively (`"spim"` finds `SPIM`);
- `name_contains`: a substring of the asset name, case-insensitive;
- `acquired_after` (inclusive), `acquired_before` (exclusive): a date, a datetime or an ISO string,
  compared with the acquisition start time; naive times are UTC, a date is its midnight UTC;
  assets whose start time is missing or not a time never match these two;
- `qc_status`: `"Pass"`, `"Pending"` or `"Fail"`: assets whose worst QC metric status (in
  quality_control, Pass < Pending < Fail; metrics without a status ignored; any other status is
  worse than Fail, as in the frames) is at most this one; assets without any QC status never match.

Rows come ordered by acquisition start time (unparsable last), then name, then `_id`; `limit`
(None: all) and `offset` select the page. `search` returns the page as `as_` (pandas by default,
with the number of matches over all pages in `frame.attrs["total"]`); `search_count` gives that
number alone, for any `as_`.

The statement is made only of the fixed clauses below, one per filter given; every value is a
DuckDB bound parameter, so a value is always data, never SQL. Only asset_basics is read, and the
`asset_name` and `status` of quality_control only when `qc_status` is given (only the subject's
partition when `subject_id` is given too).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone

import duckdb
import pandas as pd

from biodata_cache_client.formats import Rows, check_format, table_as
from biodata_cache_client.reader import current_reader, table_spec
from biodata_cache_client.schema.quality_control import QC_STATUSES

STARTED_AT = "try_cast(acquisition_start_time AS TIMESTAMPTZ)"
CLAUSES = {
    "subject_id": "subject_id = $subject_id",
    "project_name": "project_name = $project_name",
    "modality": "list_contains(list_transform(modalities, lambda m: lower(m)), lower($modality))",
    "data_level": "data_level = $data_level",
    "name_contains": "contains(lower(name), lower($name_contains))",
    "acquired_after": f"{STARTED_AT} >= $acquired_after",
    "acquired_before": f"{STARTED_AT} < $acquired_before",
    "qc_status": (
        "name IN (SELECT asset_name FROM quality_control WHERE status IS NOT NULL "
        "GROUP BY asset_name HAVING bool_and(list_contains($qc_status, status)))"
    ),
}
SEARCH_FILTERS = tuple(CLAUSES)
# The asset_basics columns each filter reads (search_count reads only these).
FILTER_COLUMNS = {
    "modality": "modalities",
    "name_contains": "name",
    "acquired_after": "acquisition_start_time",
    "acquired_before": "acquisition_start_time",
    "qc_status": "name",
}
COUNT_STATEMENT = "SELECT count(*) FROM asset_basics{where}"
PAGE_STATEMENT = (
    f"SELECT * FROM asset_basics{{where}} ORDER BY {STARTED_AT} NULLS LAST, name, _id LIMIT $limit OFFSET $offset"
)


def search(
    *,
    subject_id: str | int | None = None,
    project_name: str | None = None,
    modality: str | None = None,
    data_level: str | None = None,
    name_contains: str | None = None,
    acquired_after: date | datetime | str | None = None,
    acquired_before: date | datetime | str | None = None,
    qc_status: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    as_: str = "pandas",
    **unknown,
) -> Rows:
    """One page of the matching asset_basics rows (see the module docstring); total in `.attrs["total"]`."""
    filters = _checked_filters("search", unknown, locals())
    if limit is not None and (not _is_int(limit) or limit < 0):
        raise ValueError(f"search: limit={limit!r} is not a whole number >= 0 (or None for every row)")
    if not _is_int(offset) or offset < 0:
        raise ValueError(f"search: offset={offset!r} is not a whole number >= 0")
    check_format(as_)
    spec = table_spec("asset_basics")
    with _connected(filters, columns=None) as connection:
        total = _count(connection, filters)
        where, parameters = _where(filters)
        page = connection.execute(
            PAGE_STATEMENT.format(where=where), {**parameters, "limit": limit, "offset": offset}
        ).to_arrow_table()
    rows = table_as(page.cast(spec.schema), spec, as_)
    if as_ == "pandas":
        rows.attrs["total"] = total
    return rows


def search_count(
    *,
    subject_id: str | int | None = None,
    project_name: str | None = None,
    modality: str | None = None,
    data_level: str | None = None,
    name_contains: str | None = None,
    acquired_after: date | datetime | str | None = None,
    acquired_before: date | datetime | str | None = None,
    qc_status: str | None = None,
    **unknown,
) -> int:
    """How many asset_basics rows `search` finds with these filters, over all pages."""
    filters = _checked_filters("search_count", unknown, locals())
    columns = sorted({FILTER_COLUMNS.get(name, name) for name in filters})
    with _connected(filters, columns=columns or ["name"]) as connection:
        return _count(connection, filters)


def _checked_filters(function: str, unknown: dict, arguments: dict) -> dict:
    """The filters given (not None), each checked and converted to the value DuckDB is bound to."""
    if unknown:
        raise ValueError(
            f"{function}: unknown filter {', '.join(sorted(unknown))}; the filters are {', '.join(SEARCH_FILTERS)}"
        )
    filters = {name: arguments[name] for name in SEARCH_FILTERS if arguments[name] is not None}
    for name, value in filters.items():
        if name == "subject_id" and _is_int(value):
            filters[name] = str(value)
        elif name in ("acquired_after", "acquired_before"):
            filters[name] = _utc_time(function, name, value)
        elif not isinstance(value, str):
            expected = "a string or an int" if name == "subject_id" else "a string"
            raise ValueError(f"{function}: {name}={value!r} is a {type(value).__name__}, not {expected}")
    if "qc_status" in filters:
        status = filters["qc_status"]
        if status not in QC_STATUSES:
            raise ValueError(f"{function}: qc_status={status!r} is not one of {', '.join(QC_STATUSES)}")
        filters["qc_status"] = list(QC_STATUSES[: QC_STATUSES.index(status) + 1])
    after, before = filters.get("acquired_after"), filters.get("acquired_before")
    if after is not None and before is not None and after >= before:
        raise ValueError(
            f"{function}: acquired_after={arguments['acquired_after']!r} is not before "
            f"acquired_before={arguments['acquired_before']!r}; no asset can match"
        )
    return filters


def _utc_time(function: str, name: str, value) -> datetime:
    """A date (midnight), datetime or ISO string as an aware UTC datetime; naive times are UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{function}: {name}={value!r} is not an ISO date or time; "
                "use e.g. '2025-03-01' or '2025-03-01T12:00:00Z'"
            ) from None
    if not isinstance(value, (date, datetime)) or pd.isna(value):
        raise ValueError(f"{function}: {name}={value!r} is not a date, a datetime or an ISO date string")
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(connection: duckdb.DuckDBPyConnection, filters: dict) -> int:
    where, parameters = _where(filters)
    return connection.execute(COUNT_STATEMENT.format(where=where), parameters).fetchone()[0]


def _where(filters: dict) -> tuple[str, dict]:
    """The WHERE clause of the filters given (fixed text) and their bound parameters."""
    if not filters:
        return "", {}
    return " WHERE " + " AND ".join(CLAUSES[name] for name in filters), dict(filters)


@contextmanager
def _connected(filters: dict, columns: list[str] | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with asset_basics (`columns`; None: all) and, for `qc_status`, the asset
    names and statuses of quality_control registered; times compare in UTC; no file access."""
    reader = current_reader()
    connection = duckdb.connect()
    try:
        connection.register("asset_basics", reader.read(table_spec("asset_basics"), columns=columns))
        if "qc_status" in filters:
            subject = filters.get("subject_id")
            statuses = reader.read(
                table_spec("quality_control"),
                columns=["asset_name", "status"],
                partitions=None if subject is None else [subject],
            )
            connection.register("quality_control", statuses)
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET enable_external_access = false")
        yield connection
    finally:
        connection.close()
