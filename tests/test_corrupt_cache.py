"""An unreadable published object never blocks a build: it is reported by path (a warning) and the
next build replaces it (issue 12.7)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance
from handmade_corpus import use_local_environment, write_corpus

from biodata_cache_client.layout import version_folder
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.storage import CacheStore

SUBJECTS = ["600001", "600002", "600003"]


@pytest.fixture
def built(tmp_path, monkeypatch) -> tuple[Path, dict[str, bytes]]:
    """A cache built from a small corpus, and its objects as built."""
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    write_corpus(samples, SUBJECTS)
    use_local_environment(monkeypatch, samples, cache)
    build()
    folder = cache / version_folder()
    return folder, {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def build() -> None:
    outcome = materialize_all(DagsterInstance.ephemeral(), say=lambda _: None)
    assert not outcome.failures, [(f.step, f.reason) for f in outcome.failures]


def warnings_naming(caplog, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


def test_a_truncated_table_is_reported_and_replaced(built, caplog):
    folder, before = built
    table = folder / "asset_basics.pqt"
    table.write_bytes(before["asset_basics.pqt"][: len(before["asset_basics.pqt"]) // 2])
    with caplog.at_level(logging.WARNING):
        build()
    assert warnings_naming(caplog, table), caplog.text
    assert table.read_bytes() == before["asset_basics.pqt"]
    assert pq.read_metadata(table).num_rows == 6


def test_a_corrupt_registry_fragment_is_reported_and_replaced(built, caplog):
    folder, before = built
    fragment = folder / "cache_registry" / "asset_basics.json"
    fragment.write_text('{"name": "asset_basics", "build": {')
    with caplog.at_level(logging.WARNING):
        build()
    assert warnings_naming(caplog, fragment), caplog.text
    entry = json.loads(fragment.read_text())
    assert entry["name"] == "asset_basics" and entry["build"]["row_count"] == 6
    registry = CacheStore(str(folder.parent)).read_registry()
    assert {t["name"]: t for t in registry["tables"]}["asset_basics"] == entry


def test_a_corrupt_build_state_is_reported_and_replaced(built, caplog):
    folder, before = built
    state = folder / ".build_state" / "quality_control.json"
    state.write_text("[1, 2")
    with caplog.at_level(logging.WARNING):
        build()
    assert warnings_naming(caplog, state), caplog.text
    partitions = json.loads(state.read_text())["partitions"]
    assert sorted(partitions) == SUBJECTS and all(entry["rows"] == 4 for entry in partitions.values())
    assert {p: b for p, b in before.items() if p.startswith("qc/")} == {
        str(p.relative_to(folder)): p.read_bytes() for p in (folder / "qc").rglob("*") if p.is_file()
    }
