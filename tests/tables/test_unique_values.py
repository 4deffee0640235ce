"""unique_project_names, unique_subject_ids, unique_genotypes: build against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from fixture_records import needs_fixture_records
from table_records import all_raw, all_records, assert_declared, column

from biodata_cache_client.schema.unique_values import UNIQUE_GENOTYPES, UNIQUE_PROJECT_NAMES, UNIQUE_SUBJECT_IDS
from biodata_cache_pipeline.tables.unique_values import build_unique_values


def test_unique_values_distinct_non_null_sorted():
    table = build_unique_values(UNIQUE_SUBJECT_IDS, ["2", None, "10", "1", "2"])
    assert_declared(table, UNIQUE_SUBJECT_IDS)
    assert column(table, "subject_id") == ["1", "10", "2"]  # strings sort as strings


def test_unique_values_empty():
    table = build_unique_values(UNIQUE_PROJECT_NAMES, [None])
    assert_declared(table, UNIQUE_PROJECT_NAMES)
    assert table.num_rows == 0


@needs_fixture_records
def test_unique_values_from_fixtures():
    raws = all_raw()
    records = all_records()
    projects = build_unique_values(UNIQUE_PROJECT_NAMES, (r.project_name for r in records))
    assert column(projects, "project_name") == sorted({r["data_description"]["project_name"] for r in raws})
    subjects = build_unique_values(UNIQUE_SUBJECT_IDS, (r.subject_id for r in records))
    assert column(subjects, "subject_id") == sorted({str(r["subject"]["subject_id"]) for r in raws})
    genotypes = build_unique_values(UNIQUE_GENOTYPES, (r.genotype for r in records))
    expected = sorted(
        {(r["subject"].get("subject_details") or {}).get("genotype") or r["subject"].get("genotype") for r in raws}
    )
    assert column(genotypes, "genotype") == expected
    # verbatim, no normalisation
    assert "Sim1-Cre_KJ18/wt;Ai32(RCL-ChR2(H134R)_EYFP)/wt" in expected
