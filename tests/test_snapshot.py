"""The record snapshot: rows round-trip to the same records, tables built from it equal tables
built from the records, and an incremental refresh equals a full rebuild (asset folders and the
DocDB stand-in), in worker processes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fixture_records import FIXTURE_RECORDS, needs_fixture_records
from snapshot_rows import snapshot_rows

from biodata_cache_client import layout
from biodata_cache_pipeline import snapshot_refresh
from biodata_cache_pipeline.assets.snapshot import refresh_stored_snapshot
from docdb_standin import DocDbStandIn, records_from_folder
from biodata_cache_pipeline.records import NormalizedRecord, RecordTally, normalize_record
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.snapshot import ATTRIBUTES, RecordSnapshot, fingerprint, json_text, json_value, to_batch, to_records
from biodata_cache_pipeline.snapshot_refresh import refresh_snapshot
from biodata_cache_pipeline.sources.docdb import DocDbSource
from biodata_cache_pipeline.sources.local_folder import LocalFolderRecords, LocalFolderSource, files_signature
from biodata_cache_pipeline.sources.open_data import OpenDataStore
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables import RECORD_FIELDS
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS_ATTRIBUTES, build_asset_basics
from biodata_cache_pipeline.tables.assets_smartspim import ASSETS_SMARTSPIM_ATTRIBUTES, build_assets_smartspim
from biodata_cache_pipeline.tables.platform_fib import PLATFORM_FIB_ATTRIBUTES, build_platform_fib
from biodata_cache_pipeline.tables.platform_qc import PLATFORM_QC_ATTRIBUTES, PLATFORMS, build_platform_qc, qc_by_name
from biodata_cache_pipeline.tables.quality_control import QUALITY_CONTROL_ATTRIBUTES, build_quality_control
from biodata_cache_pipeline.tables.source_data import SOURCE_DATA_ATTRIBUTES, build_source_data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("snapshot-corpus")
    generate_corpus(out, assets=120, seed=5)
    return out


def fixture_raw_records() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURE_RECORDS.rglob("*.json"))]


def snapshot_of(records: list[NormalizedRecord], path: Path) -> RecordSnapshot:
    batch = to_batch((f"{i:06d}", None, record) for i, record in enumerate(records))
    pq.write_table(pa.Table.from_batches([batch]), path, row_group_size=7)  # several row groups
    return RecordSnapshot(pq.ParquetFile(path))


def refresh(source, out: Path, previous: Path | None = None, **options):
    """Refresh into `out` from the snapshot at `previous`; the report and the up-to-date rows
    (those of `previous` when nothing changed: then nothing is written)."""
    old = RecordSnapshot(pq.ParquetFile(previous)) if previous else None
    report = refresh_snapshot(source, old, str(out), **options)
    if report.unchanged:
        assert not out.exists() or out.stat().st_size == 0
        return report, pq.read_table(previous)
    return report, pq.read_table(out)


@pytest.mark.parametrize(
    "value",
    [None, "text", "", 0, -3, 2**70, 1.5, 1e300, math.inf, True, [1, "a", None], {"k": [1.25, {"x": None}]}, "\u00fc\u2603"],
)
def test_json_text_reads_back_as_the_same_value(value):
    assert json_value(json_text(value)) == value


def test_json_text_keeps_nan():
    assert math.isnan(json_value(json_text(float("nan"))))
    assert math.isnan(json_value(json_text({"a": float("nan")}))["a"])  # not turned into null


@needs_fixture_records
def test_every_fixture_record_round_trips_through_snapshot_rows(tmp_path):
    records = [normalize_record(raw) for raw in fixture_raw_records()]
    assert any(r.qc_metrics for r in records) and any(r.data_streams for r in records)
    snapshot = snapshot_of(records, tmp_path / "s.parquet")
    assert list(snapshot.records(snapshot.file.schema_arrow.names)) == records


def test_generated_records_and_odd_values_round_trip(corpus, tmp_path):
    records = list(LocalFolderRecords(str(corpus)).records())
    odd = normalize_record(
        {
            "_id": "odd",
            "name": "odd_2025-01-01_00-00-00",
            "quality_control": {
                "metrics": [
                    {"name": "nan", "value": float("nan"), "status_history": [{"status": "Pass"}]},
                    {"name": "big", "value": 2**80, "tags": {"probe": 2**65}},
                    {"name": "list", "value": [1, None, "x"], "tags": ["a", "b"]},
                ],
                "status": {"a": "Pass"},
            },
        }
    )
    snapshot = snapshot_of([*records, odd], tmp_path / "s.parquet")
    read = list(snapshot.records(snapshot.file.schema_arrow.names))
    assert list(to_records(snapshot.table(snapshot.file.schema_arrow.names), slice_rows=5)) == read
    assert read[:-1] == records
    assert str(read[-1].qc_metrics[0].value) == "nan" and read[-1].qc_metrics[1:] == odd.qc_metrics[1:]


def tables_built(records: list[NormalizedRecord], store: OpenDataStore, snapshot: RecordSnapshot | None) -> dict:
    """Every record-based table, from the records (snapshot None) or from the snapshot's columns."""

    def read(attributes):
        if snapshot is None:
            return iter(records)
        return snapshot.records(attributes + RecordTally.ATTRIBUTES)

    tables = {
        "asset_basics": build_asset_basics(
            snapshot_rows(records) if snapshot is None else snapshot.table(ASSET_BASICS_ATTRIBUTES)
        ),
        "source_data": build_source_data(read(SOURCE_DATA_ATTRIBUTES)),
        "platform_fib": build_platform_fib(read(PLATFORM_FIB_ATTRIBUTES)),
    }
    smartspim_rows = snapshot_rows(records) if snapshot is None else snapshot.table(ASSETS_SMARTSPIM_ATTRIBUTES)
    tables["assets_smartspim"] = build_assets_smartspim(smartspim_rows, tables["source_data"], store)
    subjects = {r.subject_id for r in records} - {None}
    if snapshot is None:
        qc = build_quality_control(snapshot_rows(records), subjects)
    else:
        qc = {}
        for found, rows in snapshot.rows_by("subject_id", subjects, QUALITY_CONTROL_ATTRIBUTES, rows=10):
            qc.update(build_quality_control(rows, found))
    tables.update({f"qc/{key}": table for key, table in qc.items()})
    qc = qc_by_name(snapshot_rows(records) if snapshot is None else snapshot.table(PLATFORM_QC_ATTRIBUTES))
    basics = tables["asset_basics"]
    tables.update({f"platform_qc/{p}": build_platform_qc(basics, qc, p) for p in PLATFORMS})
    return tables


