"""The client on S3 (a moto server on loopback): local copy, offline reads, credentials for writes."""

from __future__ import annotations

from pathlib import Path

import boto3
import pandas as pd
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_client.sources import CopiedS3Source
from biodata_cache_pipeline.storage import CacheStore

VERSION = version_folder()
GENOTYPES = TABLES["unique_genotypes"]
QC = TABLES["quality_control"]
pytestmark = pytest.mark.usefixtures("client_settings")


@pytest.fixture
def downloads(monkeypatch) -> list[str]:
    """Relative paths downloaded into the local copy, in order."""
    seen = []
    original = CopiedS3Source._download_one

    def recording(self, relative, on_bytes):
        seen.append(relative)
        return original(self, relative, on_bytes)

    monkeypatch.setattr(CopiedS3Source, "_download_one", recording)
    return seen


def everything() -> dict:
    return {
        "basics": bdc.asset_basics(),
        "qc": bdc.quality_control(None),
        "platforms": bdc.platform_qc(["fib", "vr"]),
        "subjects": bdc.unique_subject_ids(),
        "derived": bdc.raw_to_derived(bdc.source_data()["source_data"].tolist()[:5]),
        "sql": bdc.query("select count(*) n from quality_control"),
        "registry": bdc.get_cache_registry(),
        "versions": bdc.get_cache_versions(),
    }


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, right[key])
        else:
            assert value == right[key], key


def test_local_copy_then_offline(client_s3_cache, aws_env, tmp_path, downloads, monkeypatch):
    bdc.configure(root=client_s3_cache)
    direct = everything()
    copy = tmp_path / "copy"
    bdc.configure(root=client_s3_cache, local_copy=str(copy))

    assert_same(everything(), direct)
    mirrored = copy / "client-cache" / "data-asset-cache"
    assert "cache_versions.json" in downloads and f"{VERSION}/asset_basics.pqt" in downloads
    assert (mirrored / VERSION / "asset_basics.pqt").is_file()
    assert len(list((mirrored / VERSION / "qc").glob("subject_id=*/data.pqt"))) == len(direct["subjects"])
    assert not list(mirrored.rglob("*.json.json")), "validators are kept outside the mirrored tree"

    downloads.clear()
    assert_same(everything(), direct)
    assert downloads == [], "unchanged objects are not downloaded again"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: offline must not need S3
    bdc.configure(root=client_s3_cache, local_copy=str(copy), offline=True)
    assert_same(everything(), direct)
    with pytest.raises(bdc.TableNotFoundError, match=r"table foraging_sessions not found .*offline, local copy in"):
        bdc.foraging_sessions()


def test_local_copy_revalidates_by_etag_and_size(fresh_root, tmp_path, downloads):
    store = CacheStore(fresh_root)
    store.write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": ["a", "b"]}))
    bdc.configure(root=fresh_root, local_copy=str(tmp_path / "copy"))
    assert bdc.unique_genotypes() == ["a", "b"]

    store.write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": ["c", "d"]}))  # same size, new ETag
    downloads.clear()
    assert bdc.unique_genotypes() == ["c", "d"]
    assert downloads == [f"{VERSION}/unique_genotypes.pqt"]

    copied = next((tmp_path / "copy").rglob("unique_genotypes.pqt"))
    copied.write_bytes(b"truncated")  # a damaged copy is noticed by its size
    downloads.clear()
    assert bdc.unique_genotypes() == ["c", "d"]
    assert downloads == [f"{VERSION}/unique_genotypes.pqt"]


def test_local_copy_follows_removed_partitions(fresh_root, tmp_path):
    store = CacheStore(fresh_root)
    for subject in ("1", "2", "a/b"):
        store.write_partition(QC, subject, QC.from_rows([_metric(subject)]))
    copy = tmp_path / "copy"
    bdc.configure(root=fresh_root, local_copy=str(copy))
    assert bdc.quality_control(None)["subject_id"].tolist() == ["1", "2", "a/b"]

    store.delete_partition(QC, "2")
    assert bdc.quality_control(None)["subject_id"].tolist() == ["1", "a/b"]
    bdc.configure(root=fresh_root, local_copy=str(copy), offline=True)
    assert bdc.quality_control(None)["subject_id"].tolist() == ["1", "a/b"]
    assert bdc.query("select subject_id from quality_control order by 1")["subject_id"].tolist() == ["1", "a/b"]


