"""Whole builds from the DocDB stand-in (production resources, local files): a collection that
changes between listing pages, and a listing page wrongly answered `[]`."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance
from handmade_corpus import write_corpus

from biodata_cache_pipeline.cli import materialize_all
from docdb_standin import EMPTY, DocDbStandIn, records_from_folder
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.sources.docdb import DocDbError
from biodata_cache_pipeline.storage import CacheStore

DOCDB_URL = "https://api.allenneuraldynamics.org/v2/metadata_index/data_assets"
SUBJECTS = [str(600000 + i) for i in range(10)]  # 4 records each: 40 records, 10 listing pages of 4


def _build(monkeypatch, standin: DocDbStandIn, samples: Path, cache: Path):
    settings = {
        "BIODATA_CACHE_ENV": "prod",
        "BIODATA_DOCDB_LOOPBACK_PORT": str(standin.port),
        "BIODATA_DOCDB_RETRY_DELAY": "0",
        "BIODATA_OPEN_DATA_ROOT": str(samples),
        "BIODATA_FORAGING_SESSIONS": str(samples / "_foraging" / "session_table.parquet"),
        "BIODATA_CACHE_ROOT": str(cache),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return materialize_all(DagsterInstance.ephemeral(), say=lambda _: None)


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_a_changing_collection_then_one_empty_listing_page(tmp_path, monkeypatch):
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    write_corpus(samples, SUBJECTS, records_per_subject=4)
    documents = sorted(records_from_folder(str(samples)), key=lambda d: d["_id"])
    ids = [d["_id"] for d in documents]
    with DocDbStandIn(documents, max_batch=4) as standin:
        # Between the first two listing pages: a record inserted ahead of the cursor (read) and one
        # behind it (read by the next build); one deleted behind it (already listed) and one ahead.
        ahead = {**documents[20], "_id": ids[20] + "-new", "name": "behavior_600999_2025-02-01_03-04-05"}
        behind = {**documents[1], "_id": ids[1] + "-new", "name": "behavior_600998_2025-02-01_03-04-05"}
        standin.mutate(lambda c: (c.insert_many([ahead, behind]), c.delete_many({"_id": {"$in": [ids[2], ids[30]]}})),
                       after=1)
        assert not _build(monkeypatch, standin, samples, cache).failures
        listing = [p for _, route, p in standin.requests if route == "find" and "$in" not in str(p["filter"])]
        assert len(listing) > 5, "the mutation came between listing pages"
        published = CacheStore(str(cache)).read_columns(ASSET_BASICS, ["_id"]).column("_id").to_pylist()
        assert sorted(published) == sorted(set(ids) - {ids[2], ids[30]} | {ahead["_id"]})

        # One listing page answered [] when 36 of the 40 records were listed: 10% short, under the
        # publish guard's limit, so only the count check stops it.
        before = _files(cache)
        standin.requests.clear()
        standin.fail(1, EMPTY, after=9)
        outcome = _build(monkeypatch, standin, samples, cache)
    (failure,) = outcome.failures
    assert failure.step == "record_snapshot" and DocDbError.__name__ in failure.detail
    assert f"DocDB find at {DOCDB_URL} answered no documents" in failure.reason
    assert "after 36 read, but count_documents counts 4 matching" in failure.reason
    assert ASSET_BASICS.name in outcome.not_built
    assert _files(cache) == before, "the previous snapshot and every table stay as they were"
