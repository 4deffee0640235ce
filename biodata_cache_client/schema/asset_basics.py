"""asset_basics: one row per record with the basics every notebook starts from (its declaration)."""

from biodata_cache_client.schema.declaration import INT64, STRING, STRING_LIST, Column, TableSpec

ASSET_BASICS = TableSpec(
    name="asset_basics",
    description="One row per data asset record: identity, subject, acquisition, people, instrument.",
    type="asset",
    columns=(
        Column("_id", STRING, "Record _id."),
        Column("_last_modified", STRING, "Record _last_modified, the ISO string as stored."),
        Column("modalities", STRING_LIST, "Modality abbreviations in document order."),
        Column("project_name", STRING, "data_description.project_name."),
        Column("data_level", STRING, "data_description.data_level (raw or derived)."),
        Column("subject_id", STRING, "subject.subject_id as a string."),
        Column("acquisition_start_time", STRING, "acquisition.acquisition_start_time, raw string."),
        Column("acquisition_end_time", STRING, "acquisition.acquisition_end_time, raw string."),
        Column("code_ocean", STRING_LIST, "other_identifiers['Code Ocean'] ids; null if absent."),
        Column("process_date", STRING, "YYYY-MM-DD of the last data process start; null if none."),
        Column("genotype", STRING, "subject.subject_details.genotype."),
        Column("age", INT64, "Whole days from date of birth to acquisition start (UTC)."),
        Column("acquisition_type", STRING, "acquisition.acquisition_type."),
        Column("location", STRING, "Record location (object store URI)."),
        Column("name", STRING, "Record name."),
        Column("experimenters", STRING_LIST, "acquisition.experimenters as stored (names)."),
        Column("experimenters_normalized", STRING_LIST, "Experimenters normalised and merged."),
        Column("instrument_id", STRING, "acquisition.instrument_id as stored."),
        Column("instrument_id_normalized", STRING, "Instrument id without room prefix and date suffix."),
        Column("investigators", STRING_LIST, "data_description.investigators names as stored."),
        Column("investigators_normalized", STRING_LIST, "Investigators normalised and merged."),
    ),
    unique=("_id",),
)
