"""foraging_sessions: the dynamic-foraging session table, typed, with normalised trainers (its declaration)."""

from biodata_cache_client.schema.declaration import DOUBLE, INT64, STRING, Column, TableSpec

FORAGING_SESSIONS = TableSpec(
    name="foraging_sessions",
    description="Dynamic foraging sessions from aind-dynamic-foraging-database's session table.",
    type="platform",
    columns=(
        Column("subject_id", STRING, "Subject id as a string."),
        Column("session_date", STRING, "Session date, YYYY-MM-DD."),
        Column("session", INT64, "Session number for the subject (source column, else rank by date and suffix)."),
        Column("nwb_suffix", INT64, "Suffix distinguishing sessions of one subject on one day."),
        Column("rig", STRING, "Rig name."),
        Column("trainer", STRING, "Trainer as stored."),
        Column("trainer_normalized", STRING, "Trainer name normalised; empty string when missing."),
        Column("task", STRING, "Task name."),
        Column("curriculum_name", STRING, "Curriculum name."),
        Column("curriculum_version", STRING, "Curriculum version."),
        Column("current_stage_actual", STRING, "Curriculum stage the session ran in."),
        Column("foraging_eff", DOUBLE, "Foraging efficiency."),
        Column("foraging_eff_random_seed", DOUBLE, "Foraging efficiency against the random seed."),
        Column("finished_trials", INT64, "Number of finished trials."),
        Column("finished_rate", DOUBLE, "Fraction of trials finished."),
        Column("total_trials", INT64, "Number of trials."),
        Column("bias_naive", DOUBLE, "Naive side bias."),
    ),
)
