"""Pipeline builds on an S3 cache root through a loopback proxy in front of moto that answers some
requests with 503 SlowDown: every read of the cache is retried with backoff, and a read that still
fails names its object."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import Message

import boto3
import pytest
from dagster import DagsterEventType, DagsterInstance

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.cli import BuildOutcome, _reason, materialize_all
from s3_faults import SLOW_DOWN, FaultProxy, FaultRule, every, proxies

VERSION = version_folder()


class SlowDowns:
    """Every 20th request, and the first attempt of each ranged read shorter than the 503 body: the
    reads the AWS SDK inside pyarrow does not retry (`Failed to flush response stream`), which a
    build makes few of (pyarrow merges nearby ranges), so that each kind of read meets a 503."""

    def __init__(self):
        self.small_reads: set[tuple[str, str]] = set()  # (path, range) answered 503 once

    def __call__(self, number: int, method: str, path: str, headers: Message) -> bool:
        first, _, last = headers.get("Range", "").removeprefix("bytes=").partition("-")
        small = method == "GET" and first.isdigit() and last.isdigit() and int(last) - int(first) < len(SLOW_DOWN)
        if small and (path, headers["Range"]) not in self.small_reads:
            self.small_reads.add((path, headers["Range"]))
            return True
        return number % 20 == 0


@pytest.fixture
def through_proxy(client_s3_cache, aws_env, monkeypatch) -> Iterator[Callable[[FaultRule], FaultProxy]]:
    """Start a proxy with the given fault rule; S3 requests go through it from then on (the
    fault-free build of the same corpus, `client_s3_cache`, is done before)."""
    with proxies(aws_env, monkeypatch) as start:
        yield start


def build(corpus, root: str, monkeypatch, instance: DagsterInstance | None = None) -> BuildOutcome:
    """The whole pipeline on the local records of `corpus` into the cache `root` (as conftest's client caches)."""
    monkeypatch.setenv("BIODATA_SAMPLE_ROOT", str(corpus))
    monkeypatch.setenv("BIODATA_CACHE_ROOT", root)
    monkeypatch.delenv("BIODATA_FORAGING_SESSIONS", raising=False)
    return materialize_all(instance or DagsterInstance.ephemeral(), say=lambda _: None)


def table_objects(root: str, endpoint: str) -> dict[str, bytes]:
    """The bytes of every table object (`.pqt`, partitions included) of the version folder, by key
    under the root; read from moto directly. Custom tables (written by the client tests into the
    shared cache) and the private snapshot are left out."""
    bucket, prefix = root.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", endpoint_url=endpoint)
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/{VERSION}/"):
        for item in page.get("Contents", []):
            key = item["Key"].removeprefix(f"{prefix}/")
            if key.endswith(".pqt") and not key.startswith((f"{VERSION}/_snapshot/", f"{VERSION}/custom/")):
                objects[key] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return objects


def test_a_build_succeeds_when_requests_are_slowed_down(
    through_proxy, fresh_root, client_corpus, client_s3_cache, aws_env, monkeypatch
):
    """A 503 answering a small ranged read (a column chunk of the snapshot, or one a check reads
    back) used to fail the step with `Failed to flush response stream`, naming no object."""
    slow_downs = SlowDowns()
    proxy = through_proxy(slow_downs)
    outcome = build(client_corpus, fresh_root, monkeypatch)
    assert outcome.failures == [] and outcome.not_built == []
    assert sorted(table["name"] for table in outcome.registry["tables"]) == sorted(TABLES)
    assert slow_downs.small_reads and proxy.refused >= 20  # 503s were answered throughout the build, and retried
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    expected = table_objects(client_s3_cache, endpoint)
    assert len(expected) > 10 and table_objects(fresh_root, endpoint) == expected


def test_when_every_request_fails_each_failure_names_its_object(through_proxy, fresh_root, client_corpus, monkeypatch):
    """Each failed step's line (as the CLI prints it) names the object it could not read, and so does
    the look-up of the published asset_basics (to plan quality_control), a failure line of its own."""
    through_proxy(every(1))
    instance = DagsterInstance.ephemeral()
    version_folder_uri = re.escape(f"{fresh_root}/{VERSION}")
    outcome = build(client_corpus, fresh_root, monkeypatch, instance)
    planning = next(f for f in outcome.failures if f.step == "quality_control")
    assert re.match(rf"subjects not planned: could not read {version_folder_uri}/asset_basics\.pqt \(5 attempts\)",
                    planning.reason), planning.reason
    [run] = instance.get_runs()
    records = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    failures = [record.dagster_event for record in records]
    assert {failure.step_key for failure in failures} >= {"record_snapshot", "foraging_sessions"}
    for failure in failures:
        line = _reason(failure.step_failure_data.error)
        assert re.match(rf"could not read {version_folder_uri}/\S+ \(5 attempts\): .*503", line), line
        assert "\n" not in line
