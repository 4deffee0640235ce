"""unique_project_names, unique_subject_ids, unique_genotypes: sorted distinct values."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from biodata_cache_client.schema.declaration import TableSpec
from biodata_cache_client.schema.unique_values import UNIQUE_GENOTYPES, UNIQUE_PROJECT_NAMES, UNIQUE_SUBJECT_IDS


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
