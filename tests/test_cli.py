"""`biodata-cache-pipeline materialize` as a user runs it: one failing table never stops the
others, failures are one line each, and the runs are the named jobs the UI can re-execute."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables import TABLES

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, assets=60, seed=5)
    return out


def materialize(corpus: Path, cache: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BIODATA_")},
        "BIODATA_CACHE_ENV": "local",
        "BIODATA_SAMPLE_ROOT": str(corpus),
        "BIODATA_CACHE_ROOT": str(cache),
        "DAGSTER_HOME": str(home),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "biodata_cache_pipeline.cli", "materialize", *args],
        env=environment, capture_output=True, text=True, timeout=300,
    )


def published(cache: Path) -> set[str]:
    return {table["name"] for table in CacheStore(str(cache)).read_registry()["tables"]}


def test_a_missing_foraging_table_fails_only_its_table_in_one_line(corpus, tmp_path):
    done = materialize(corpus, tmp_path / "cache", tmp_path / "home",
                       BIODATA_FORAGING_SESSIONS=str(tmp_path / "nowhere.parquet"))
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and failed[0].startswith("failed: foraging_sessions: "), done.stderr
    assert "nowhere.parquet" in failed[0] and "BIODATA_FORAGING_SESSIONS" in failed[0]
    assert "Traceback" not in done.stderr + done.stdout and "Stack Trace" not in done.stderr + done.stdout
    assert published(tmp_path / "cache") == set(TABLES) - {"foraging_sessions"}


def test_a_missing_open_data_store_fails_the_tables_that_read_it(corpus, tmp_path):
    done = materialize(corpus, tmp_path / "cache", tmp_path / "home", BIODATA_OPEN_DATA_ROOT=str(tmp_path / "no-store"))
    assert done.returncode == 1
    failed = sorted(line.split(":")[1].strip() for line in done.stderr.splitlines() if line.startswith("failed:"))
    assert failed == ["assets_smartspim", "behavior_curriculum"], done.stderr
    assert "BIODATA_OPEN_DATA_ROOT" in done.stderr and "Traceback" not in done.stderr
    assert published(tmp_path / "cache") == set(TABLES) - {"assets_smartspim", "behavior_curriculum"}


def test_verbose_prints_the_whole_error(corpus, tmp_path):
    done = materialize(corpus, tmp_path / "cache", tmp_path / "home", "--verbose",
                       BIODATA_FORAGING_SESSIONS=str(tmp_path / "nowhere.parquet"))
    assert done.returncode == 1 and "Stack Trace" in done.stderr and "FileNotFoundError" in done.stderr


def test_runs_are_the_named_jobs_of_the_schedule_and_the_sensor(corpus, tmp_path, monkeypatch):
    done = materialize(corpus, tmp_path / "cache", tmp_path / "home")
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with DagsterInstance.get() as instance:
        jobs = [run.job_name for run in instance.get_runs()]
    assert sorted(jobs) == ["nightly_tables", "subject_quality_control"]
