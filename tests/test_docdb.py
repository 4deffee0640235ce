"""The DocDB source through the real MetadataDbClient, against the loopback stand-in."""

from __future__ import annotations

import json

import pyarrow.fs as pafs
import pytest
import requests
from aind_data_access_api.document_db import MetadataDbClient

from docdb_standin import DROP, EMPTY, DocDbStandIn, records_from_folder
from biodata_cache_pipeline.sources.docdb import (
    DEFAULT_HOST,
    DocDbError,
    DocDbRecords,
    LoopbackAdapter,
    RetryPolicy,
    batches,
    docdb_session,
    projection,
)
from biodata_cache_pipeline.sources.open_data import OpenDataStore



def _record(i: int, **sections) -> dict:
    return {"_id": f"id-{i:02d}", "name": f"asset_{i:02d}_2025-01-01_00-00-00", **sections}


# Records in several layouts, some with wrong types.
RECORDS = [
    _record(0, subject={"subject_id": "100", "subject_details": {"genotype": "wt/wt"}}, data_description={"project_name": "P1"}),
    _record(1, subject={"subject_id": 101, "genotype": "Ai14/wt"}, data_description={"project_name": "P2"}),  # 1.x
    _record(2, subject="not an object"),
    _record(3, subject={"subject_id": True, "subject_details": [{"genotype": "in a list"}], "genotype": "1.x value"}),
    _record(4, subject={"subject_id": "0102", "subject_details": {"genotype": 7}, "genotype": "not used"}),
    _record(5, subject={"subject_id": "100", "subject_details": {"genotype": None}, "genotype": "null falls back"}),
    _record(6, data_description={"project_name": ["a list"]}),
    *[
        _record(i, subject={"subject_id": str(200 + i % 5)}, data_description={"project_name": f"P{i % 3}"})
        for i in range(7, 25)
    ],
]


@pytest.fixture
def standin():
    with DocDbStandIn(RECORDS, max_batch=4) as server:
        yield server


def make_client(server: DocDbStandIn) -> MetadataDbClient:
    session = docdb_session(DEFAULT_HOST, loopback_port=server.port)
    return MetadataDbClient(host=DEFAULT_HOST, version="v2", session=session)


def make_source(server: DocDbStandIn, sleeps: list | None = None, **options) -> DocDbRecords:
    sleep = sleeps.append if sleeps is not None else (lambda _: None)
    return DocDbRecords(make_client(server), sleep=sleep, **options)


def finds(server: DocDbStandIn) -> list[dict]:
    return [params for method, route, params in server.requests if route == "find"]


def test_the_library_client_pages_through_the_standin_by_its_session(standin):
    client = make_client(standin)
    adapter = client.session.get_adapter(f"https://{DEFAULT_HOST}/v2/metadata_index/data_assets/find")
    assert isinstance(adapter, LoopbackAdapter) and client.session.trust_env is False
    records = client.retrieve_docdb_records(filter_query={}, projection={"name": 1}, sort={"_id": 1})
    assert [r["_id"] for r in records] == sorted(r["_id"] for r in RECORDS)
    assert client._count_records({"subject.subject_id": "100"}) == {
        "total_record_count": len(RECORDS),
        "filtered_record_count": 2,
    }


def test_find_pages_by_key_sorted_by_id_with_the_projection_and_a_capped_server(standin):
    source = make_source(standin, page_size=10)
    documents = list(source.find(fields=["name", "subject.subject_id", "subject"]))
    assert [d["_id"] for d in documents] == sorted(r["_id"] for r in RECORDS)
    assert all(set(d) <= {"_id", "name", "subject"} for d in documents)
    requests_made = finds(standin)
    assert all(p["sort"] == {"_id": 1} and p["limit"] == 10 and p["skip"] == 0 for p in requests_made)
    assert all(p["projection"] == {"name": 1, "subject": 1} for p in requests_made)
    # The server returns at most 4 of the 25 per request: each page starts after the last _id seen, until [].
    assert len(RECORDS) == 25
    ids = sorted(r["_id"] for r in RECORDS)
    assert [p["filter"] for p in requests_made] == [{}] + [{"_id": {"$gt": ids[i]}} for i in range(3, 25, 4)] + [
        {"_id": {"$gt": ids[-1]}}
    ]


