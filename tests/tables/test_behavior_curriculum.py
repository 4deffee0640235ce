"""behavior_curriculum: the build function against tables.md and the fixture records.

Expected values are derived from the spec text, the fixture README's facts and the fixture JSON,
never from running the implementation; readings of ambiguous spec lines are in the docstring of
the test that relies on them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from fixture_records import needs_fixture_records
from snapshot_rows import snapshot_rows
from table_records import all_records, assert_declared, column, mods, norm, rows, v2, write_json

from biodata_cache_client.schema.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.tables.asset_basics import build_asset_basics
from biodata_cache_pipeline.tables.behavior_curriculum import build_behavior_curriculum


def _state(curriculum="Uncoupled Baiting", stage="STAGE_2", nodes=None) -> dict:
    if nodes is None:
        nodes = {"0": {"name": "STAGE_1"}, "1": {"name": "STAGE_2"}, "2": {"name": "STAGE_2"}}
    return {"curriculum": {"name": curriculum, "graph": {"nodes": nodes}}, "stage": {"name": stage}}


def _behavior_basics(names_and_modalities) -> pa.Table:
    return build_asset_basics(snapshot_rows(norm(*(
        v2(name, {"data_description.modalities": mods(*modalities)}) for name, modalities in names_and_modalities
    ))))


def _curriculum_store(tmp_path: Path) -> tuple[Path, OpenDataStore]:
    root = tmp_path / "open-data"
    # A1: behavior/trainer_state.json; stage_node_id = first node named like the stage
    write_json(root / "A1" / "behavior" / "trainer_state.json", _state())
    # A2: several objects under the trainer_state prefix: lexicographically first (a.json);
    # the Logs/.launcher fallback is not used while trainer_state exists
    write_json(root / "A2" / "behavior" / "trainer_state" / "b.json", _state(stage="STAGE_1"))
    write_json(root / "A2" / "behavior" / "trainer_state" / "a.json",
                _state(curriculum="A2 curriculum", stage="STAGE_3",
                       nodes={"7": {"name": "STAGE_1"}, "12": {"name": "STAGE_3"}}))
    write_json(root / "A2" / "behavior" / "Logs" / ".launcher" / "TrainerState_0.json", _state(curriculum="no"))
    # A3: only the launcher log; names without the TrainerState_ prefix are ignored
    write_json(root / "A3" / "behavior" / "Logs" / ".launcher" / "TrainerState_20250102.json",
                _state(curriculum="launcher", stage="STAGE_1"))
    write_json(root / "A3" / "behavior" / "Logs" / ".launcher" / "TrainerState_20250101.txt", _state(curriculum="txt"))
    write_json(root / "A3" / "behavior" / "Logs" / ".launcher" / "AAA.json", _state(curriculum="wrong prefix"))
    # A4: nothing
    (root / "A4" / "behavior").mkdir(parents=True)
    # A6: behavior-videos only (substring match); stage not among the nodes
    write_json(root / "A6" / "behavior" / "trainer_state.json", _state(curriculum="c6", stage="GRADUATED"))
    # A5 (ecephys) has a trainer state but is not a behavior asset
    write_json(root / "A5" / "behavior" / "trainer_state.json", _state())
    return root, OpenDataStore(str(root))


ASSETS = [("A1", ["behavior"]), ("A2", ["Behavior", "fib"]), ("A3", ["behavior"]), ("A4", ["behavior"]),
          ("A5", ["ecephys"]), ("A6", ["behavior-videos"])]


def test_behavior_curriculum(tmp_path):
    _, store = _curriculum_store(tmp_path)
    table, reused = build_behavior_curriculum(_behavior_basics(ASSETS), store, None)
    assert_declared(table, BEHAVIOR_CURRICULUM)
    assert reused == 0
    assert [tuple(r.values()) for r in rows(table)] == [
        ("A1", "Uncoupled Baiting", "STAGE_2", 1),
        ("A2", "A2 curriculum", "STAGE_3", 12),
        ("A3", "launcher", "STAGE_1", 0),
        ("A4", None, None, None),
        ("A6", "c6", "GRADUATED", None),
    ]


def test_behavior_curriculum_trainer_state_file_and_folder_prefix(tmp_path):
    """`<location>/behavior/trainer_state` is a prefix: `trainer_state.json` sorts before
    `trainer_state/...` ('.' < '/'), so it is the first object."""
    root = tmp_path / "open-data"
    write_json(root / "B1" / "behavior" / "trainer_state" / "a.json", _state(curriculum="folder"))
    write_json(root / "B1" / "behavior" / "trainer_state.json", _state(curriculum="file"))
    write_json(root / "B2" / "behavior" / "trainer_state_2025.json", _state(curriculum="suffix"))
    table, _ = build_behavior_curriculum(
        _behavior_basics([("B1", ["behavior"]), ("B2", ["behavior"])]), OpenDataStore(str(root))
    )
    assert column(table, "curriculum_name") == ["file", "suffix"]


def test_behavior_curriculum_incremental(tmp_path):
    root, store = _curriculum_store(tmp_path)
    first, _ = build_behavior_curriculum(_behavior_basics(ASSETS), store, None)
    # the store changes: A1's state is rewritten (a known, complete row: reused, not re-read),
    # A4 gets a trainer state (re-checked), A6 leaves asset_basics (dropped), A7 is new
    write_json(root / "A1" / "behavior" / "trainer_state.json", _state(curriculum="changed"))
    write_json(root / "A4" / "behavior" / "trainer_state.json", _state(curriculum="late", stage="STAGE_1"))
    write_json(root / "A7" / "behavior" / "trainer_state.json", _state(curriculum="new", stage="STAGE_1"))
    assets = [a for a in ASSETS if a[0] != "A6"] + [("A7", ["behavior"])]
    second, reused = build_behavior_curriculum(_behavior_basics(assets), store, first)
    assert_declared(second, BEHAVIOR_CURRICULUM)
    assert [tuple(r.values()) for r in rows(second)] == [
        ("A1", "Uncoupled Baiting", "STAGE_2", 1),
        ("A2", "A2 curriculum", "STAGE_3", 12),
        ("A3", "launcher", "STAGE_1", 0),
        ("A4", "late", "STAGE_1", 0),
        ("A7", "new", "STAGE_1", 0),
    ]
    assert reused == 3  # A1, A2, A3


def test_behavior_curriculum_no_behavior_assets(tmp_path):
    table, reused = build_behavior_curriculum(_behavior_basics([("E", ["ecephys"])]), OpenDataStore(str(tmp_path)))
    assert_declared(table, BEHAVIOR_CURRICULUM)
    assert table.num_rows == 0 and reused == 0


@needs_fixture_records
def test_behavior_curriculum_fixtures(tmp_path):
    """Fixture behavior assets (modality containing `behavior`) with an empty open-data store: all null."""
    records = all_records()
    table, _ = build_behavior_curriculum(build_asset_basics(snapshot_rows(records)), OpenDataStore(str(tmp_path)))
    expected = sorted(r.name for r in records if any("behavior" in m.lower() for m in r.modalities))
    assert column(table, "asset_name") == expected
    assert "828418_2026-02-13_18-31-13" in expected  # v2_raw
    assert set(column(table, "curriculum_name")) == {None}
