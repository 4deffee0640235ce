"""The record snapshot in whole builds: a quiet night rewrites nothing, only the tables whose inputs
changed are built again, and a build killed during the snapshot refresh leaves the previous
snapshot and the published tables as they were."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance
from handmade_corpus import use_local_environment

from biodata_cache_client.layout import version_folder
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.sample_corpus import generate_corpus

PROJECT = Path(__file__).resolve().parents[1]


def materialize_command(samples: Path, cache: Path) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "BIODATA_FORAGING_SESSIONS")}
    env.update(BIODATA_SAMPLE_ROOT=str(samples), BIODATA_CACHE_ROOT=str(cache), BIODATA_CACHE_ENV="local")
    return [sys.executable, "-m", "biodata_cache_pipeline", "materialize"], env


def materialize(samples: Path, cache: Path) -> str:
    command, env = materialize_command(samples, cache)
    done = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def stored_files(cache: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of the cache: inode, modification time and bytes."""
    return {
        str(p.relative_to(cache)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(cache.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    samples, cache = tmp_path_factory.mktemp("samples"), tmp_path_factory.mktemp("cache")
    generate_corpus(samples, assets=1500, seed=2)
    materialize(samples, cache)
    return samples, cache


def test_a_quiet_night_rewrites_no_object(built):
    samples, cache = built
    before = stored_files(cache)
    assert f"{version_folder()}/_snapshot/records.parquet" in before
    materialize(samples, cache)
    assert stored_files(cache) == before


def test_a_build_killed_while_refreshing_the_snapshot_changes_nothing_published(built):
    samples, cache = built
    before = stored_files(cache)
    for record in samples.glob("*/metadata.nd.json"):  # every record to be read again
        os.utime(record)
    command, env = materialize_command(samples, cache)
    build = subprocess.Popen(command, env=env, cwd=PROJECT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = cache / ".staging"
    try:
        deadline = time.monotonic() + 120
        while not list(staging.glob(".records.*.tmp")):
            assert build.poll() is None and time.monotonic() < deadline, "the refresh never started"
            time.sleep(0.05)
        time.sleep(0.5)  # well into reading the records
        assert build.poll() is None, "the refresh ended before it could be killed"
    finally:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait(timeout=30)

    after = {name: entry for name, entry in stored_files(cache).items() if not name.startswith(".staging/")}
    assert after == before
    materialize(samples, cache)  # the next build reads the records again and publishes the same tables
    tables = {name: entry[2] for name, entry in stored_files(cache).items() if name.endswith(".pqt")}
    assert tables == {name: entry[2] for name, entry in before.items() if name.endswith(".pqt")}


def _children(pid: int) -> set[int]:
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.update(int(c) for c in (task / "children").read_text().split())
    return children


def test_the_refresh_workers_end_with_a_killed_build(built):
    """`kill -9` of the build alone (not its process group): its worker processes do not live on."""
    samples, cache = built
    for record in samples.glob("*/metadata.nd.json"):
        os.utime(record)
    command, env = materialize_command(samples, cache)
    build = subprocess.Popen(command, env=env, cwd=PROJECT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((cache / ".staging").glob(".records.*.tmp")):
            assert build.poll() is None and time.monotonic() < deadline, "the refresh never started"
            time.sleep(0.05)
        time.sleep(0.5)
        workers = _children(build.pid)
        assert workers, "no worker processes"
        os.kill(build.pid, signal.SIGKILL)
        build.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers if Path(f"/proc/{w}").exists()], "workers outlived the build"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(build.pid, signal.SIGKILL)


def test_only_tables_whose_inputs_changed_are_built_again(tmp_path, monkeypatch):
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    generate_corpus(samples, assets=150, seed=4)
    use_local_environment(monkeypatch, samples, cache)
    instance = DagsterInstance.ephemeral()
    assert not materialize_all(instance, say=lambda _: None).failures
    changed = next(p for p in sorted(samples.glob("*/metadata.nd.json")) if "subject_details" in p.read_text())
    record = json.loads(changed.read_text())
    record["subject"]["subject_details"]["genotype"] = "Changed-Cre/wt"
    record["_last_modified"] = "2031-01-01T00:00:00Z"
    changed.write_text(json.dumps(record))

    assert not materialize_all(instance, say=lambda _: None, changed_only=True).failures

    def rebuilt(table: str) -> bool:
        latest = instance.fetch_materializations(AssetKey(table), limit=1).records[0]
        return latest.asset_materialization.metadata["rebuilt"].value

    tables = ["asset_basics", "unique_genotypes", "source_data", "platform_fib", "unique_project_names", "platform_qc"]
    assert {t: rebuilt(t) for t in tables} == {
        "asset_basics": True, "unique_genotypes": True,  # read the genotype
        "source_data": False, "platform_fib": False, "unique_project_names": False, "platform_qc": False,
    }
    genotypes = pq.read_table(cache / version_folder() / "unique_genotypes.pqt").column(0).to_pylist()
    assert "Changed-Cre/wt" in genotypes
