"""Acceptance: the production resources give the same cache as the embedded default.

The same records (a generated corpus plus the real records of ../shared/fixtures, when present,
one of them also with nested data processes) are materialised twice: from local asset folders into
a local cache, and with BIODATA_CACHE_ENV=prod from the DocDB stand-in (the real MetadataDbClient
through its session seam), the open-data bucket and SESSION_DB on moto_server, into a cache on
moto_server.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import boto3
import pytest
from aind_dynamic_foraging_database import SESSION_DB
from dagster import DagsterInstance

from fixture_records import FIXTURE_RECORDS, needs_fixture_records
from biodata_cache_pipeline.cli import BuildOutcome, materialize_all
from docdb_standin import DROP, DocDbStandIn, records_from_folder
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.records import normalize_record
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.sources.docdb import DocDbError, DocDbSource, RetryPolicy
from biodata_cache_pipeline.snapshot import ATTRIBUTES
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables import RECORD_FIELDS

OPEN_DATA_BUCKET = "aind-open-data"
CACHE_BUCKET = "prod-like-cache"
PROD_CACHE = f"s3://{CACHE_BUCKET}/data-asset-cache"
DOCDB_URL = "https://api.allenneuraldynamics.org/v2/metadata_index/data_assets"
NESTED_FROM = FIXTURE_RECORDS / "v1" / "018d5ad8-5c64-4aae-9ed2-071447cd12c5.json"  # 1.x, 19 data processes
NESTED_NAME = "SmartSPIM_784354_2025-04-16_21-39-58_stitched_2025-05-22_00-00-00"


def nest_processes(record: dict) -> dict | None:
    """A copy of `record` whose data processes (1.x `processing.processing_pipeline.data_processes`,
    else `processing.data_processes`) are the first one and a nested list of the others, a shape
    real DocDB records have; None when it has fewer than two."""
    nested = copy.deepcopy(record)
    processing = nested.get("processing") or {}
    holder = processing.get("processing_pipeline") or processing
    processes = holder.get("data_processes")
    if not isinstance(processes, list) or len(processes) < 2:
        return None
    holder["data_processes"] = [processes[0], processes[1:]]
    return nested


def _clear_biodata_env(monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("BIODATA_") or name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name)


def _materialize(monkeypatch, env: dict[str, str]) -> BuildOutcome:
    _clear_biodata_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return materialize_all(DagsterInstance.ephemeral(), say=lambda _: None)


def _prod_env(moto_env: dict, standin: DocDbStandIn, cache_root: str, **settings: str) -> dict[str, str]:
    """Production resources with every default kept except the cache root; DocDB is the stand-in."""
    return {
        **moto_env,
        "BIODATA_CACHE_ENV": "prod",
        "BIODATA_DOCDB_LOOPBACK_PORT": str(standin.port),
        "BIODATA_DOCDB_PAGE_SIZE": "50",
        "BIODATA_DOCDB_BATCH_SIZE": "25",
        "BIODATA_DOCDB_RETRY_DELAY": "0",
        "BIODATA_CACHE_ROOT": cache_root,
        **settings,
    }


def cache_contents(root: str) -> dict[str, list[dict]]:
    """Rows of every table: unpartitioned tables by name, partitions as `<folder>/<key>=<value>`."""
    store = CacheStore(root)
    contents = {}
    for name, spec in TABLES.items():
        if spec.partitioned:
            for value in store.list_partitions(spec):
                contents[f"{spec.object_name}/{spec.partition_key}={value}"] = _rows(store.read_partition(spec, value))
        else:
            contents[name] = _rows(store.read_table(spec))
    return contents


def _rows(table) -> list[dict]:
    """Rows with NaN made comparable."""
    return [
        {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in table.to_pylist()
    ]


def assert_same_tables(actual_root: str, expected_root: str) -> None:
    expected, actual = cache_contents(expected_root), cache_contents(actual_root)
    assert sorted(actual) == sorted(expected)
    for key, rows in expected.items():
        assert actual[key] == rows, f"{key} differs"


def s3_objects(bucket: str, prefix: str) -> dict[str, tuple[str, bytes]]:
    s3 = boto3.client("s3")
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects[item["Key"]] = (item["ETag"], body)
    return objects


@pytest.fixture(scope="module")
def records_root(tmp_path_factory) -> Path:
    """A generated corpus, plus the real fixture records (read in place) as asset folders."""
    root = tmp_path_factory.mktemp("records")
    generate_corpus(root, assets=150, seed=5)
    for path in sorted(FIXTURE_RECORDS.glob("*/*.json")):
        record = json.loads(path.read_text())
        folder = root / record["name"]
        assert not folder.exists(), f"fixture {path} has the name of a generated asset"
        folder.mkdir()
        (folder / "metadata.nd.json").write_text(json.dumps(record))
    if NESTED_FROM.exists():
        record = nest_processes(json.loads(NESTED_FROM.read_text()))
        record.update(_id=f"{record['_id']}-nested", name=NESTED_NAME, location=f"s3://{OPEN_DATA_BUCKET}/{NESTED_NAME}")
        (root / NESTED_NAME).mkdir()
        (root / NESTED_NAME / "metadata.nd.json").write_text(json.dumps(record))
    return root


@pytest.fixture(scope="module")
def local_cache(records_root, tmp_path_factory) -> str:
    cache = str(tmp_path_factory.mktemp("local-cache"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert not _materialize(monkeypatch, {"BIODATA_SAMPLE_ROOT": str(records_root), "BIODATA_CACHE_ROOT": cache}).failures
    return cache


@pytest.fixture(scope="module")
def standin(records_root, moto_s3_env):
    """The records on the DocDB stand-in; their files on the open-data bucket and SESSION_DB on moto."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in moto_s3_env.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=OPEN_DATA_BUCKET)
        for path in sorted(p for p in records_root.rglob("*") if p.is_file()):
            s3.put_object(Bucket=OPEN_DATA_BUCKET, Key=str(path.relative_to(records_root)), Body=path.read_bytes())
        sessions_bucket, sessions_key = SESSION_DB.removeprefix("s3://").split("/", 1)
        s3.create_bucket(Bucket=sessions_bucket)
        s3.put_object(Bucket=sessions_bucket, Key=sessions_key,
                      Body=(records_root / "_foraging" / "session_table.parquet").read_bytes())
        s3.create_bucket(Bucket=CACHE_BUCKET)
    with DocDbStandIn(records_from_folder(str(records_root)), max_batch=40) as server:
        yield server


