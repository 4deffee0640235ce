"""Shared fixtures: an isolated Dagster home for every test, caches built by the pipeline for
the client tests (local, memory, S3 on moto), moto on loopback, and a PostgreSQL server."""

from __future__ import annotations

import os
import signal
import uuid
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from local_servers import free_port, postgres_binaries, postgres_server

CLIENT_CORPUS_ASSETS = 200
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
# The test files that take a minute or more (Dagster daemons and runs, S3 on moto, retries): run
# first, so that with `make test`'s parallel workers no long file starts when the others are done.
LONG_FILES = (
    "test_concurrent_qc.py", "test_daemon.py", "test_s3_faults.py", "test_prod_sources.py", "test_history.py",
    "test_client_s3_faults.py", "test_ecs.py", "test_snapshot_runs.py", "test_cli.py", "test_stale_runs.py",
    "test_dg_check_defs.py",
)


def pytest_collection_modifyitems(items):
    """The `LONG_FILES` first, in that order; the others after them, as collected."""
    rank = {name: position for position, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


@pytest.fixture(scope="session", autouse=True)
def isolated_dagster_home(tmp_path_factory):
    """Tests, and the processes they start, use an empty Dagster home of their own: never the
    developer's instance, and no need for `.dagster_home/` to exist (`make` exports it)."""
    home = tmp_path_factory.mktemp("dagster_home")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = previous


def _build_cache(corpus: Path, root: str, env: dict[str, str]) -> str:
    """Run the whole pipeline on `corpus` into the cache `root`; return the root."""
    from dagster import DagsterInstance

    from biodata_cache_pipeline.cli import materialize_all

    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {**env, "BIODATA_SAMPLE_ROOT": str(corpus), "BIODATA_CACHE_ROOT": root}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("BIODATA_FORAGING_SESSIONS", raising=False)
        assert not materialize_all(DagsterInstance.ephemeral(), say=lambda _: None).failures
    return root


@pytest.fixture
def client_settings(monkeypatch):
    """No client settings from the environment or from code, before and after the test."""
    import biodata_cache_client

    for name in ("BACKEND", "ROOT", "VERSION", "LOCAL_COPY", "OFFLINE"):
        monkeypatch.delenv(f"BIODATA_CACHE_{name}", raising=False)
    biodata_cache_client.configure()
    yield
    monkeypatch.delenv("BIODATA_CACHE_BACKEND", raising=False)
    biodata_cache_client.configure()


@pytest.fixture(scope="session")
def client_corpus(tmp_path_factory) -> Path:
    from biodata_cache_pipeline.sample_corpus import generate_corpus

    out = tmp_path_factory.mktemp("client-corpus")
    generate_corpus(out, assets=CLIENT_CORPUS_ASSETS, seed=11)
    return out


@pytest.fixture(scope="session")
def client_local_cache(client_corpus, tmp_path_factory) -> str:
    return _build_cache(client_corpus, str(tmp_path_factory.mktemp("client-cache")), {})


@pytest.fixture(scope="session")
def client_memory_cache(client_corpus) -> str:
    return _build_cache(client_corpus, "memory://client-tests/data-asset-cache", {})


@pytest.fixture(scope="session")
def moto_s3_env():
    """A moto S3 server on loopback for the session; yields the AWS environment that reaches it."""
    if not MOTO_SERVER.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[s3]' flask flask-cors)")
    port = free_port()
    server = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


@pytest.fixture
def aws_env(moto_s3_env, monkeypatch) -> dict[str, str]:
    """The moto environment for one test, with no other AWS setting leaking in."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_s3_env.items():
        monkeypatch.setenv(name, value)
    return moto_s3_env


@pytest.fixture
def fresh_root(aws_env) -> str:
    """A cache root in an empty bucket of its own, for tests that change objects."""
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/data-asset-cache"


@pytest.fixture(scope="session")
def client_s3_cache(client_corpus, moto_s3_env) -> str:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in moto_s3_env.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket="client-cache")
    return _build_cache(client_corpus, "s3://client-cache/data-asset-cache", moto_s3_env)


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server on loopback for one test module (local_servers.postgres_server); skipped
    only when no server is installed."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server installed; `.ci/install-postgres-server` installs one (root + apt-get)")
    pytest.importorskip("dagster_postgres", reason="dagster-postgres missing: pip install -e '.[postgres]'")
    with postgres_server(binaries) as url:
        yield url