def assert_same_tables(from_records: dict, from_snapshot: dict) -> None:
    assert from_records.keys() == from_snapshot.keys()
    for name, table in from_records.items():
        assert table.equals(from_snapshot[name]), name
    assert sum(t.num_rows for t in from_records.values()) > 0


def test_tables_from_the_snapshot_equal_tables_from_the_records(corpus, tmp_path):
    """Each table's declared snapshot columns are all it reads: a missing one would change a table."""
    records = list(LocalFolderRecords(str(corpus)).records())
    store = OpenDataStore(str(corpus))
    snapshot = snapshot_of(records, tmp_path / "s.parquet")
    built = tables_built(records, store, snapshot)
    assert sum(len(t) for name, t in built.items() if name.startswith("qc/")) > 0
    assert_same_tables(tables_built(records, store, None), built)


@needs_fixture_records
def test_tables_from_the_snapshot_equal_tables_from_the_fixture_records(tmp_path):
    records = [normalize_record(raw) for raw in fixture_raw_records()]
    store = OpenDataStore(str(tmp_path))
    assert_same_tables(tables_built(records, store, None), tables_built(records, store, snapshot_of(records, tmp_path / "s.parquet")))


def change_corpus(root: Path) -> tuple[str, str, str]:
    """Add one asset folder, change one record, remove one; return their names."""
    folders = LocalFolderRecords(str(root)).asset_folders()
    removed, changed, template = folders[3], folders[10], folders[20]
    shutil.rmtree(root / removed)
    record = json.loads((root / changed / "metadata.nd.json").read_text())
    record["subject"]["subject_details"]["genotype"] = "changed/wt"
    (root / changed / "metadata.nd.json").write_text(json.dumps(record))
    added = "999999_2030-01-01_00-00-00"
    shutil.copytree(root / template, root / added)
    return added, changed, removed


