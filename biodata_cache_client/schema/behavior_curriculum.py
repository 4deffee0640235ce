"""behavior_curriculum: the curriculum stage of each behavior asset (its declaration)."""

from biodata_cache_client.schema.declaration import INT64, STRING, Column, TableSpec

BEHAVIOR_CURRICULUM = TableSpec(
    name="behavior_curriculum",
    description="Curriculum and stage of each behavior asset, from its trainer-state file.",
    type="platform",
    columns=(
        Column("asset_name", STRING, "Asset name."),
        Column("curriculum_name", STRING, "curriculum.name of the trainer state."),
        Column("stage_name", STRING, "stage.name of the trainer state."),
        Column("stage_node_id", INT64, "Integer key of the curriculum graph node named like the stage."),
    ),
)
