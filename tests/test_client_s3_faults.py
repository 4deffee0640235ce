"""Client reads from S3 through a loopback proxy in front of moto that answers some requests with
503 SlowDown: transient failures are retried, persistent ones raise `CacheReadError` naming the object."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import unquote, urlsplit

import boto3
import pandas as pd
import pytest

import biodata_cache_client as bdc
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.storage import CacheStore
from s3_faults import FaultProxy, FaultRule, every, proxies

VERSION = version_folder()
ROOT = "s3://client-cache/data-asset-cache"  # the client_s3_cache fixture
QC = TABLES["quality_control"]
pytestmark = pytest.mark.usefixtures("client_settings")


@pytest.fixture
def through_proxy(client_s3_cache, aws_env, monkeypatch) -> Iterator[Callable[[FaultRule], FaultProxy]]:
    """Start a proxy with the given fault rule; the client's S3 requests go through it from then on."""
    with proxies(aws_env, monkeypatch) as start:
        yield start


@pytest.fixture
def narrow_root(aws_env) -> str:
    """QC partitions whose `status` column chunk is a ranged read of about a hundred bytes."""
    root = f"s3://client-narrow-{uuid.uuid4().hex[:12]}/cache"
    boto3.client("s3").create_bucket(Bucket=root.removeprefix("s3://").split("/")[0])
    store = CacheStore(root)
    for subject in range(8):
        rows = [
            {"name": f"metric-{i}", "modality": "ecephys", "stage": "Raw data", "value": str(i * 7919 % 1000),
             "status": ("Pass", "Fail", "Pending")[i % 3], "asset_name": f"asset-{subject}-{i}",
             "subject_id": str(subject), "timestamp": None}
            for i in range(3000)
        ]
        store.write_partition(QC, str(subject), QC.from_rows(rows))
    store.register_version()
    return root


def reads(narrow_root: str) -> dict:
    """Every kind of client read (tables, partitions, SQL with a join, registry, versions, info) of
    the client cache, then reads of one narrow column of the narrow root."""
    bdc.configure(root=ROOT)
    read = {
        "basics": bdc.asset_basics(),
        "qc": bdc.quality_control(None),
        "one_subject": bdc.qc(bdc.unique_subject_ids()[0]),
        "platforms": bdc.platform_qc(["fib", "spim"]),
        "join": bdc.query(
            "select b.subject_id, q.status, count(*) n from quality_control q join asset_basics b "
            "on q.asset_name = b.name group by all order by all"
        ),
        "registry": bdc.get_cache_registry(),
        "versions": bdc.get_cache_versions(),
        "info": bdc.cache_info("platform_qc"),
        **{f"sql {name}": bdc.query(f"select * from {name}") for name in TABLES},
    }
    bdc.configure(root=narrow_root)
    for attempt in range(4):
        read[f"statuses {attempt}"] = bdc.query("select status, count(*) n from quality_control group by 1 order by 1")
        read[f"status column {attempt}"] = bdc.quality_control(None, columns=["status"])
    return read


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, right[key], obj=key)
        else:
            assert value == right[key], key


def test_reads_succeed_when_one_request_in_twenty_is_slowed_down(through_proxy, narrow_root):
    """Through pyarrow's S3 client: a 503 answering a small ranged read used to fail the read with
    `Failed to flush response stream` (the SDK does not retry it). The local copy reads with boto3,
    whose retries cover it."""
    expected = reads(narrow_root)
    proxy = through_proxy(every(20))
    assert_same(reads(narrow_root), expected)
    assert proxy.refused >= 5  # 503s were answered, and retried


@pytest.mark.parametrize("local_copy", [False, True], ids=["direct", "local-copy"])
def test_when_every_request_fails_the_error_names_the_object(through_proxy, tmp_path, local_copy):
    copy = str(tmp_path / "copy") if local_copy else None
    through_proxy(every(1))
    bdc.configure(root=ROOT, local_copy=copy)
    with pytest.raises(bdc.CacheReadError, match=rf"could not read {ROOT}/cache_versions.json\b.*503"):
        bdc.asset_basics()
    bdc.configure(root=ROOT, local_copy=copy, version=VERSION)
    with pytest.raises(bdc.CacheReadError) as raised:
        bdc.asset_basics()
    message = str(raised.value)
    assert f"{ROOT}/{VERSION}/asset_basics.pqt" in message and "\n" not in message
    assert message.endswith("check the network and the AWS settings (AWS_ENDPOINT_URL, credentials), then try again")


def test_a_partition_that_cannot_be_read_is_named(through_proxy):
    bdc.configure(root=ROOT)
    subjects = sorted(set(bdc.quality_control(None, columns=["subject_id"])["subject_id"]))
    broken = f"subject_id={subjects[1]}/data.pqt"
    through_proxy(lambda number, method, path, _: method == "GET" and unquote(urlsplit(path).path).endswith(broken))
    assert len(bdc.qc(subjects[0])) > 0  # the other partitions still read
    reads_of_the_whole_table = (
        lambda: bdc.quality_control(None),
        lambda: bdc.query("select count(*) from quality_control"),  # scanned by DuckDB
    )
    for read in reads_of_the_whole_table:
        with pytest.raises(bdc.CacheReadError, match=rf"could not read {ROOT}/{VERSION}/qc/{broken} \(5 attempts\)"):
            read()