def test_paging_reads_every_record_present_throughout_once_while_the_collection_changes(standin):
    """An insert before the cursor and a delete behind it between two pages shift nothing."""
    documents = make_source(standin, page_size=5).find(fields=["name"])
    seen = [next(documents)["_id"] for _ in range(4)]  # the first page (4 documents, the server's cap)
    standin.collection.insert_one({"_id": "id-00a", "name": "inserted before the cursor"})
    standin.collection.delete_one({"_id": "id-01"})  # already read
    seen += [d["_id"] for d in documents]
    assert seen == sorted(r["_id"] for r in RECORDS)


def test_the_standin_mutates_the_collection_between_two_pages(standin):
    """`mutate` runs after the Nth request: an insert and a delete on each side of the cursor."""

    def change(collection):
        collection.insert_many([{"_id": "id-00a", "name": "behind"}, {"_id": "id-20a", "name": "ahead"}])
        collection.delete_many({"_id": {"$in": ["id-01", "id-21"]}})

    standin.mutate(change, after=1)  # once the first page (id-00 to id-03) is answered
    listed = [key for key, _ in make_source(standin).listing()]
    present_throughout = sorted({r["_id"] for r in RECORDS} - {"id-01", "id-21"})
    assert listed == sorted([*present_throughout, "id-01", "id-20a"])  # id-01 was read before its delete
    assert [d["_id"] for d in make_source(standin).by_id(listed, fields=["name"])] == sorted([*present_throughout, "id-20a"])


def test_an_empty_page_before_the_end_fails_naming_the_collection_and_the_counts(standin):
    standin.fail(1, EMPTY, after=2)  # the third page of 4: 8 of the 25 documents read
    with pytest.raises(DocDbError) as error:
        list(make_source(standin).listing())
    message = str(error.value)
    assert message.startswith(f"DocDB find at https://{DEFAULT_HOST}/v2/metadata_index/data_assets answered no documents")
    assert '{"_id": {"$gt": "id-07"}} after 8 read, but count_documents counts 17 matching' in message
    assert "\n" not in message


def test_the_empty_page_that_ends_a_scan_is_confirmed_by_one_count(standin):
    assert len(list(make_source(standin).listing())) == len(RECORDS)
    counts = [params for _, route, params in standin.requests if route == "count_documents"]
    assert counts == [{"filter": {"_id": {"$gt": "id-24"}}}]


def test_an_empty_answer_to_a_fetch_fails_unless_the_records_are_gone(standin):
    source = make_source(standin, batch_size=10)
    wanted = [r["_id"] for r in RECORDS[:10]]
    standin.fail(1, EMPTY, after=1)  # the second request for the batch: 6 of its ids left (4 per answer)
    with pytest.raises(DocDbError, match=r"after 4 read, but count_documents counts 6 matching"):
        list(source.by_id(wanted))
    standin.mutate(lambda collection: collection.delete_many({"_id": {"$in": wanted[4:]}}), after=1)
    assert [d["_id"] for d in source.by_id(wanted)] == wanted[:4]


def test_listing_and_fetching_by_id(standin):
    source = make_source(standin, batch_size=3)
    assert list(source.listing()) == [(r["_id"], None) for r in sorted(RECORDS, key=lambda r: r["_id"])]
    standin.requests.clear()
    wanted = [r["_id"] for r in RECORDS[2:9]] + ["no such id"]
    found = [d["_id"] for d in source.by_id(wanted, fields=["name"])]
    assert sorted(found) == sorted(wanted[:-1])
    in_lists = [p["filter"]["_id"]["$in"] for p in finds(standin)]
    assert {len(values) for values in in_lists} <= {1, 2, 3}
    assert sorted({v for values in in_lists for v in values}) == sorted(wanted)