def test_incremental_refresh_of_asset_folders_equals_a_full_rebuild(corpus, tmp_path):
    root = tmp_path / "records"
    shutil.copytree(corpus, root)
    source = LocalFolderSource(str(root))
    first, rows = refresh(source, tmp_path / "first.parquet", workers=2, chunk_size=7)
    assert (first.records, first.added, first.read, first.rebuilt) == (len(rows), len(rows), len(rows), "no snapshot yet")
    unreadable = [reason for reason in first.skipped_reasons if "unreadable" in reason]
    assert unreadable and all(reason.split(":")[0] in rows.column("key").to_pylist() for reason in unreadable)
    assert rows.column("key").to_pylist() == sorted(rows.column("key").to_pylist())

    unchanged, same_rows = refresh(source, tmp_path / "again.parquet", tmp_path / "first.parquet", workers=2, chunk_size=7)
    assert (unchanged.added, unchanged.changed, unchanged.removed, unchanged.read, unchanged.rebuilt) == (0, 0, 0, 0, None)
    assert unchanged.unchanged and same_rows.equals(rows)

    added, changed, removed = change_corpus(root)
    update, updated = refresh(source, tmp_path / "update.parquet", tmp_path / "first.parquet", workers=2, chunk_size=7)
    assert (update.added, update.changed, update.removed, update.read) == (1, 1, 1, 2) and not update.unchanged
    _, rebuilt = refresh(source, tmp_path / "full.parquet", workers=1)
    assert updated.equals(rebuilt)
    keys = updated.column("key").to_pylist()
    assert added in keys and changed in keys and removed not in keys
    genotype = updated.column("genotype").to_pylist()[keys.index(changed)]
    assert genotype == "changed/wt"


def store_with(snapshot: Path, root: Path) -> CacheStore:
    """A cache store whose stored snapshot is a copy of the snapshot file `snapshot`."""
    store = CacheStore(str(root))
    target = root / layout.snapshot_file(store.version)
    target.parent.mkdir(parents=True)
    shutil.copy(snapshot, target)
    return store


def stored_rows(store: CacheStore) -> pa.Table:
    """Every column of the snapshot stored in `store`, as the tables read it (changes included)."""
    return store.open_snapshot().table(["signature", *ATTRIBUTES])


