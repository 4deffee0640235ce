"""The eleven table declarations (`biodata_cache_client.schema`) as a whole: names, columns in
order, the types tables.md states, partitioning; expected values from the spec text."""

from __future__ import annotations

from table_records import BOOL, INT64, PLATFORMS, STRING, STRING_LIST, UTC

from biodata_cache_client.schema import TABLES


DECLARED_COLUMNS = {
    "unique_project_names": ["project_name"],
    "unique_subject_ids": ["subject_id"],
    "unique_genotypes": ["genotype"],
    "asset_basics": [
        "_id", "_last_modified", "modalities", "project_name", "data_level", "subject_id",
        "acquisition_start_time", "acquisition_end_time", "code_ocean", "process_date", "genotype", "age",
        "acquisition_type", "location", "name", "experimenters", "experimenters_normalized", "instrument_id",
        "instrument_id_normalized", "investigators", "investigators_normalized",
    ],
    "source_data": ["name", "source_data", "pipeline_name", "processing_time"],
    "quality_control": ["name", "modality", "stage", "value", "status", "asset_name", "subject_id", "timestamp"],
    "platform_qc": ["asset_name", "tag", "status", "timestamp", "instrument_id_normalized",
                    "experimenters_normalized"],
    "assets_smartspim": [
        "name", "raw_name", "processed", "institution", "processing_end_time", "stitched_link", "raw_link",
        "channel", "segmentation_link", "quantification_link", "alignment_link",
    ],
    "platform_fib": ["asset_name", "fiber", "patch_cord", "channel", "intended_measurement", "targeted_structure"],
    "foraging_sessions": [
        "subject_id", "session_date", "session", "nwb_suffix", "rig", "trainer", "trainer_normalized", "task",
        "curriculum_name", "curriculum_version", "current_stage_actual", "foraging_eff",
        "foraging_eff_random_seed", "finished_trials", "finished_rate", "total_trials", "bias_naive",
    ],
    "behavior_curriculum": ["asset_name", "curriculum_name", "stage_name", "stage_node_id"],
}

# Types the spec states (list columns, the age, the QC timestamp, booleans, ids as strings).
DECLARED_TYPES = {
    ("asset_basics", "modalities"): STRING_LIST,
    ("asset_basics", "code_ocean"): STRING_LIST,
    ("asset_basics", "age"): INT64,
    ("asset_basics", "experimenters"): STRING_LIST,
    ("asset_basics", "experimenters_normalized"): STRING_LIST,
    ("asset_basics", "investigators"): STRING_LIST,
    ("asset_basics", "investigators_normalized"): STRING_LIST,
    ("asset_basics", "subject_id"): STRING,
    ("asset_basics", "process_date"): STRING,
    ("asset_basics", "acquisition_start_time"): STRING,
    ("quality_control", "timestamp"): UTC,
    ("quality_control", "status"): STRING,
    ("quality_control", "value"): STRING,
    ("platform_qc", "timestamp"): STRING,
    ("platform_qc", "experimenters_normalized"): STRING_LIST,
    ("assets_smartspim", "processed"): BOOL,
    ("behavior_curriculum", "stage_node_id"): INT64,
    ("foraging_sessions", "subject_id"): STRING,
    ("foraging_sessions", "session_date"): STRING,
    ("foraging_sessions", "trainer_normalized"): STRING,
    ("unique_subject_ids", "subject_id"): STRING,
}


def test_eleven_tables_with_the_spec_columns_in_order():
    assert set(TABLES) == set(DECLARED_COLUMNS)
    for name, columns in DECLARED_COLUMNS.items():
        assert TABLES[name].column_names == columns, name


def test_declared_types_stated_by_the_spec():
    for (table, column_name), expected in DECLARED_TYPES.items():
        declared = {c.name: c.type for c in TABLES[table].columns}
        assert declared[column_name] == expected, (table, column_name)
    # everything else of source_data, platform_fib and the string-only tables is a string
    for table in ("source_data", "platform_fib", "unique_project_names", "unique_genotypes"):
        assert all(c.type == STRING for c in TABLES[table].columns), table


def test_partitioned_tables():
    qc, pqc = TABLES["quality_control"], TABLES["platform_qc"]
    assert (qc.folder, qc.partition_key) == ("qc", "subject_id")
    assert (pqc.folder, pqc.partition_key) == ("platform_qc", "platform")
    assert pqc.static_partitions == PLATFORMS
    assert "subject_id" in qc.column_names
    for name, spec in TABLES.items():
        if name not in ("quality_control", "platform_qc"):
            assert not spec.partitioned, name