def _metric(subject: str) -> dict:
    return {
        "name": "m", "modality": "ecephys", "stage": "Raw data", "value": "1", "status": "Pass",
        "asset_name": f"asset-{subject}", "subject_id": subject, "timestamp": None,
    }


def test_offline_needs_a_local_copy(client_s3_cache, aws_env):
    bdc.configure(root=client_s3_cache, offline=True)
    with pytest.raises(ValueError, match="offline reads of s3://client-cache/data-asset-cache need a local copy"):
        bdc.asset_basics()


def test_local_copy_from_the_environment(client_s3_cache, aws_env, tmp_path, monkeypatch):
    monkeypatch.setenv("BIODATA_CACHE_ROOT", client_s3_cache)
    monkeypatch.setenv("BIODATA_CACHE_LOCAL_COPY", str(tmp_path / "env-copy"))
    assert len(bdc.platform_fib()) > 0
    assert list((tmp_path / "env-copy").rglob("platform_fib.pqt"))


def test_custom_tables_on_s3_need_credentials_to_write(fresh_root, tmp_path, monkeypatch):
    frame = pd.DataFrame({"asset": ["x", "y"], "score": [0.5, 0.25]})
    bdc.configure(root=fresh_root)
    bdc.custom("scores", frame)
    pd.testing.assert_frame_equal(bdc.custom("scores"), frame)
    bucket, prefix = fresh_root.removeprefix("s3://").split("/", 1)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"{prefix}/{VERSION}/custom/scores.pqt"]

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PermissionError, match=rf"writing custom table other to {fresh_root} needs AWS credentials"):
        bdc.custom("other", frame)
    pd.testing.assert_frame_equal(bdc.custom("scores"), frame)  # anonymous reads still work
    keys = [o["Key"] for o in boto3.client("s3", aws_access_key_id="t", aws_secret_access_key="t").list_objects_v2(
        Bucket=bucket)["Contents"]]
    assert keys == [f"{prefix}/{VERSION}/custom/scores.pqt"]


def test_read_failures_on_s3_raise(fresh_root):
    store = CacheStore(fresh_root)
    store.write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": ["a"]}))
    bucket, prefix = fresh_root.removeprefix("s3://").split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/{VERSION}/unique_genotypes.pqt", Body=b"corrupt")
    bdc.configure(root=fresh_root)
    with pytest.raises(bdc.CacheReadError, match=f"unique_genotypes.*{fresh_root}"):
        bdc.unique_genotypes()
    with pytest.raises(bdc.TableNotFoundError, match=f"asset_basics not found in version folder {VERSION}"):
        bdc.asset_basics()


def test_copy_folder_layout_mirrors_the_bucket(fresh_root, tmp_path):
    CacheStore(fresh_root).write_table(GENOTYPES, GENOTYPES.from_columns({"genotype": ["a"]}))
    bdc.configure(root=fresh_root, local_copy=str(tmp_path / "copy"))
    bdc.unique_genotypes()
    bucket_and_prefix = fresh_root.removeprefix("s3://")
    assert Path(tmp_path, "copy", bucket_and_prefix, VERSION, "unique_genotypes.pqt").is_file()
    assert Path(tmp_path, "copy", ".validators", bucket_and_prefix, VERSION, "unique_genotypes.pqt.json").is_file()


@pytest.mark.parametrize("local_copy", [False, True], ids=["direct", "local-copy"])
def test_corrupt_versions_file_on_s3_falls_back_to_the_version_folders(fresh_root, tmp_path, local_copy):
    for version in ("bdc-v0.0", "bdc-v99.10", "bdc-v99.9"):
        CacheStore(fresh_root, version=version).write_table(
            GENOTYPES, GENOTYPES.from_columns({"genotype": [version]})
        )
    bucket, prefix = fresh_root.removeprefix("s3://").split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/cache_versions.json", Body=b"\x00 not json")
    bdc.configure(root=fresh_root, local_copy=str(tmp_path / "copy") if local_copy else None)
    with pytest.warns(UserWarning, match=rf"{fresh_root}/cache_versions.json is not valid JSON"):
        assert bdc.get_cache_versions() == ["bdc-v0.0", "bdc-v99.9", "bdc-v99.10"]
    with pytest.warns(UserWarning) as warned:
        assert bdc.unique_genotypes() == ["bdc-v99.10"]
    assert "using the version folders found under the root" in str(warned[0].message)
    assert "reading bdc-v99.10" in str(warned[1].message)
