"""Assets built straight from the records: unique values, asset_basics, source_data."""


from dagster import Output, asset

from biodata_cache_pipeline.assets.common import table_asset
from biodata_cache_pipeline.collector import collector_paused
from biodata_cache_pipeline.io_manager import SOURCE_METADATA_KEY
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.resources import RecordsResource
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS, ASSET_BASICS_FIELDS, build_asset_basics
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA, SOURCE_DATA_FIELDS, build_source_data
from biodata_cache_pipeline.tables.unique_values import UNIQUE_VALUE_TABLES, build_unique_values

GROUP = "metadata"


def _output(table, records: RecordsResource, tally: RecordTally, **metadata) -> Output:
    return Output(table, metadata={SOURCE_METADATA_KEY: records.source, **tally.metadata(), **metadata})


def _unique_values_asset(spec, attribute: str, fields: tuple[str, ...]):
    """An asset holding the distinct values of one `NormalizedRecord` attribute, read from `fields`
    (DocDB answers with one aggregation; malformed records are counted by asset_basics)."""

    @asset(**table_asset(spec, GROUP))
    def _unique_values(records: RecordsResource) -> Output:
        with collector_paused():
            table = build_unique_values(spec, records.distinct(attribute, fields))
        return Output(table, metadata={SOURCE_METADATA_KEY: records.source})

    return _unique_values


unique_project_names, unique_subject_ids, unique_genotypes = (
    _unique_values_asset(spec, attribute, fields) for spec, attribute, fields in UNIQUE_VALUE_TABLES
)


@asset(**table_asset(ASSET_BASICS, GROUP))
def asset_basics(records: RecordsResource) -> Output:
    tally = RecordTally()
    with collector_paused():
        table = build_asset_basics(tally.track(records.records(ASSET_BASICS_FIELDS)))
    return _output(table, records, tally)


@asset(**table_asset(SOURCE_DATA, GROUP))
def source_data(records: RecordsResource) -> Output:
    tally = RecordTally()
    with collector_paused():
        table = build_source_data(tally.track(records.records(SOURCE_DATA_FIELDS)))
    return _output(table, records, tally)
