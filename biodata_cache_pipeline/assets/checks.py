"""Asset checks, read back from storage after each build (the logic is in `table_checks.py`).

Every table: the stored schema equals the declaration. asset_basics: `_id` is unique (its declared
unique column). quality_control: no row has a null (or foreign) subject_id (told by each partition
file's column statistics when they can, else by its data) and no partition key is unsafe.
In a partitioned run the checks read the partitions of the run, otherwise every stored partition.

The checks are the UI's view of rules that are enforced before anything is published: the IO
manager conforms each table to its declared schema and refuses one that breaks a declared
constraint. They are blocking: a failed check fails its run (and `materialize`) and stops the
assets that read the table.
"""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.subjects import partition_key_problem
from biodata_cache_pipeline.table_checks import (
    partition_column_problems,
    partition_column_proven,
    schema_problems,
    unique_problems,
)

SHOWN = 10  # problems listed in a check result


def _result(problems: list[str], **metadata) -> AssetCheckResult:
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problems": "\n".join(problems[:SHOWN]) or "none", "problem_count": len(problems), **metadata},
    )


def _checked_partitions(context: AssetCheckExecutionContext, store: CacheStore, spec: TableSpec) -> list[str]:
    """The stored partitions this check looks at: those of the run, else all of them."""
    stored = store.list_partitions(spec)
    if not (context.has_partition_key or context.has_partition_key_range):
        return stored
    return sorted(set(context.partition_keys) & set(stored))


def _schema_check(spec: TableSpec):
    @asset_check(
        asset=spec.name,
        name="schema_matches_declaration",
        description=f"The stored parquet schema of {spec.name} equals its declaration (columns, order, types).",
        blocking=True,
    )
    def _check(context: AssetCheckExecutionContext, cache: CacheResource) -> AssetCheckResult:
        store = cache.store()
        objects = _checked_partitions(context, store, spec) if spec.partitioned else [None]
        problems = []
        for key in objects:
            footer = store.read_parquet_metadata(spec, key)
            where = f"{key}: " if key is not None else ""
            if footer is None:
                problems.append(f"{where}no stored object")
            else:
                problems += [where + p for p in schema_problems(spec, footer.schema.to_arrow_schema())]
        return _result(problems, objects_checked=len(objects))

    return _check


@asset_check(
    asset=ASSET_BASICS.name,
    description="Every asset_basics row has a distinct record _id (nulls aside), as declared.",
    blocking=True,
)
def id_unique(cache: CacheResource) -> AssetCheckResult:
    stored = cache.store().read_columns(ASSET_BASICS, list(ASSET_BASICS.unique))
    return _result(unique_problems(ASSET_BASICS, stored), rows=stored.num_rows)


@asset_check(
    asset=QUALITY_CONTROL.name,
    description="No quality_control row has a null subject_id (or another partition's), and every key of "
    "the subject partition set is safe for Dagster and for paths.",
    blocking=True,
)
def no_null_partition_keys(
    context: AssetCheckExecutionContext, cache: CacheResource
) -> AssetCheckResult:
    store = cache.store()
    problems = [
        f"partition key {key!r}: {problem}"
        for key in context.instance.get_dynamic_partitions(SUBJECT_PARTITIONS.name)
        if (problem := partition_key_problem(key)) is not None
    ]
    checked = _checked_partitions(context, store, QUALITY_CONTROL)
    column = QUALITY_CONTROL.partition_key
    for key in checked:
        footer = store.read_parquet_metadata(QUALITY_CONTROL, key)
        if footer is None or not partition_column_proven(key, footer, column):  # statistics cannot tell: read
            problems += partition_column_problems(key, store.read_partition(QUALITY_CONTROL, key, [column]).column(0))
    return _result(problems, partitions_checked=len(checked))


ALL_CHECKS = [*(_schema_check(spec) for spec in TABLES.values()), id_unique, no_null_partition_keys]
