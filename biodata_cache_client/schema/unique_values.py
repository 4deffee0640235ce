"""unique_project_names, unique_subject_ids, unique_genotypes: sorted distinct values (their declarations)."""

from biodata_cache_client.schema.declaration import STRING, Column, TableSpec

UNIQUE_PROJECT_NAMES = TableSpec(
    name="unique_project_names",
    description="Distinct project names (data_description.project_name), sorted.",
    type="metadata",
    columns=(Column("project_name", STRING, "A project name as stored in data_description.project_name."),),
)

UNIQUE_SUBJECT_IDS = TableSpec(
    name="unique_subject_ids",
    description="Distinct subject ids (subject.subject_id, as strings), sorted.",
    type="metadata",
    columns=(Column("subject_id", STRING, "A subject id as a string; leading zeros kept."),),
)

UNIQUE_GENOTYPES = TableSpec(
    name="unique_genotypes",
    description="Distinct genotypes (subject.subject_details.genotype, verbatim), sorted.",
    type="metadata",
    columns=(Column("genotype", STRING, "A genotype string exactly as stored."),),
)