@pytest.fixture(scope="module")
def prod_cache(standin, moto_s3_env) -> tuple[str, list]:
    """The cache built by the production resources; and the DocDB requests that built it."""
    first = len(standin.requests)
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert not _materialize(monkeypatch, _prod_env(moto_s3_env, standin, PROD_CACHE)).failures
    return PROD_CACHE, standin.requests[first:]


def test_production_resources_build_the_same_cache_row_for_row(local_cache, prod_cache, records_root, aws_env):
    root, docdb_requests = prod_cache
    assert_same_tables(root, local_cache)

    contents = cache_contents(root)
    assert len(contents["asset_basics"]) > (150 if FIXTURE_RECORDS.is_dir() else 125)
    assert all(rows for key, rows in contents.items() if "=" not in key), "every table has rows"
    # The open-data lookups found files on the bucket, also for records assembled from core files
    # (their location is the local asset folder).
    smartspim = contents["assets_smartspim"]
    assert any(r["channel"] for r in smartspim) and any(r["raw_link"] for r in smartspim)
    assembled = {r["name"] for r in contents["asset_basics"] if (r["location"] or "").startswith(str(records_root))}
    assert any(r["curriculum_name"] for r in contents["behavior_curriculum"] if r["asset_name"] in assembled)
    registry = {t["name"]: t for t in CacheStore(root).read_registry()["tables"]}
    assert registry["asset_basics"]["build"]["source"] == DOCDB_URL
    assert registry["asset_basics"]["location"] == f"{PROD_CACHE}/{version_folder()}/asset_basics.pqt"
    local_registry = {t["name"]: t for t in CacheStore(local_cache).read_registry()["tables"]}
    assert local_registry["asset_basics"]["build"]["source"] == str(records_root)

    # One listing of _id + _last_modified paged by key, then the records fetched by `_id $in` batches,
    # projected on the fields the tables read; every find sorted by _id.
    finds = [params for method, route, params in docdb_requests if route == "find"]
    assert finds and all(p["sort"] == {"_id": 1} and p["projection"] and p["skip"] == 0 for p in finds)
    listing = [p for p in finds if p["projection"] == {"_id": 1, "_last_modified": 1, "last_modified": 1}]
    fetches = [p for p in finds if p not in listing]
    assert listing and all(not p["filter"] or set(p["filter"]["_id"]) == {"$gt"} for p in listing)
    in_batches = [p["filter"]["_id"]["$in"] for p in fetches]
    assert in_batches and max(len(batch) for batch in in_batches) <= 25
    fetched = [i for batch in in_batches for i in batch]
    assert len(fetched) == len(set(fetched)) == len(contents["asset_basics"]), "every record fetched once"
    assert set(fetches[0]["projection"]) <= set(RECORD_FIELDS) | {"_id", "_last_modified", "last_modified"}
    assert [route for _, route, _ in docdb_requests if route != "find"] == ["count_documents"]  # confirms the last empty page