def test_transient_failures_are_retried_with_backoff(standin):
    for status in (503, 429, DROP, 500):
        standin.fail(1, status)
    sleeps: list[float] = []
    source = make_source(standin, sleeps, retry=RetryPolicy(attempts=5, delay=0.5))
    assert len(list(source.find())) == len(RECORDS)
    assert standin.failures_served == 4
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_failures_in_the_middle_of_paging_lose_no_record(standin):
    standin.fail(2, 502, after=2)
    standin.fail(1, DROP, after=1)
    source = make_source(standin, page_size=5)
    assert [d["_id"] for d in source.find()] == sorted(r["_id"] for r in RECORDS)
    assert standin.failures_served == 3


def test_a_persistent_outage_fails_with_a_clear_error(standin):
    standin.fail(100, 503)
    sleeps: list[float] = []
    source = make_source(standin, sleeps, retry=RetryPolicy(attempts=3, delay=1.0))
    with pytest.raises(DocDbError) as error:
        list(source.listing())
    message = str(error.value)
    assert f"https://{DEFAULT_HOST}/v2/metadata_index/data_assets" in message
    assert "failed after 3 attempts" in message and "503" in message
    assert sleeps == [1.0, 2.0]


def test_a_rejected_request_is_not_retried(standin):
    source = make_source(standin)
    with pytest.raises(DocDbError, match=r"rejected: HTTP 400 .*unknown operator: \$bogus"):
        list(source.find({"name": {"$bogus": 1}}))
    assert len(finds(standin)) == 1


def test_retry_policy_waits():
    policy = RetryPolicy(attempts=6, delay=1.0, max_delay=8.0)
    assert [policy.wait(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.wait(1, retry_after=5.0) == 5.0
    assert policy.wait(1, retry_after=60.0) == 8.0


def test_projection_and_batches():
    assert projection(None) is None
    assert projection(["subject.subject_id", "subject", "quality_control", "a.b.c", "a.b"]) == {
        "a.b": 1,
        "quality_control": 1,
        "subject": 1,
    }
    assert list(batches(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="at least 1"):
        list(batches([1], 0))


def test_standin_answers_errors_as_json(standin):
    base = f"http://127.0.0.1:{standin.port}/v2/metadata_index/data_assets"
    assert requests.get(f"{base}/nothing", timeout=5).status_code == 404
    bad = requests.get(f"{base}/find", params={"filter": "{not json"}, timeout=5)
    assert bad.status_code == 400 and "bad request" in bad.json()["message"]
    assert requests.post(f"{base}/aggregate", json={"not": "a list"}, timeout=5).status_code == 400


def test_standin_refuses_records_without_id():
    with pytest.raises(ValueError, match="'nameless' has no _id"):
        DocDbStandIn([{"name": "nameless"}])
    with pytest.raises(ValueError, match="appears twice"):
        DocDbStandIn([{"_id": "a"}, {"_id": "a"}])


def test_standin_loads_asset_folders_as_the_local_source_assembles_them(tmp_path):
    folder = tmp_path / "behavior_1_2025-01-01_00-00-00"
    folder.mkdir()
    (folder / "subject.json").write_text(json.dumps({"subject_id": "1"}))
    (tmp_path / "not an asset").mkdir()
    [record] = records_from_folder(str(tmp_path))
    assert record["location"] == f"{tmp_path}/{folder.name}" and record["subject"] == {"subject_id": "1"}


def test_open_data_resolves_local_asset_folders_by_name(tmp_path):
    bucket = OpenDataStore("s3://aind-open-data", filesystem=pafs.LocalFileSystem())  # paths only
    expected = "s3://aind-open-data/a_2025-01-01_00-00-00/x.json"
    assert bucket.resolve("s3://aind-open-data/a_2025-01-01_00-00-00", "x.json") == expected
    assert bucket.resolve("/elsewhere/records/a_2025-01-01_00-00-00", "x.json") == expected
    local = OpenDataStore(str(tmp_path))
    assert local.resolve(f"{tmp_path}/a", "x") == f"{tmp_path}/a/x"
    assert local.resolve("/other/root/a", "x") == f"{tmp_path}/a/x"
    assert local.resolve("relative/a", "x") is None
