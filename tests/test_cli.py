"""`biodata-cache-pipeline materialize` as a user runs it: one failing table never stops the
others, failures are one line each, and the runs are the named jobs the UI can re-execute."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from handmade_corpus import asset_name, write_corpus, write_record

from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.storage import CacheStore

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
        [sys.executable, "-m", "biodata_cache_pipeline", "materialize", *args],
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


def test_folders_not_named_like_asset_folders_are_a_warning_or_with_no_records_an_error(tmp_path):
    named_by_id = tmp_path / "by_id"
    for n in range(3):
        write_record(named_by_id / f"id{n}", "", "7")  # `<root>/id<n>/metadata.nd.json`: no asset folder name
    done = materialize(named_by_id, tmp_path / "cache", tmp_path / "home")
    assert done.returncode == 1
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed:")]
    assert f"failed: record_snapshot: no records in {named_by_id}: 3 sub-folders ignored (e.g. 'id0', 'id1'): " \
           "an asset folder is named <label>_<YYYY-MM-DD_HH-MM-SS> and holds metadata.nd.json or the core JSON " \
           "files" in failed, done.stderr

    mixed = tmp_path / "mixed"
    write_corpus(mixed, ["1", "2"])
    write_record(mixed / "id0", "", "7")
    done = materialize(mixed, tmp_path / "cache2", tmp_path / "home2")
    assert done.returncode == 0, done.stderr
    assert f"warning: records folder {mixed}: 1 sub-folders ignored (e.g. 'id0')" in done.stderr


def test_records_with_problems_and_rejected_subjects_are_printed_cut(tmp_path):
    samples = tmp_path / "samples"
    write_corpus(samples, ["1", "2"])
    write_record(samples, asset_name("3", 0), "x" * 1_000_000)  # a 1 MB subject id: rejected as a partition key
    (samples / asset_name("4", 0)).mkdir()
    (samples / asset_name("4", 0) / "metadata.nd.json").write_text("null")
    done = materialize(samples, tmp_path / "cache", tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "records with problems" in done.stderr
    assert f"  record_snapshot: 1, e.g. {asset_name('4', 0)}" in done.stderr  # the `null` record
    rejected = next(line for line in done.stdout.splitlines() if "rejected subject id" in line)
    assert "(1000000 characters)" in rejected and len(rejected) < 400
    assert len(done.stdout) + len(done.stderr) < 10_000
