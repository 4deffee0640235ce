"""unique_project_names, unique_subject_ids, unique_genotypes: sorted distinct values."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from biodata_cache_pipeline.tables.declaration import STRING, Column, TableSpec

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


# Each table, the `NormalizedRecord` attribute it lists and the record paths it reads (its DocDB
# projection), 1.x fallbacks included.
UNIQUE_VALUE_TABLES = (
    (UNIQUE_PROJECT_NAMES, "project_name", ("data_description.project_name",)),
    (UNIQUE_SUBJECT_IDS, "subject_id", ("subject.subject_id",)),
    (UNIQUE_GENOTYPES, "genotype", ("subject.subject_details.genotype", "subject.genotype")),
)


def build_unique_values(spec: TableSpec, values: Iterable[str | None]) -> pa.Table:
    """The distinct non-null `values`, sorted ascending, as the one column of `spec`."""
    distinct = sorted({v for v in values if v is not None})
    return spec.from_columns({spec.column_names[0]: distinct})
