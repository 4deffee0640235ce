"""Assets built straight from the record snapshot: unique values, asset_basics, source_data."""


import pyarrow.compute as pc
from dagster import Output, asset

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.source_data import SOURCE_DATA
from biodata_cache_pipeline.assets.common import (
    built_unless_unchanged,
    from_records,
    from_rows,
    read_snapshot,
    table_asset,
)
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS_ATTRIBUTES, build_asset_basics
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA_ATTRIBUTES, build_source_data
from biodata_cache_pipeline.tables.unique_values import UNIQUE_VALUE_TABLES, build_unique_values

GROUP = "metadata"


def _unique_values_asset(spec, attribute: str):
    """An asset holding the distinct values of one `NormalizedRecord` attribute (one snapshot
    column; malformed records are counted by asset_basics)."""

    def build(inputs):
        return build_unique_values(spec, pc.unique(inputs.column(attribute)).to_pylist()), {}

    @asset(**table_asset(spec, GROUP))
    def _unique_values(cache: CacheResource) -> Output:
        snapshot = read_snapshot(cache)
        return built_unless_unchanged(spec, cache, snapshot, snapshot.table([attribute]), build)

    return _unique_values


unique_project_names, unique_subject_ids, unique_genotypes = (
    _unique_values_asset(spec, attribute) for spec, attribute, _ in UNIQUE_VALUE_TABLES
)


@asset(**table_asset(ASSET_BASICS, GROUP))
def asset_basics(cache: CacheResource) -> Output:
    snapshot = read_snapshot(cache)
    inputs = snapshot.table(ASSET_BASICS_ATTRIBUTES + RecordTally.ATTRIBUTES)
    return built_unless_unchanged(ASSET_BASICS, cache, snapshot, inputs, from_rows(build_asset_basics))


@asset(**table_asset(SOURCE_DATA, GROUP))
def source_data(cache: CacheResource) -> Output:
    snapshot = read_snapshot(cache)
    inputs = snapshot.table(SOURCE_DATA_ATTRIBUTES + RecordTally.ATTRIBUTES)
    return built_unless_unchanged(SOURCE_DATA, cache, snapshot, inputs, from_records(build_source_data))
