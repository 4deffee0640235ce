"""The local records source with a record store: each folder parsed once, changes picked up."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset, materialize

from biodata_cache_pipeline.resources import LocalRecordsResource
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.sources import local_folder, record_store
from biodata_cache_pipeline.sources.local_folder import LocalFolderRecords
from biodata_cache_pipeline.sources.record_store import RecordStore
from biodata_cache_pipeline.tables.unique_values import UNIQUE_VALUE_TABLES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, assets=60, seed=5)
    return out


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The folders the local source parses, in order."""
    parsed: list[str] = []
    original = LocalFolderRecords.raw_record

    def counting(self, folder, files=None):
        parsed.append(folder)
        return original(self, folder, files)

    monkeypatch.setattr(LocalFolderRecords, "raw_record", counting)
    return parsed


def _copy(corpus: Path, target: Path) -> Path:
    for folder in corpus.iterdir():
        if folder.is_dir() and local_folder.is_asset_folder_name(folder.name):
            for path in folder.rglob("*"):
                if path.is_file():
                    copy = target / path.relative_to(corpus)
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    copy.write_bytes(path.read_bytes())
                    stat = path.stat()
                    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return target


def test_the_store_gives_the_records_the_folders_give(corpus, tmp_path, parses):
    plain = list(LocalFolderRecords(str(corpus)).records())
    source = LocalFolderRecords(str(corpus), store=RecordStore(tmp_path / "store", str(corpus)))
    assert list(source.records()) == plain  # the first pass parses
    assert list(source.records()) == plain  # later passes read the snapshot
    assert list(LocalFolderRecords(str(corpus), store=RecordStore(tmp_path / "store", str(corpus))).records()) == plain
    folders = LocalFolderRecords(str(corpus)).asset_folders()
    assert parses == folders * 2  # the plain read, then the first pass of the store; never again


def test_changed_new_and_gone_folders(corpus, tmp_path, parses):
    root = _copy(corpus, tmp_path / "records")
    folders = LocalFolderRecords(str(root)).asset_folders()
    store_folder = tmp_path / "store"
    list(LocalFolderRecords(str(root), store=RecordStore(store_folder, str(root))).records())
    parses.clear()

    changed = root / folders[3] / local_folder.WHOLE_RECORD_FILE
    if not changed.exists():
        changed = next((root / f / local_folder.WHOLE_RECORD_FILE for f in folders
                        if (root / f / local_folder.WHOLE_RECORD_FILE).exists()))
    record = json.loads(changed.read_text())
    record["_last_modified"] = "2030-01-01T00:00:00Z"
    changed.write_text(json.dumps(record))
    gone = root / folders[0]
    for path in gone.rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted(gone.rglob("*"), reverse=True):
        path.rmdir()
    gone.rmdir()
    new = root / "999999_2030-01-01_00-00-00"
    new.mkdir()
    (new / local_folder.WHOLE_RECORD_FILE).write_text(json.dumps({"_id": "new", "name": new.name}))

    store = RecordStore(store_folder, str(root))
    read = list(LocalFolderRecords(str(root), store=store).records())
    assert sorted(parses) == sorted([changed.parent.name, new.name])
    assert read == list(LocalFolderRecords(str(root)).records())
    assert "2030-01-01T00:00:00Z" in {r.last_modified for r in read}
    assert set(store.signatures()) == set(LocalFolderRecords(str(root)).asset_folders())


def test_a_code_change_empties_the_store(corpus, tmp_path, monkeypatch, parses):
    list(LocalFolderRecords(str(corpus), store=RecordStore(tmp_path, str(corpus))).records())
    parses.clear()
    monkeypatch.setattr(record_store, "code_version", lambda: "another normaliser")
    store = RecordStore(tmp_path, str(corpus))
    assert store.signatures() == {}
    list(LocalFolderRecords(str(corpus), store=store).records())
    assert len(parses) == len(LocalFolderRecords(str(corpus)).asset_folders())


def test_each_run_parses_every_folder_once_and_a_kept_store_spares_the_next_run(corpus, tmp_path, parses):
    seen = []

    @asset
    def first(records: LocalRecordsResource) -> None:
        seen.append(len(list(records.records())))

    @asset(deps=[first])
    def second(records: LocalRecordsResource) -> None:
        seen.append(len(list(records.records())))

    folders = len(LocalFolderRecords(str(corpus)).asset_folders())
    for store in (None, str(tmp_path / "kept")):
        resource = LocalRecordsResource(root=str(corpus), record_store=store)
        for run in range(2):
            parses.clear()
            materialize([first, second], resources={"records": resource}, instance=DagsterInstance.ephemeral())
            # Without a kept store the process's temporary store also spares the second run.
            assert len(parses) == (folders if run == 0 else 0), (store, run)
    assert seen == [folders] * 8


def test_the_unique_values_of_a_run_are_its_snapshots_and_follow_changes_between_runs(corpus, tmp_path):
    root = _copy(corpus, tmp_path / "records")
    listed = {}

    @asset
    def unique_values(records: LocalRecordsResource) -> None:
        for _, attribute, fields in UNIQUE_VALUE_TABLES:
            listed[attribute] = records.distinct(attribute, fields)

    def distinct_in_folders() -> dict[str, list]:
        read = list(LocalFolderRecords(str(root)).records())
        return {attribute: sorted({getattr(r, attribute) for r in read} - {None}) for _, attribute, _ in UNIQUE_VALUE_TABLES}

    resource = LocalRecordsResource(root=str(root))
    materialize([unique_values], resources={"records": resource}, instance=DagsterInstance.ephemeral())
    assert listed == distinct_in_folders()
    assert all(listed.values())

    new = root / "999999_2030-01-01_00-00-00"
    new.mkdir()
    (new / local_folder.WHOLE_RECORD_FILE).write_text(json.dumps({
        "_id": "new", "name": new.name, "subject": {"subject_id": "999999", "genotype": "a new genotype"},
        "data_description": {"project_name": "A new project"},
    }))
    materialize([unique_values], resources={"records": resource}, instance=DagsterInstance.ephemeral())
    assert listed == distinct_in_folders()
    assert {"999999", "a new genotype", "A new project"} <= {v for values in listed.values() for v in values}
