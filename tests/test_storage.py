"""CacheStore against a real local folder and a real S3 endpoint (moto_server on loopback, conftest.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from biodata_cache_client.schema.declaration import (
    BOOL,
    DOUBLE,
    INT64,
    STRING,
    STRING_LIST,
    UTC_TIMESTAMP,
    Column,
    SchemaMismatch,
    TableSpec,
)
from biodata_cache_pipeline.snapshot import ROWS
from biodata_cache_pipeline.storage import CacheStore, UnreadableObject

VERSION = "bdc-v0.1"

QC = TableSpec(
    name="quality_control",
    description="Metrics per subject.",
    type="asset",
    folder="qc",
    partition_key="subject_id",
    columns=(
        Column("name", STRING, "Metric name."),
        Column("subject_id", STRING, "Subject id (the partition key)."),
        Column("value", DOUBLE, "Metric value."),
    ),
)

# Partition key only in the path, as for platform_qc: readers must decode it from the folder name.
PER_PLATFORM = TableSpec(
    name="platform_status",
    description="Statuses per platform.",
    type="platform",
    folder="platform_status",
    partition_key="platform",
    columns=(Column("status", STRING, "Status."),),
)

WIDE = TableSpec(
    name="asset_basics",
    description="One row per asset.",
    type="metadata",
    columns=(
        Column("asset_name", STRING, "Asset name."),
        Column("experimenters", STRING_LIST, "Experimenters."),
        Column("n_files", INT64, "File count."),
        Column("score", DOUBLE, "A metric."),
        Column("is_raw", BOOL, "Raw asset."),
        Column("acquired_at", UTC_TIMESTAMP, "Acquisition start."),
    ),
)

ODD_VALUES = ["a/b", "50%", "with space", "a,b", "ü", "tab\tend", "bell\x07", "007", "828418", "x=y"]


def wide_table(rows: int = 6) -> pa.Table:
    return WIDE.from_columns(
        {
            "asset_name": [f"asset_{i % 3}" for i in range(rows)],
            "experimenters": [["Ann", "Bo"] if i % 2 else ["Ann"] for i in range(rows)],
            "n_files": [i % 2 for i in range(rows)],
            "score": [0.5 * i for i in range(rows)],
            "is_raw": [i % 2 == 0 for i in range(rows)],
            "acquired_at": [datetime(2024, 5, 1, i, tzinfo=timezone.utc) for i in range(rows)],
        }
    )


def qc_table(subject_id: str, value: float = 1.0) -> pa.Table:
    return QC.from_columns({"name": ["m1", "m2"], "subject_id": [subject_id] * 2, "value": [value, value + 1]})


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def temp_files_under(root: Path) -> list[str]:
    return [f for f in files_under(root) if f.endswith(".tmp")]


@pytest.fixture
def store(tmp_path: Path) -> CacheStore:
    return CacheStore(str(tmp_path), version=VERSION)


# -- paths -------------------------------------------------------------------------------------


def test_paths_match_the_layout(tmp_path: Path, store: CacheStore):
    assert store.root_uri == str(tmp_path)
    assert store.partition_path(QC, "828418") == f"{tmp_path}/bdc-v0.1/qc/subject_id=828418/data.pqt"
    assert store.table_location(QC) == f"{tmp_path}/bdc-v0.1/qc/"
    assert store.table_location(WIDE) == f"{tmp_path}/bdc-v0.1/asset_basics.pqt"

    store.write_partition(QC, "828418", qc_table("828418"))
    store.write_table(WIDE, wide_table())
    store.publish_metadata(QC, {"row_count": 2})
    store.publish_metadata(WIDE, {"row_count": 6})
    store.register_version()
    visible = [f for f in files_under(tmp_path) if not f.startswith(".staging") and not f.endswith(".lock")]
    assert visible == [
        "bdc-v0.1/asset_basics.json",
        "bdc-v0.1/asset_basics.pqt",
        "bdc-v0.1/cache_registry.json",
        "bdc-v0.1/cache_registry/asset_basics.json",
        "bdc-v0.1/cache_registry/quality_control.json",
        "bdc-v0.1/qc.json",
        "bdc-v0.1/qc/subject_id=828418/data.pqt",
        "cache_versions.json",
    ]


def test_relative_root_is_resolved(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CacheStore("./.biodata-cache").root_uri == str(tmp_path / ".biodata-cache")


def test_s3_locations():
    s3 = CacheStore(
        "s3://allen-data-views/data-asset-cache/",
        version=VERSION,
        filesystem=pafs.S3FileSystem(anonymous=True, region="us-west-2"),
    )
    assert s3.root_uri == "s3://allen-data-views/data-asset-cache"
    assert s3.table_location(QC) == "s3://allen-data-views/data-asset-cache/bdc-v0.1/qc/"
    assert s3.table_location(WIDE) == "s3://allen-data-views/data-asset-cache/bdc-v0.1/asset_basics.pqt"
    assert s3.partition_path(QC, "828418") == "allen-data-views/data-asset-cache/bdc-v0.1/qc/subject_id=828418/data.pqt"


def test_wrong_table_kind_is_rejected(store: CacheStore):
    with pytest.raises(ValueError, match="quality_control is partitioned"):
        store.write_table(QC, qc_table("1"))
    with pytest.raises(ValueError, match="asset_basics is unpartitioned"):
        store.write_partition(WIDE, "1", wide_table())


# -- partition values --------------------------------------------------------------------------


def test_partition_values_are_encoded_in_the_path_only(store: CacheStore):
    assert store.partition_path(QC, "007").endswith("/qc/subject_id=007/data.pqt")
    assert store.partition_path(QC, "A-z_0.9").endswith("/qc/subject_id=A-z_0.9/data.pqt")
    assert store.partition_path(QC, "a/b").endswith("/qc/subject_id=a%2Fb/data.pqt")
    assert store.partition_path(QC, "ü x,%").endswith("/qc/subject_id=%C3%BC%20x%2C%25/data.pqt")
    for value in ODD_VALUES:
        assert store.partition_path(QC, value).count("/") == store.partition_path(QC, "1").count("/")


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_unstorable_partition_values_are_rejected(store: CacheStore, value: str):
    with pytest.raises(ValueError, match=f"partition value {value!r}"):
        store.write_partition(QC, value, qc_table(value))


@pytest.mark.parametrize("spec", [QC, PER_PLATFORM], ids=["key stored", "key in path only"])
def test_partition_values_round_trip(tmp_path: Path, store: CacheStore, spec: TableSpec):
    for value in ODD_VALUES:
        if spec is QC:
            store.write_partition(spec, value, qc_table(value))
        else:
            store.write_partition(spec, value, spec.from_columns({"status": [f"status of {value}"]}))

    assert store.list_partitions(spec) == sorted(ODD_VALUES)
    for value in ODD_VALUES:
        assert store.read_partition(spec, value).num_rows == (2 if spec is QC else 1)

    key = spec.partition_key
    folder = tmp_path / VERSION / spec.object_name
    dataset = ds.dataset(
        folder, format="parquet", partitioning=ds.partitioning(pa.schema([(key, pa.string())]), flavor="hive")
    )
    assert sorted(set(dataset.to_table().column(key).to_pylist())) == sorted(ODD_VALUES)

    rows = duckdb.sql(
        f"SELECT DISTINCT {key} FROM read_parquet('{folder}/**', hive_partitioning=true, union_by_name=true, "
        f"hive_types={{'{key}': VARCHAR}})"
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(ODD_VALUES)


def test_partition_rows_must_belong_to_the_partition(store: CacheStore):
    with pytest.raises(ValueError, match=r"subject_id \['2'\] do not belong in partition '1'"):
        store.write_partition(QC, "1", qc_table("2"))
    assert store.list_partitions(QC) == []


def test_delete_partition_removes_object_and_folder(tmp_path: Path, store: CacheStore):
    for value in ["1", "a/b"]:
        store.write_partition(QC, value, qc_table(value))
    store.delete_partition(QC, "a/b")
    assert store.list_partitions(QC) == ["1"]
    assert sorted(p.name for p in (tmp_path / VERSION / "qc").iterdir()) == ["subject_id=1"]
    store.delete_partition(QC, "a/b")  # already gone: nothing to do
    store.delete_partition(QC, "1")
    assert store.list_partitions(QC) == []
    assert not store.table_exists(QC)


# -- parquet -----------------------------------------------------------------------------------


def test_writes_are_deterministic(tmp_path: Path):
    first = CacheStore(str(tmp_path / "a"), version=VERSION)
    second = CacheStore(str(tmp_path / "b"), version=VERSION)
    first.write_table(WIDE, wide_table())
    written = (tmp_path / "a" / VERSION / "asset_basics.pqt").read_bytes()
    first.write_table(WIDE, wide_table())
    second.write_table(WIDE, wide_table())
    assert (tmp_path / "a" / VERSION / "asset_basics.pqt").read_bytes() == written
    assert (tmp_path / "b" / VERSION / "asset_basics.pqt").read_bytes() == written


def test_parquet_encodings(tmp_path: Path, store: CacheStore):
    from_pandas = pa.Table.from_pandas(wide_table().to_pandas(), schema=WIDE.schema, preserve_index=False)
    assert b"pandas" in from_pandas.schema.metadata
    store.write_table(WIDE, from_pandas)

    parquet = pq.ParquetFile(tmp_path / VERSION / "asset_basics.pqt")
    chunks = {
        parquet.metadata.row_group(0).column(i).path_in_schema: parquet.metadata.row_group(0).column(i)
        for i in range(parquet.metadata.num_columns)
    }
    assert sorted(chunks) == sorted(
        ["asset_name", "experimenters.list.element", "n_files", "score", "is_raw", "acquired_at"]
    )
    assert {chunk.compression for chunk in chunks.values()} == {"ZSTD"}
    for dictionary_encoded in ["asset_name", "experimenters.list.element", "n_files", "acquired_at"]:
        assert "RLE_DICTIONARY" in chunks[dictionary_encoded].encodings, dictionary_encoded
    assert "BYTE_STREAM_SPLIT" in chunks["score"].encodings
    assert "RLE_DICTIONARY" not in chunks["score"].encodings
    assert b"pandas" not in (parquet.metadata.metadata or {})
    assert parquet.schema_arrow.equals(WIDE.schema)
    assert store.read_table(WIDE).equals(wide_table())


def test_zero_rows_keep_the_schema(tmp_path: Path, store: CacheStore):
    store.write_table(WIDE, WIDE.empty())
    store.write_partition(QC, "1", QC.empty())
    assert pq.read_schema(tmp_path / VERSION / "asset_basics.pqt").equals(WIDE.schema)
    empty = store.read_table(WIDE)
    assert empty.num_rows == 0 and empty.schema.equals(WIDE.schema)
    assert store.read_partition(QC, "1").schema.equals(QC.schema)
    assert store.table_exists(WIDE) and store.table_exists(QC)


def test_missing_table_is_not_empty(tmp_path: Path, store: CacheStore):
    assert not store.table_exists(WIDE)
    with pytest.raises(FileNotFoundError, match=f"asset_basics.pqt \\(cache root {tmp_path}\\)"):
        store.read_table(WIDE)


def test_reading_a_column_the_stored_table_lacks_names_it(tmp_path: Path, store: CacheStore):
    """A published table without a column asked for (written by an older version or by hand) is
    unreadable for that read, with the column named: never a table silently missing it."""
    (tmp_path / VERSION).mkdir()
    pq.write_table(wide_table().drop_columns(["n_files"]), tmp_path / VERSION / "asset_basics.pqt")
    assert store.read_columns(WIDE, ["asset_name"]).column_names == ["asset_name"]
    with pytest.raises(UnreadableObject, match="asset_basics.pqt .*no column n_files"):
        store.read_columns(WIDE, ["asset_name", "n_files"])


# -- failed writes -----------------------------------------------------------------------------


def test_schema_mismatch_keeps_the_previous_object(tmp_path: Path, store: CacheStore):
    store.write_table(WIDE, wide_table())
    path = tmp_path / VERSION / "asset_basics.pqt"
    before = path.read_bytes()
    wrong = wide_table().set_column(2, "n_files", pa.array(["1"] * 6))
    with pytest.raises(SchemaMismatch, match=f"n_files is string.*{path} \\(cache root {tmp_path}\\)"):
        store.write_table(WIDE, wrong)
    assert path.read_bytes() == before
    assert temp_files_under(tmp_path) == []


def test_failure_while_encoding_keeps_the_previous_object(tmp_path: Path, store: CacheStore, monkeypatch):
    store.write_table(WIDE, wide_table())
    before = (tmp_path / VERSION / "asset_basics.pqt").read_bytes()

    def fail_midway(table, where, **options):
        where.write(b"PAR1 partial")
        raise OSError("disk on fire")

    monkeypatch.setattr(pq, "write_table", fail_midway)
    with pytest.raises(OSError, match="disk on fire"):
        store.write_table(WIDE, wide_table(3))
    assert (tmp_path / VERSION / "asset_basics.pqt").read_bytes() == before
    assert temp_files_under(tmp_path) == []


def test_failure_while_storing_removes_the_temp_file(tmp_path: Path, store: CacheStore, monkeypatch):
    store.write_partition(QC, "1", qc_table("1"))
    before = Path(store.partition_path(QC, "1")).read_bytes()

    def fail(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="fsync failed"):
        store.write_partition(QC, "1", qc_table("1", value=9.0))
    assert Path(store.partition_path(QC, "1")).read_bytes() == before
    assert temp_files_under(tmp_path) == []


def _crash_before_rename(root: str) -> None:
    def crash(*args):
        os._exit(3)

    os.replace = crash
    CacheStore(root, version=VERSION).write_partition(QC, "1", qc_table("1", value=9.0))


def test_crashed_write_never_breaks_readers(tmp_path: Path, store: CacheStore):
    store.write_partition(QC, "1", qc_table("1"))
    store.write_partition(QC, "2", qc_table("2"))
    crashing = multiprocessing.get_context("spawn").Process(target=_crash_before_rename, args=(str(tmp_path),))
    crashing.start()
    crashing.join(60)
    assert crashing.exitcode == 3

    leftovers = temp_files_under(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".staging/.data.pqt.")
    assert store.read_partition(QC, "1").equals(qc_table("1"))
    rows = duckdb.sql(
        f"SELECT subject_id, value FROM read_parquet('{tmp_path}/{VERSION}/qc/**', hive_partitioning=true, "
        "union_by_name=true, hive_types={'subject_id': VARCHAR}) ORDER BY ALL"
    ).fetchall()
    assert rows == [("1", 1.0), ("1", 2.0), ("2", 1.0), ("2", 2.0)]
    assert store.list_partitions(QC) == ["1", "2"]


def _stall_before_rename(root: str) -> None:
    os.replace = lambda *args: time.sleep(600)
    CacheStore(root, version=VERSION).write_partition(QC, "1", qc_table("1", value=7.0))


def _crash_in_snapshot_output(root: str) -> None:
    with CacheStore(root, version=VERSION).snapshot_output() as output:
        Path(output.path).write_bytes(b"half a snapshot")
        os._exit(3)


def test_the_next_snapshot_refresh_removes_dead_writers_temps_only(tmp_path: Path, store: CacheStore):
    spawn = multiprocessing.get_context("spawn")
    for crash in (_crash_in_snapshot_output, _crash_before_rename):
        crashing = spawn.Process(target=crash, args=(str(tmp_path),))
        crashing.start()
        crashing.join(60)
        assert crashing.exitcode == 3
    dead = temp_files_under(tmp_path)
    assert sorted(Path(f).name.split(".")[1] for f in dead) == ["changes", "data", "records"]
    stalled = spawn.Process(target=_stall_before_rename, args=(str(tmp_path),))
    stalled.start()
    try:
        deadline = time.monotonic() + 60
        while len(temp_files_under(tmp_path)) <= len(dead):
            assert time.monotonic() < deadline, "the live writer wrote no temp"
            time.sleep(0.05)
        in_flight = sorted(set(temp_files_under(tmp_path)) - set(dead))
        unknown = tmp_path / ".staging" / ".data.pqt.0123456789abcdef.tmp"  # older naming: no writer to check
        unknown.write_bytes(b"x")
        aged = tmp_path / ".staging" / ".data.pqt.fedcba9876543210.tmp"
        aged.write_bytes(b"x")
        os.utime(aged, (time.time() - 2 * 86400,) * 2)

        with store.snapshot_output():
            pass  # nothing written: only the dead writers' temps are removed
        assert temp_files_under(tmp_path) == sorted([*in_flight, ".staging/.data.pqt.0123456789abcdef.tmp"])
    finally:
        stalled.kill()
        stalled.join(60)


# -- registry ----------------------------------------------------------------------------------


def read_json(path: Path):
    return json.loads(path.read_text())


def test_publish_metadata_writes_sidecar_fragment_and_registry(tmp_path: Path, store: CacheStore):
    build = {
        "built_at": "2026-01-02T03:04:05+00:00",
        "source": "docdb.example.org",
        "row_count": 2,
        "pipeline_version": "0.1.0",
        "partitions": 1,
    }
    store.write_partition(QC, "1", qc_table("1"))
    store.publish_metadata(QC, build)

    version_dir = tmp_path / VERSION
    assert read_json(version_dir / "qc.json") == {"columns": ["name", "subject_id", "value"]}
    fragment = read_json(version_dir / "cache_registry" / "quality_control.json")
    assert fragment == {
        "name": "quality_control",
        "description": "Metrics per subject.",
        "location": f"{tmp_path}/bdc-v0.1/qc/",
        "partitioned": True,
        "partition_key": "subject_id",
        "type": "asset",
        "columns": [
            {"name": "name", "description": "Metric name."},
            {"name": "subject_id", "description": "Subject id (the partition key)."},
            {"name": "value", "description": "Metric value."},
        ],
        "build": build,
    }
    assert read_json(version_dir / "cache_registry.json") == {"tables": [fragment]}


def test_publishing_one_table_never_touches_another(tmp_path: Path, store: CacheStore):
    store.publish_metadata(QC, {"row_count": 2})
    qc_fragment = tmp_path / VERSION / "cache_registry" / "quality_control.json"
    before = qc_fragment.read_bytes()
    store.publish_metadata(WIDE, {"row_count": 6})
    store.publish_metadata(WIDE, {"row_count": 7})
    assert qc_fragment.read_bytes() == before

    registry = store.read_registry()
    assert [t["name"] for t in registry["tables"]] == ["asset_basics", "quality_control"]
    assert registry["tables"][0]["build"] == {"row_count": 7}
    assert [c["name"] for c in registry["tables"][0]["columns"]] == WIDE.column_names
    assert registry["tables"][0]["location"] == f"{tmp_path}/bdc-v0.1/asset_basics.pqt"
    assert read_json(tmp_path / VERSION / "cache_registry.json") == registry


def test_registry_falls_back_to_the_whole_file(tmp_path: Path, store: CacheStore):
    assert store.read_registry() == {"tables": []}
    store.publish_metadata(WIDE, {"row_count": 6})
    registry = store.read_registry()
    for fragment in (tmp_path / VERSION / "cache_registry").iterdir():
        fragment.unlink()
    assert store.read_registry() == registry


# -- versions ----------------------------------------------------------------------------------


def test_register_version_is_idempotent_and_ordered(tmp_path: Path):
    assert CacheStore(str(tmp_path), version="bdc-v0.2").read_versions() == []
    for version in ["bdc-v0.2", "bdc-v0.1", "bdc-v0.2", "bdc-v0.3", "bdc-v0.1"]:
        CacheStore(str(tmp_path), version=version).register_version()
    assert read_json(tmp_path / "cache_versions.json") == ["bdc-v0.2", "bdc-v0.1", "bdc-v0.3"]
    assert CacheStore(str(tmp_path)).read_versions() == ["bdc-v0.2", "bdc-v0.1", "bdc-v0.3"]


def _register_at(root: str, version: str, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    CacheStore(root, version=version).register_version()


def register_concurrently(root: str, versions: list[str]) -> None:
    start_at = time.time() + 3
    with ProcessPoolExecutor(len(versions), mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_register_at, [root] * len(versions), versions, [start_at] * len(versions)))


def test_concurrent_registrations_all_survive(tmp_path: Path):
    versions = [f"bdc-v1.{i}" for i in range(8)]
    register_concurrently(str(tmp_path), versions)
    assert sorted(read_json(tmp_path / "cache_versions.json")) == sorted(versions)


@pytest.mark.parametrize("content", ["not json [", '{"bdc-v0.1": true}', '["bdc-v0.1", 2]'])
def test_corrupt_versions_file_is_never_overwritten(tmp_path: Path, store: CacheStore, content: str):
    versions_file = tmp_path / "cache_versions.json"
    versions_file.write_text(content)
    with pytest.raises(ValueError, match=f"{versions_file} \\(cache root {tmp_path}\\).*refusing to overwrite"):
        store.register_version()
    assert versions_file.read_text() == content


# -- S3 (moto_server) --------------------------------------------------------------------------

@pytest.fixture
def s3_bucket(aws_env):
    """A fresh bucket on the session's moto server (conftest.py), with the AWS environment set."""
    bucket = f"cache-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    return bucket, client


def keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_s3_tables_and_registry(s3_bucket):
    bucket, client = s3_bucket
    store = CacheStore(f"s3://{bucket}/data-asset-cache", version=VERSION)
    store.write_table(WIDE, wide_table())
    for value in ["828418", "a/b"]:
        store.write_partition(QC, value, qc_table(value))
    store.publish_metadata(QC, {"row_count": 4})

    assert keys(client, bucket) == [
        "data-asset-cache/bdc-v0.1/asset_basics.pqt",
        "data-asset-cache/bdc-v0.1/cache_registry.json",
        "data-asset-cache/bdc-v0.1/cache_registry/quality_control.json",
        "data-asset-cache/bdc-v0.1/qc.json",
        "data-asset-cache/bdc-v0.1/qc/subject_id=828418/data.pqt",
        "data-asset-cache/bdc-v0.1/qc/subject_id=a%2Fb/data.pqt",
    ]
    assert store.read_table(WIDE).equals(wide_table())
    assert store.list_partitions(QC) == ["828418", "a/b"]
    assert store.read_partition(QC, "a/b").equals(qc_table("a/b"))
    assert store.read_registry()["tables"][0]["location"] == f"s3://{bucket}/data-asset-cache/bdc-v0.1/qc/"

    store.delete_partition(QC, "a/b")
    store.delete_partition(QC, "828418")
    assert [k for k in keys(client, bucket) if "/qc/" in k] == []
    assert not store.table_exists(QC)


