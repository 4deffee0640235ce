"""dagster-aws in the pipeline, against moto_server on loopback (conftest.py): the cache resource
reaches S3 through its `S3Resource`, not through the AWS environment, and the prod settings come
from Parameter Store (`BIODATA_SSM_PREFIX`) with environment variables overriding them."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from dagster import asset, build_resources, materialize
from dagster_aws.s3 import S3Resource

from s3_faults import proxies

from biodata_cache_client import layout
from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_client.storage import S3Connection
from biodata_cache_pipeline.aws_settings import SettingsError, cache_connection
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.cli import _reason, main
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.io_manager import CacheIOManager
from biodata_cache_pipeline.snapshot import ROWS as WRITTEN_ROWS
from biodata_cache_pipeline.storage import CacheStore

VERSION = version_folder()
GENOTYPES = TABLES["unique_genotypes"]
QC = TABLES["quality_control"]
ROWS = {"genotype": ["Ai14", "wt"]}
CLI = str(Path(sys.executable).parent / "biodata-cache-pipeline")


@asset(name=GENOTYPES.name, io_manager_key="cache_io_manager")
def genotypes():
    return GENOTYPES.from_columns(ROWS)


@pytest.fixture
def moto(aws_env) -> tuple[str, str]:
    """The moto endpoint and a fresh bucket on it."""
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    bucket = f"resource-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return endpoint, bucket


def objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object of the bucket by key, read from moto directly."""
    s3 = boto3.client("s3", endpoint_url=endpoint)
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


def closed_port_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def io_manager(root: str, s3: S3Resource) -> CacheIOManager:
    return CacheIOManager(cache=CacheResource(root=root, s3=s3))


def test_a_store_without_dagster_follows_a_plain_connection(moto, monkeypatch):
    """pyarrow (tables) and boto3 (version registration, snapshot upload, partition delete) both
    reach moto through the connection alone: the environment names no endpoint."""
    endpoint, bucket = moto
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    store = CacheStore(f"s3://{bucket}/cache", connection=S3Connection(endpoint_url=endpoint, max_attempts=2))
    store.write_table(GENOTYPES, GENOTYPES.from_columns(ROWS))
    store.write_partition(QC, "1", QC.empty())
    store.register_version()
    with store.snapshot_output() as output:
        with open(output.path, "wb") as out:
            out.write(b"snapshot")
        output.written = WRITTEN_ROWS
    store.delete_partition(QC, "1")

    stored = objects(endpoint, bucket)
    table, snapshot = f"cache/{layout.table_file(VERSION, GENOTYPES)}", f"cache/{layout.snapshot_file(VERSION)}"
    assert sorted(stored) == sorted([snapshot, table, "cache/cache_versions.json"])
    assert pq.read_table(io.BytesIO(stored[table])).to_pydict() == ROWS
    assert stored[snapshot] == b"snapshot"
    assert json.loads(stored["cache/cache_versions.json"]) == [VERSION]


def test_the_io_manager_writes_through_its_cache_resources_s3_resource(moto, monkeypatch):
    endpoint, bucket = moto
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the resource knows where S3 is
    s3 = S3Resource(endpoint_url=endpoint, region_name="us-east-1", max_attempts=2)

    result = materialize([genotypes], resources={"cache_io_manager": io_manager(f"s3://{bucket}/cache", s3)})

    assert result.success
    stored = objects(endpoint, bucket)
    table = f"cache/{layout.table_file(VERSION, GENOTYPES)}"
    assert pq.read_table(io.BytesIO(stored[table])).to_pydict() == ROWS
    assert json.loads(stored["cache/cache_versions.json"]) == [VERSION]  # a boto3 conditional write
    registry = json.loads(stored[f"cache/{layout.registry_file(VERSION)}"])
    assert [entry["name"] for entry in registry["tables"]] == ["unique_genotypes"]


def test_a_wrong_endpoint_in_the_resource_fails_the_write_though_the_environment_reaches_s3(moto):
    endpoint, bucket = moto
    assert os.environ["AWS_ENDPOINT_URL"] == endpoint  # the environment would reach moto
    wrong = closed_port_endpoint()
    manager = io_manager(f"s3://{bucket}/cache", S3Resource(endpoint_url=wrong, max_attempts=1))

    result = materialize([genotypes], resources={"cache_io_manager": manager}, raise_on_error=False)

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    reason = _reason(failure.step_failure_data.error)
    assert reason.startswith(f"could not read s3://{bucket}/cache/{VERSION}/"), reason
    assert objects(endpoint, bucket) == {}


def test_settings_pyarrow_cannot_follow_are_refused():
    with pytest.raises(SettingsError, match="sets use_ssl or verify"):
        cache_connection(S3Resource(verify=False))
    with pytest.raises(SettingsError, match="sets use_ssl or verify"):
        cache_connection(S3Resource(use_ssl=False))
    connection = cache_connection(S3Resource(region_name="eu-west-1", use_unsigned_session=True, max_attempts=3))
    assert connection == S3Connection(region="eu-west-1", unsigned=True, max_attempts=3)