def test_a_few_changes_are_stored_beside_the_rows_and_read_as_a_full_rebuild(corpus, tmp_path, monkeypatch):
    """Nights with few changes publish only them (changes.parquet), leaving the rows file as it
    is; reads give what a full rebuild gives, after one night and after two (a record changed
    again, an added one removed); changes past `CHANGES_FRACTION` write every row again."""
    root = tmp_path / "records"
    shutil.copytree(corpus, root)
    source, store = LocalFolderSource(str(root)), CacheStore(str(tmp_path / "cache"))
    rows_file = tmp_path / "cache" / layout.snapshot_file(store.version)
    changes_file = tmp_path / "cache" / layout.snapshot_changes_file(store.version)

    def full_rebuild() -> pa.Table:
        return refresh(source, tmp_path / "full.parquet", workers=1)[1]

    assert refresh_stored_snapshot(store, source).written == "rows"
    first_rows = rows_file.read_bytes()
    added, changed, removed = change_corpus(root)
    night = refresh_stored_snapshot(store, source)
    assert (night.written, night.added, night.changed, night.removed, night.records) == ("changes", 1, 1, 1, len(corpus_keys(root)))
    assert rows_file.read_bytes() == first_rows and changes_file.exists()
    assert stored_rows(store).equals(full_rebuild())

    record = json.loads((root / changed / "metadata.nd.json").read_text())
    record["subject"]["subject_details"]["genotype"] = "changed/again"
    (root / changed / "metadata.nd.json").write_text(json.dumps(record))
    shutil.rmtree(root / added)
    second = refresh_stored_snapshot(store, source)
    assert (second.written, second.changed, second.removed) == ("changes", 1, 1)
    rows = stored_rows(store)
    assert rows.equals(full_rebuild()) and rows_file.read_bytes() == first_rows
    keys = rows.column("key").to_pylist()
    assert added not in keys and removed not in keys and rows.column("genotype")[keys.index(changed)].as_py() == "changed/again"
    assert refresh_stored_snapshot(store, source).written is None

    monkeypatch.setattr(snapshot_refresh, "CHANGES_FRACTION", 0.0)
    shutil.copytree(root / changed, root / added)
    compacted = refresh_stored_snapshot(store, source)
    assert (compacted.written, compacted.added) == ("rows", 1) and not changes_file.exists()
    assert store.open_snapshot().changes is None and stored_rows(store).equals(full_rebuild())


def corpus_keys(root: Path) -> list[str]:
    return LocalFolderRecords(str(root)).asset_folders()


def test_changes_made_for_other_rows_are_ignored(corpus, tmp_path):
    """A changes file names the rows file it changes: once the rows are written again (by a later
    refresh, or by one killed before it removed the old changes), it no longer applies."""
    root = tmp_path / "records"
    shutil.copytree(corpus, root)
    source, store = LocalFolderSource(str(root)), CacheStore(str(tmp_path / "cache"))
    refresh_stored_snapshot(store, source)
    change_corpus(root)
    assert refresh_stored_snapshot(store, source).written == "changes"
    stale_changes = store.open_snapshot().changes
    _, now = refresh(source, tmp_path / "now.parquet", workers=1)  # every row, as read now
    snapshot = RecordSnapshot(pq.ParquetFile(tmp_path / "now.parquet"), stale_changes)
    assert snapshot.changes is None and snapshot.table(["signature", *ATTRIBUTES]).equals(now)


def test_a_folder_is_read_again_when_the_files_its_record_comes_from_change(corpus, tmp_path):
    """A folder with `metadata.nd.json` is read from that file alone: another file added beside it
    changes nothing. A folder of core files is read again when one of them changes."""
    root = tmp_path / "records"
    shutil.copytree(corpus, root)
    source = LocalFolderSource(str(root))
    refresh(source, tmp_path / "first.parquet")
    folders = LocalFolderRecords(str(root)).asset_folders()
    whole = next(f for f in folders if (root / f / "metadata.nd.json").exists())
    cores = next(f for f in folders if not (root / f / "metadata.nd.json").exists() and (root / f / "subject.json").exists())

    (root / whole / "subject.json").write_text('{"subject_id": "not read"}')
    beside, _ = refresh(source, tmp_path / "beside.parquet", tmp_path / "first.parquet")
    assert (beside.read, beside.unchanged) == (0, True)

    subject = json.loads((root / cores / "subject.json").read_text())
    (root / cores / "subject.json").write_text(json.dumps({**subject, "genotype": "core/changed"}))
    update, rows = refresh(source, tmp_path / "update.parquet", tmp_path / "first.parquet")
    assert (update.read, update.changed) == (1, 1)
    assert rows.column("genotype").to_pylist()[rows.column("key").to_pylist().index(cores)] == "core/changed"