def test_s3_versions(s3_bucket):
    bucket, client = s3_bucket
    root = f"s3://{bucket}/data-asset-cache"
    for version in ["bdc-v0.1", "bdc-v0.2", "bdc-v0.1"]:
        CacheStore(root, version=version).register_version()
    assert CacheStore(root).read_versions() == ["bdc-v0.1", "bdc-v0.2"]

    more = [f"bdc-v1.{i}" for i in range(8)]
    register_concurrently(root, more)
    assert sorted(CacheStore(root).read_versions()) == sorted(["bdc-v0.1", "bdc-v0.2", *more])

    client.put_object(Bucket=bucket, Key="data-asset-cache/cache_versions.json", Body=b"{oops")
    with pytest.raises(ValueError, match=f"s3://{bucket}/data-asset-cache/cache_versions.json.*refusing"):
        CacheStore(root, version="bdc-v9.9").register_version()
    body = client.get_object(Bucket=bucket, Key="data-asset-cache/cache_versions.json")["Body"].read()
    assert body == b"{oops"


def test_s3_write_failures_name_the_object(s3_bucket):
    """boto3 writes (version registration, partition delete, snapshot upload) that fail after
    botocore's retries raise an `OSError` naming the object, not a bare `ClientError`."""
    _, _ = s3_bucket
    root = "s3://no-such-bucket-here/data-asset-cache"
    store = CacheStore(root, version=VERSION)
    with pytest.raises(OSError, match=f"could not update {root}/cache_versions.json .*NoSuchBucket"):
        store.register_version()
    with pytest.raises(OSError, match=f"could not delete {root}/{VERSION}/qc/subject_id=1/data.pqt .*NoSuchBucket"):
        store.delete_partition(QC, "1")
    with pytest.raises(OSError, match=f"could not write {root}/{VERSION}/_snapshot/records.parquet .*NoSuchBucket"):
        with store.snapshot_output() as output:
            with open(output.path, "wb") as out:
                out.write(b"x")
            output.written = ROWS
