"""One function per cache table, plus `raw_to_derived`, the registry and the version list.

Every function reads the version folder selected by the configuration (see `config`) and returns
typed results (see `frames`). `columns=` selects columns and `filters=` takes pyarrow-style
tuples, e.g. `[("data_level", "=", "raw"), ("subject_id", "in", ["1", "2"])]` (one tuple alone
is one filter; a list of such lists is OR); both are pushed down to the parquet scan. `as_=`
gives the rows as `"pandas"` (default), `"arrow"` or `"polars"` (see `formats`).

`as_of=` (a date or time) or `build=` (a build id) reads an earlier build of the table (see `builds`).
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from biodata_cache_client.builds import at_build
from biodata_cache_client.formats import Rows, check_format, table_as
from biodata_cache_client.reader import current_reader, filter_expression, table_spec
from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL


@at_build
def read_table(name: str, columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    """Any cache table by name, as a typed DataFrame (or `as_="arrow"`, `"polars"`)."""
    spec = table_spec(name)
    check_format(as_)
    table = current_reader().read(spec, columns=columns, where=filter_expression(spec, filters))
    return table_as(table, spec, as_)


@at_build
def unique_project_names() -> list[str]:
    return _values("unique_project_names", "project_name")


@at_build
def unique_subject_ids() -> list[str]:
    return _values("unique_subject_ids", "subject_id")


@at_build
def unique_genotypes() -> list[str]:
    return _values("unique_genotypes", "genotype")


@at_build
def asset_basics(columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    return read_table("asset_basics", columns, filters, as_)


@at_build
def source_data(columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    return read_table("source_data", columns, filters, as_)


@at_build
def quality_control(
    subject_id: str | int | list[str | int] | None,
    asset_names: str | list[str] | None = None,
    columns: list[str] | None = None,
    filters=None,
    as_: str = "pandas",
) -> Rows:
    """QC metrics of one subject or a list of subjects (None: every subject), read per partition.

    Subject ids are strings (`"600015"`); ints are accepted and read as their digits.

    `asset_names` keeps the metrics of those assets only. A subject without a partition gives no
    rows and a warning.
    """
    check_format(as_)
    where = filter_expression(QUALITY_CONTROL, filters)
    if asset_names is not None:
        where = _and(where, pc.field("asset_name").isin(pa.array(_as_list(asset_names), pa.string())))
    partitions = None if subject_id is None else [str(s) for s in _as_list(subject_id)]
    table = current_reader().read(QUALITY_CONTROL, columns=columns, where=where, partitions=partitions)
    return table_as(table, QUALITY_CONTROL, as_)


qc = quality_control


@at_build
def platform_qc(
    platform: str | list[str] | None = None, columns: list[str] | None = None, filters=None, as_: str = "pandas"
) -> Rows:
    """QC statuses per tag of one platform, a list of them, or all (None)."""
    check_format(as_)
    platforms = None if platform is None else _as_list(platform)
    unknown = sorted(set(platforms or ()) - set(PLATFORM_QC.static_partitions))
    if unknown:
        raise ValueError(f"platform_qc: unknown platforms {unknown}; the platforms are {PLATFORM_QC.static_partitions}")
    where = filter_expression(PLATFORM_QC, filters)
    table = current_reader().read(PLATFORM_QC, columns=columns, where=where, partitions=platforms)
    return table_as(table, PLATFORM_QC, as_)


@at_build
def assets_smartspim(columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    return read_table("assets_smartspim", columns, filters, as_)


@at_build
def platform_fib(columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    return read_table("platform_fib", columns, filters, as_)


@at_build
def foraging_sessions(columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    return read_table("foraging_sessions", columns, filters, as_)


@at_build
def behavior_curriculum(columns: list[str] | None = None, filters=None, as_: str = "pandas") -> Rows:
    return read_table("behavior_curriculum", columns, filters, as_)


@at_build
def raw_to_derived(asset_name: str | list[str], modality: str | None = None, latest: bool = True) -> list[str]:
    """Derived assets made from the given assets (tables.md, "raw_to_derived").

    `modality` keeps derived assets with a modality abbreviation containing it (case-insensitive);
    `latest` keeps the newest `processing_time` per (source, pipeline_name), ties to the larger
    name. Sorted by source (in the order given), pipeline_name, name; unknown names give [].
    """
    sources = list(dict.fromkeys(_as_list(asset_name)))
    rows = source_data(filters=[("source_data", "in", sources)]).to_dict("records") if sources else []
    if rows and modality is not None:
        derived = sorted({row["name"] for row in rows})
        basics = asset_basics(columns=["name", "modalities"], filters=[("name", "in", derived)])
        wanted = modality.lower()
        matching = {
            name
            for name, modalities in zip(basics["name"], basics["modalities"])
            if any(m and wanted in m.lower() for m in modalities or [])
        }
        rows = [row for row in rows if row["name"] in matching]
    if latest:
        newest = {}
        for row in sorted(rows, key=lambda row: (row["processing_time"] or "", row["name"])):
            newest[(row["source_data"], row["pipeline_name"])] = row
        rows = list(newest.values())
    order = {source: position for position, source in enumerate(sources)}
    rows.sort(key=lambda row: (order[row["source_data"]], row["pipeline_name"] or "", row["name"]))
    return list(dict.fromkeys(row["name"] for row in rows))


def get_cache_registry() -> dict:
    """`{"tables": [CacheTable, ...]}` of the selected version, each with its `build` manifest."""
    return current_reader().registry()


def get_cache_versions() -> list[str]:
    """The version folders published under the root, in registration order."""
    return current_reader().versions()


def cache_info(table: str) -> dict:
    """`table`, `version`, `location`, `built_at`, `source`, `rows`, `partitions`, `pipeline_version`."""
    return current_reader().table_info(table)


def _values(table: str, column: str) -> list[str]:
    return read_table(table, columns=[column])[column].tolist()


def _as_list(value) -> list:
    """One value (a string, or a number such as an int subject id) or an iterable of them, as a list."""
    return list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else [value]


def _and(left: pc.Expression | None, right: pc.Expression) -> pc.Expression:
    return right if left is None else left & right
