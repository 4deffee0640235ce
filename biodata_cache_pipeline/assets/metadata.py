"""Assets built straight from the records: unique values, asset_basics, source_data."""


from dagster import Output, asset

from biodata_cache_pipeline.assets.common import table_asset
from biodata_cache_pipeline.io_manager import SOURCE_METADATA_KEY
from biodata_cache_pipeline.records import RecordTally
from biodata_cache_pipeline.resources import LocalRecordsResource
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS, build_asset_basics
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA, build_source_data
from biodata_cache_pipeline.tables.unique_values import (
    UNIQUE_GENOTYPES,
    UNIQUE_PROJECT_NAMES,
    UNIQUE_SUBJECT_IDS,
    build_unique_values,
)

GROUP = "metadata"


def _output(table, records: LocalRecordsResource, tally: RecordTally, **metadata) -> Output:
    return Output(table, metadata={SOURCE_METADATA_KEY: records.source, **tally.metadata(), **metadata})


def _unique_values_asset(spec, field: str):
    """An asset holding the distinct values of one `NormalizedRecord` field."""

    @asset(**table_asset(spec, GROUP))
    def _unique_values(records: LocalRecordsResource) -> Output:
        tally = RecordTally()
        values = (getattr(r, field) for r in tally.track(records.records()))
        return _output(build_unique_values(spec, values), records, tally)

    return _unique_values


unique_project_names = _unique_values_asset(UNIQUE_PROJECT_NAMES, "project_name")
unique_subject_ids = _unique_values_asset(UNIQUE_SUBJECT_IDS, "subject_id")
unique_genotypes = _unique_values_asset(UNIQUE_GENOTYPES, "genotype")


@asset(**table_asset(ASSET_BASICS, GROUP))
def asset_basics(records: LocalRecordsResource) -> Output:
    tally = RecordTally()
    return _output(build_asset_basics(tally.track(records.records())), records, tally)


@asset(**table_asset(SOURCE_DATA, GROUP))
def source_data(records: LocalRecordsResource) -> Output:
    tally = RecordTally()
    return _output(build_source_data(tally.track(records.records())), records, tally)
