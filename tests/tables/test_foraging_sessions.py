"""foraging_sessions: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

import pyarrow as pa

from table_records import INT64, STRING, assert_declared, column, rows

from biodata_cache_client.schema.foraging_sessions import FORAGING_SESSIONS
from biodata_cache_pipeline.tables.foraging_sessions import build_foraging_sessions


def _source(**columns) -> pa.Table:
    return pa.table(columns)


FULL_SOURCE = dict(
    subject_id=pa.array(["B", "A", "A", "A"], STRING),
    session_date=pa.array(["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"], STRING),
    session=pa.array([7, 3, 2, 1], INT64),
    nwb_suffix=pa.array([0, 0, 5, 0], INT64),
    rig=pa.array(["447_1A", "447_1B", None, "r"], STRING),
    trainer=pa.array(["jane.doe", None, "BOB  SMITH", "o'brien"], STRING),
    task=pa.array(["Uncoupled Baiting"] * 4, STRING),
    curriculum_name=pa.array(["c"] * 4, STRING),
    curriculum_version=pa.array(["1.0"] * 4, STRING),
    current_stage_actual=pa.array(["STAGE_1"] * 4, STRING),
    foraging_eff=pa.array([0.5, 0.6, None, 0.8], pa.float64()),
    foraging_eff_random_seed=pa.array([0.1, 0.2, 0.3, 0.4], pa.float64()),
    finished_trials=pa.array([100, 200, 300, 400], INT64),
    finished_rate=pa.array([0.9, 0.8, 0.7, 0.6], pa.float64()),
    total_trials=pa.array([110, 220, 330, 440], INT64),
    bias_naive=pa.array([0.0, 0.1, -0.1, 0.2], pa.float64()),
    extra_column=pa.array([1, 2, 3, 4], INT64),
)


def test_foraging_sessions_full_source():
    table, warnings = build_foraging_sessions(_source(**FULL_SOURCE))
    assert_declared(table, FORAGING_SESSIONS)
    assert warnings == []
    # sorted by subject_id, session_date, nwb_suffix
    assert [(r["subject_id"], r["session_date"], r["nwb_suffix"]) for r in rows(table)] == [
        ("A", "2024-01-01", 0), ("A", "2024-01-01", 5), ("A", "2024-01-02", 0), ("B", "2024-01-01", 0),
    ]
    # the source's session column is used as is
    assert column(table, "session") == [1, 2, 3, 7]
    assert column(table, "trainer") == ["o'brien", "BOB  SMITH", None, "jane.doe"]
    assert column(table, "trainer_normalized") == ["O Brien", "Bob Smith", "", "Jane Doe"]
    assert column(table, "foraging_eff") == [0.8, None, 0.6, 0.5]
    assert column(table, "rig") == ["r", None, "447_1B", "447_1A"]


def test_foraging_sessions_missing_columns_are_typed_nulls_with_warnings():
    source = {k: v for k, v in FULL_SOURCE.items() if k not in ("bias_naive", "rig", "finished_trials", "session")}
    table, warnings = build_foraging_sessions(_source(**source))
    assert_declared(table, FORAGING_SESSIONS)
    for name in ("bias_naive", "rig", "finished_trials"):
        assert column(table, name) == [None] * 4
        assert any(name in w for w in warnings), (name, warnings)
    # session is not "lacking": it falls back to the rank of (session_date, nwb_suffix) per subject
    assert not any("session " in w or w.endswith("session") for w in warnings), warnings
    assert column(table, "session") == [1, 2, 3, 1]


def test_foraging_sessions_session_rank_fallback():
    source = _source(
        subject_id=pa.array(["A", "A", "B", "A", "B"], STRING),
        session_date=pa.array(["2024-03-01", "2024-01-01", "2024-02-01", "2024-01-01", "2023-12-31"], STRING),
        nwb_suffix=pa.array([0, 2, 0, 1, 0], INT64),
        trainer=pa.array(["x"] * 5, STRING),
    )
    table, warnings = build_foraging_sessions(source)
    assert [(r["subject_id"], r["session_date"], r["nwb_suffix"], r["session"]) for r in rows(table)] == [
        ("A", "2024-01-01", 1, 1),
        ("A", "2024-01-01", 2, 2),
        ("A", "2024-03-01", 0, 3),
        ("B", "2023-12-31", 0, 1),
        ("B", "2024-02-01", 0, 2),
    ]
    assert warnings  # many columns are missing


def test_foraging_sessions_missing_trainer():
    source = {k: v for k, v in FULL_SOURCE.items() if k != "trainer"}
    table, warnings = build_foraging_sessions(_source(**source))
    assert column(table, "trainer") == [None] * 4
    assert column(table, "trainer_normalized") == [""] * 4
    assert any("trainer" in w for w in warnings)


def test_foraging_sessions_subject_id_as_string():
    source = dict(FULL_SOURCE, subject_id=pa.array([700002, 700001, 700001, 700001], INT64))
    table, _ = build_foraging_sessions(_source(**source))
    assert table.schema.field("subject_id").type == STRING
    assert column(table, "subject_id") == ["700001", "700001", "700001", "700002"]


def test_foraging_sessions_empty_source():
    table, warnings = build_foraging_sessions(pa.table({"subject_id": pa.array([], STRING)}))
    assert_declared(table, FORAGING_SESSIONS)
    assert table.num_rows == 0
    assert warnings