def test_the_listing_gives_each_folder_the_signature_its_row_is_stored_with(corpus, tmp_path):
    """Unchanged folders are told from changed ones in the listing, before any record is read: the
    signature listed for each folder (whole-record and core-file folders alike) is the one its row
    was stored with. Otherwise every folder would be sent to be read again, every night."""
    _, rows = refresh(LocalFolderSource(str(corpus)), tmp_path / "s.parquet", workers=1)
    stored = dict(zip(rows.column("key").to_pylist(), rows.column("signature").to_pylist()))
    folders = LocalFolderRecords(str(corpus)).asset_folders()
    assert any((corpus / f / "metadata.nd.json").exists() for f in folders)
    assert any(not (corpus / f / "metadata.nd.json").exists() for f in folders)
    assert dict(LocalFolderSource(str(corpus)).listing()) == stored


def test_a_metadata_file_that_cannot_be_followed_is_listed_as_its_folder_is_read(corpus, tmp_path):
    """A `metadata.nd.json` that is a symlink loop does not stop the listing: the folder is listed
    by its other files, as the record is read from them."""
    root = tmp_path / "records"
    shutil.copytree(corpus, root)
    folder = next(f for f in LocalFolderRecords(str(root)).asset_folders() if (root / f / "subject.json").exists())
    (root / folder / "metadata.nd.json").unlink(missing_ok=True)
    (root / folder / "metadata.nd.json").symlink_to("metadata.nd.json")
    reader = LocalFolderRecords(str(root))
    assert dict(LocalFolderSource(str(root)).listing())[folder] == files_signature(reader.record_files(folder))


def test_a_code_change_rebuilds_the_snapshot_in_full(corpus, tmp_path, monkeypatch):
    source = LocalFolderSource(str(corpus))
    first, _ = refresh(source, tmp_path / "first.parquet", workers=1)
    monkeypatch.setattr(snapshot_refresh, "code_version", lambda: "another normaliser")
    report, rows = refresh(source, tmp_path / "second.parquet", tmp_path / "first.parquet", workers=1)
    assert report.rebuilt == "the normaliser or the record readers changed"
    assert report.read == first.records == len(rows)


def test_the_snapshot_of_another_source_is_not_reused(corpus, tmp_path):
    refresh(LocalFolderSource(str(corpus)), tmp_path / "first.parquet", workers=1)
    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    report, _ = refresh(LocalFolderSource(str(other)), tmp_path / "second.parquet", tmp_path / "first.parquet", workers=1)
    assert report.rebuilt.startswith("the snapshot was made from") and report.read == report.records


def test_a_failing_refresh_raises_and_writes_no_snapshot(corpus, tmp_path, monkeypatch):
    def broken(self, entries):
        raise OSError("disk gone")

    monkeypatch.setattr(LocalFolderSource, "read_changed", broken)
    with pytest.raises(OSError, match="disk gone"):
        refresh_snapshot(LocalFolderSource(str(corpus)), None, str(tmp_path / "s.parquet"), workers=1)


def test_incremental_refresh_from_docdb_fetches_only_what_changed(corpus, tmp_path):
    documents = records_from_folder(str(corpus))
    for i, document in enumerate(documents):
        document["_last_modified"] = f"2025-01-01T00:00:{i % 60:02d}+00:00"
    with DocDbStandIn(documents, max_batch=13) as server:
        source = DocDbSource(loopback_port=server.port, page_size=20, batch_size=9, fields=RECORD_FIELDS)
        first, rows = refresh(source, tmp_path / "first.parquet", workers=2, chunk_size=11)
        assert first.records == len(documents) == rows.num_rows

        changed_id, removed_id = documents[5]["_id"], documents[8]["_id"]
        server.collection.update_one(
            {"_id": changed_id},
            {"$set": {"data_description.project_name": "Renamed", "_last_modified": "2026-01-01T00:00:00+00:00"}},
        )
        server.collection.delete_one({"_id": removed_id})
        new = {**documents[9], "_id": "zz-new", "name": "999999_2030-01-01_00-00-00"}
        server.collection.insert_one(new)
        server.requests.clear()
        update, updated = refresh(source, tmp_path / "update.parquet", tmp_path / "first.parquet", workers=1)
        assert (update.added, update.changed, update.removed, update.read) == (1, 1, 1, 2)
        stored = store_with(tmp_path / "first.parquet", tmp_path / "cache")
        assert refresh_stored_snapshot(stored, source).written == "changes"
        fetched = {i for _, route, p in server.requests if route == "find" and "$in" in json.dumps(p["filter"])
                   for i in p["filter"]["_id"]["$in"]}
        assert fetched == {changed_id, "zz-new"}

        _, rebuilt = refresh(source, tmp_path / "full.parquet", workers=1)
    assert updated.equals(rebuilt) and stored_rows(stored).equals(rebuilt)
    keys = updated.column("key").to_pylist()
    assert updated.column("project_name").to_pylist()[keys.index(changed_id)] == "Renamed"
    assert removed_id not in keys


