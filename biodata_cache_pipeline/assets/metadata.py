"""Assets built straight from the record snapshot: unique values, asset_basics, source_data."""


import pyarrow.compute as pc
from dagster import Output, ResourceParam, asset

from biodata_cache_pipeline.assets.common import read_snapshot, table_asset
from biodata_cache_pipeline.collector import collector_paused
from biodata_cache_pipeline.io_manager import SOURCE_METADATA_KEY, CacheIOManager
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS, ASSET_BASICS_ATTRIBUTES, build_asset_basics
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA, SOURCE_DATA_ATTRIBUTES, build_source_data
from biodata_cache_pipeline.tables.unique_values import UNIQUE_VALUE_TABLES, build_unique_values

GROUP = "metadata"


def _unique_values_asset(spec, attribute: str):
    """An asset holding the distinct values of one `NormalizedRecord` attribute (one snapshot
    column; malformed records are counted by asset_basics)."""

    @asset(**table_asset(spec, GROUP))
    def _unique_values(cache_io_manager: ResourceParam[CacheIOManager]) -> Output:
        snapshot = read_snapshot(cache_io_manager)
        values = pc.unique(snapshot.table([attribute]).column(attribute)).to_pylist()
        return Output(build_unique_values(spec, values), metadata={SOURCE_METADATA_KEY: snapshot.source})

    return _unique_values


unique_project_names, unique_subject_ids, unique_genotypes = (
    _unique_values_asset(spec, attribute) for spec, attribute, _ in UNIQUE_VALUE_TABLES
)


@asset(**table_asset(ASSET_BASICS, GROUP))
def asset_basics(cache_io_manager: ResourceParam[CacheIOManager]) -> Output:
    snapshot, tally = read_snapshot(cache_io_manager), RecordTally()
    with collector_paused():
        table = build_asset_basics(tally.track(snapshot.records(ASSET_BASICS_ATTRIBUTES + tally.ATTRIBUTES)))
    return Output(table, metadata={SOURCE_METADATA_KEY: snapshot.source, **tally.metadata()})


@asset(**table_asset(SOURCE_DATA, GROUP))
def source_data(cache_io_manager: ResourceParam[CacheIOManager]) -> Output:
    snapshot, tally = read_snapshot(cache_io_manager), RecordTally()
    with collector_paused():
        table = build_source_data(tally.track(snapshot.records(SOURCE_DATA_ATTRIBUTES + tally.ATTRIBUTES)))
    return Output(table, metadata={SOURCE_METADATA_KEY: snapshot.source, **tally.metadata()})