@needs_fixture_records
def test_every_fixture_record_and_its_nested_processes_variant_read_from_docdb_as_whole():
    """Each fixture record, and each with its data processes made a dict and a nested list, read by
    the prod source (the real MetadataDbClient, projected on RECORD_FIELDS) from the stand-in,
    normalises as the whole record does (what the local source reads)."""
    originals = [json.loads(path.read_text()) for path in sorted(FIXTURE_RECORDS.glob("*/*.json"))]
    variants = [nested for nested in map(nest_processes, originals) if nested is not None]
    assert originals and len(variants) >= 5
    for records in (originals, variants):
        with DocDbStandIn(records, max_batch=4) as standin:
            source = DocDbSource(loopback_port=standin.port, fields=RECORD_FIELDS, retry=RetryPolicy(attempts=1))
            read = source.read_changed([(record["_id"], None, None) for record in records]).records
        assert {key: normalized for key, _, normalized in read} == {r["_id"]: normalize_record(r) for r in records}


@needs_fixture_records
def test_a_record_with_nested_data_processes_builds_as_from_its_asset_folder(local_cache, prod_cache, aws_env):
    """The 1.x record whose data processes hold a nested list (the stand-in answered 500 to its
    projection): its snapshot row from DocDB equals the one from its asset folder, the problem of
    the nested list included, and it has its tables' rows (`assert_same_tables` compares them)."""

    def snapshot_row(root: str) -> dict:
        rows = CacheStore(root).open_snapshot().table(["signature", *ATTRIBUTES])
        [row] = [row for row in rows.to_pylist() if row["name"] == NESTED_NAME]
        return {column: value for column, value in row.items() if column not in ("key", "signature")}

    prod, local = snapshot_row(prod_cache[0]), snapshot_row(local_cache)
    assert prod == local
    first = json.loads(NESTED_FROM.read_text())["processing"]["processing_pipeline"]["data_processes"][0]
    assert prod["process_times"] == [{"start": first["start_date_time"], "end": first["end_date_time"]}]
    assert any("processing.processing_pipeline.data_processes" in problem for problem in prod["problems"])
    assert NESTED_NAME in {row["name"] for row in cache_contents(prod_cache[0])["asset_basics"]}


def test_transient_docdb_failures_are_retried_and_the_cache_is_the_same(local_cache, standin, moto_s3_env, monkeypatch):
    # Within the ~22 requests of a build: in the listing and in the fetches (worker processes).
    standin.fail(2, 503, after=2)
    standin.fail(1, 429, after=3)
    standin.fail(1, DROP, after=4)
    standin.fail(2, 500, after=2)
    before = standin.failures_served
    root = f"s3://{CACHE_BUCKET}/retried"
    try:
        assert not _materialize(monkeypatch, _prod_env(moto_s3_env, standin, root)).failures
    finally:
        standin.heal()
    assert standin.failures_served - before == 6
    assert_same_tables(root, local_cache)


def test_a_docdb_outage_leaves_the_published_tables_untouched(prod_cache, standin, aws_env, monkeypatch):
    root, _ = prod_cache
    prefix = root.removeprefix(f"s3://{CACHE_BUCKET}/")
    before = s3_objects(CACHE_BUCKET, prefix)
    standin.fail(10**6, 503)
    try:
        outcome = _materialize(monkeypatch, _prod_env(aws_env, standin, root, BIODATA_DOCDB_RETRY_ATTEMPTS="3"))
    finally:
        standin.heal()
    (failure,) = outcome.failures
    assert failure.step == "record_snapshot" and DocDbError.__name__ in failure.detail
    assert "failed after 3 attempts" in failure.reason and DOCDB_URL in failure.reason
    # Every table of the nightly run reads the snapshot but foraging_sessions (its own source);
    # quality_control follows the published asset_basics, which did not move: no subject to rebuild.
    assert sorted(outcome.not_built) == sorted(set(TABLES) - {"foraging_sessions", "quality_control"})

    # The snapshot and every table built from it stay as they were; foraging_sessions does not read
    # DocDB and is built again, from the same data: the same bytes, so nothing is written.
    after = s3_objects(CACHE_BUCKET, prefix)
    assert f"{prefix}/{version_folder()}/_snapshot/records.parquet" in after
    assert after == before