def test_docdb_changes_between_listing_pages_read_every_record_present_throughout_once(corpus, tmp_path):
    """An insert and a delete on each side of the cursor between the first two listing pages (the
    stand-in's `mutate`): every record present throughout is in the snapshot, once, as read now."""
    documents = sorted(records_from_folder(str(corpus)), key=lambda d: d["_id"])
    ids = [d["_id"] for d in documents]
    inserted = {ids[5] + "-behind": documents[5], ids[40] + "-ahead": documents[40]}

    def change(collection):
        collection.insert_many([{**document, "_id": key} for key, document in inserted.items()])
        collection.delete_many({"_id": {"$in": [ids[3], ids[30]]}})

    with DocDbStandIn(documents, max_batch=13) as server:
        server.mutate(change, after=1)  # once the first listing page (ids[:13]) is answered
        source = DocDbSource(loopback_port=server.port, batch_size=9, fields=RECORD_FIELDS)
        report, rows = refresh(source, tmp_path / "changed.parquet", workers=2, chunk_size=11)
        _, now = refresh(source, tmp_path / "now.parquet", workers=1)
    keys = rows.column("key").to_pylist()
    assert len(keys) == len(set(keys)) == report.records
    present_throughout = set(ids) - {ids[3], ids[30]}
    assert set(keys) == present_throughout | {ids[40] + "-ahead"}  # the insert behind the cursor: next refresh
    assert rows.equals(now.filter(pc.invert(pc.equal(now.column("key"), ids[5] + "-behind"))))


def test_docdb_and_folder_snapshots_give_the_same_records(corpus, tmp_path):
    """The same records through either source (the DocDB one projected on the tables' fields)."""
    _, from_folders = refresh(LocalFolderSource(str(corpus)), tmp_path / "folders.parquet", workers=1)
    with DocDbStandIn(records_from_folder(str(corpus))) as server:
        source = DocDbSource(loopback_port=server.port, fields=RECORD_FIELDS)
        _, from_docdb = refresh(source, tmp_path / "docdb.parquet", workers=1)
    by_name = lambda table: sorted(  # noqa: E731
        (r for r in to_records(table.drop_columns(["problems"])) if r.name), key=lambda r: r.name
    )
    folder_records, docdb_records = by_name(from_folders), by_name(from_docdb)
    assert len(docdb_records) > 100 and docdb_records == folder_records


def test_fingerprint_follows_values_not_chunking():
    chunked = pa.table({"a": pa.chunked_array([[1, 2], [3]]), "b": [["x"], [], None]})
    whole = pa.table({"a": [1, 2, 3], "b": pa.chunked_array([[["x"]], [[], None]])})
    assert fingerprint("t", chunked) == fingerprint("t", whole)
    assert fingerprint("t", chunked) != fingerprint("t", whole.set_column(0, "a", pa.array([1, 2, 4])))
    assert fingerprint("t", chunked) != fingerprint("u", chunked)
