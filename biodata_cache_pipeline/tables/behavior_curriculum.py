"""behavior_curriculum: the curriculum stage of each behavior asset, from its trainer-state file.

Incremental: a row already published with a trainer state is reused; assets gone from
asset_basics drop out; assets without a trainer state are looked up again on every build.
"""

from __future__ import annotations

import pyarrow as pa

from biodata_cache_client.schema.behavior_curriculum import BEHAVIOR_CURRICULUM
from biodata_cache_pipeline.records import is_text
from biodata_cache_pipeline.sources.open_data import OpenDataStore


TRAINER_STATE_FOLDER = "behavior"  # every place is inside it
TRAINER_STATE_PLACES = (
    (TRAINER_STATE_FOLDER, "trainer_state"),
    (f"{TRAINER_STATE_FOLDER}/Logs/.launcher", "TrainerState_"),
)


def trainer_state(store: OpenDataStore, location: str | None) -> dict | None:
    """The first `.json` object (lexicographic) under the trainer-state prefixes, in order. An
    asset without a behavior folder (most) costs one look-up, not one per place."""
    if not store.has_folder(location, TRAINER_STATE_FOLDER):
        return None
    for folder, prefix in TRAINER_STATE_PLACES:
        for path in store.find_files(location, folder, prefix, ".json"):
            state = store.read_json(location, folder, path)
            if isinstance(state, dict):
                return state
    return None


def curriculum_row(asset_name: str, state: dict | None) -> dict:
    row = {"asset_name": asset_name, "curriculum_name": None, "stage_name": None, "stage_node_id": None}
    if state is None:
        return row
    curriculum = state.get("curriculum") if isinstance(state.get("curriculum"), dict) else {}
    stage = state.get("stage") if isinstance(state.get("stage"), dict) else {}
    name, stage_name = curriculum.get("name"), stage.get("name")
    row["curriculum_name"] = name if isinstance(name, str) and is_text(name) else None
    row["stage_name"] = stage_name if isinstance(stage_name, str) and is_text(stage_name) else None
    graph = curriculum.get("graph") if isinstance(curriculum.get("graph"), dict) else {}
    nodes = graph.get("nodes") if isinstance(graph.get("nodes"), dict) else {}
    for key, node in nodes.items():
        if row["stage_name"] is not None and isinstance(node, dict) and node.get("name") == row["stage_name"]:
            try:
                row["stage_node_id"] = int(key)
            except ValueError:
                continue
            break
    return row


def is_behavior(modalities: list[str] | None) -> bool:
    return any("behavior" in m.lower() for m in modalities or [])


def build_behavior_curriculum(
    asset_basics: pa.Table, store: OpenDataStore, previous: pa.Table | None = None
) -> tuple[pa.Table, int]:
    """The table, and how many rows were reused from `previous`."""
    known = {}
    if previous is not None:
        known = {row["asset_name"]: row for row in previous.to_pylist() if row["curriculum_name"] is not None}
    rows, reused = [], 0
    for asset in asset_basics.select(["name", "modalities", "location"]).to_pylist():
        if asset["name"] is None or not is_behavior(asset["modalities"]):
            continue
        if asset["name"] in known:
            rows.append(known[asset["name"]])
            reused += 1
        else:
            rows.append(curriculum_row(asset["name"], trainer_state(store, asset["location"])))
    rows.sort(key=lambda row: row["asset_name"])
    return BEHAVIOR_CURRICULUM.from_rows(rows), reused