def test_the_pipeline_gives_its_cache_three_attempts_per_request(fresh_root, monkeypatch):
    monkeypatch.setenv("BIODATA_CACHE_ROOT", fresh_root)
    assert pipeline_resources()["cache"].store().storage.connection == S3Connection(max_attempts=3)


def test_boto3_and_pyarrow_make_as_many_attempts_per_request_as_the_connection_says(aws_env, monkeypatch):
    """`max_attempts` counts the first try for both SDKs (botocore's own `max_attempts` counts only
    the retries: it made one request more than pyarrow). Every request gets S3's retryable 503."""
    with proxies(aws_env, monkeypatch) as start:
        proxy = start(lambda *request: True)
        connection = S3Connection(endpoint_url=proxy.endpoint, region="us-east-1", max_attempts=3)
        with pytest.raises(ClientError):
            connection.client().get_object(Bucket="bucket", Key="key")
        through_boto3 = proxy.refused
        with pytest.raises(OSError):
            connection.filesystem("bucket").open_input_stream("bucket/key")
        through_pyarrow = proxy.refused - through_boto3
    assert (through_boto3, through_pyarrow, proxy.forwarded) == (3, 3, 0)


# -- Parameter Store ---------------------------------------------------------------------------


@pytest.fixture
def ssm_prefix(aws_env, monkeypatch) -> str:
    """Prod with a fresh parameter path on moto; no BIODATA_* setting from the caller's shell."""
    for name in list(os.environ):
        if name.startswith("BIODATA_"):
            monkeypatch.delenv(name)
    prefix = f"/biodata-cache/test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BIODATA_CACHE_ENV", "prod")
    monkeypatch.setenv("BIODATA_SSM_PREFIX", prefix)
    return prefix


def put_parameters(prefix: str, **values: str) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    for name, value in values.items():
        kind = "SecureString" if name == "docdb_host" else "String"
        ssm.put_parameter(Name=f"{prefix}/{name}", Value=value, Type=kind)


def test_prod_settings_come_from_parameter_store(ssm_prefix):
    put_parameters(
        ssm_prefix, docdb_host="docdb.stored.org", docdb_collection="stored_assets", cache_root="s3://stored/cache"
    )

    resources = pipeline_resources()

    assert (resources["records"].host, resources["records"].collection) == ("docdb.stored.org", "stored_assets")
    assert resources["cache"].root == "s3://stored/cache"
    assert resources["cache_io_manager"].cache.root == "s3://stored/cache"
    assert "https://docdb.stored.org/v2/metadata_index/stored_assets" in resources["records"].__doc__


def test_environment_variables_override_parameters(ssm_prefix, monkeypatch):
    """An overridden setting needs no parameter: docdb_collection is not in the store. An empty
    variable (as ECS passes one the daemon sets empty) leaves the setting to its parameter."""
    put_parameters(ssm_prefix, docdb_host="docdb.stored.org", cache_root="s3://stored/cache")
    monkeypatch.setenv("BIODATA_DOCDB_COLLECTION", "env_assets")
    monkeypatch.setenv("BIODATA_DOCDB_HOST", "")
    monkeypatch.setenv("BIODATA_CACHE_ROOT", "s3://env/cache")

    resources = pipeline_resources()

    with build_resources({"records": resources["records"]}) as built:
        assert (built.records.host, built.records.collection) == ("docdb.stored.org", "env_assets")
    assert resources["cache"].root == "s3://env/cache"


def test_a_missing_parameter_is_named_in_one_line(ssm_prefix, capsys):
    put_parameters(ssm_prefix, docdb_host="docdb.stored.org", docdb_collection="stored_assets")
    expected = f"Parameter Store parameter {ssm_prefix}/cache_root is missing (BIODATA_SSM_PREFIX={ssm_prefix}): " \
        "create it, or set BIODATA_CACHE_ROOT"

    with pytest.raises(SettingsError) as raised:
        pipeline_resources()
    assert str(raised.value) == expected

    cli = subprocess.run([CLI, "materialize"], capture_output=True, text=True, timeout=120)  # the console script
    assert (cli.returncode, cli.stderr) == (2, f"error: {expected}\n")
    for command in ("summary", "prune"):
        assert main([command]) == 2, command
        assert capsys.readouterr().err == f"error: {expected}\n", command


def test_parameter_store_is_read_in_prod_only(ssm_prefix, monkeypatch):
    monkeypatch.setenv("BIODATA_CACHE_ENV", "local")
    with pytest.raises(SettingsError, match="BIODATA_SSM_PREFIX is set but Parameter Store is read in prod only"):
        pipeline_resources()
