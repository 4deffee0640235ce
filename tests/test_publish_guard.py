"""The publish guard: a build that loses too many rows fails and leaves the published table alone."""

import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from biodata_cache_client.layout import version_folder
from biodata_cache_pipeline.automation import nightly_run_tags
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.definitions import build_definitions
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.publish_guard import publish_refusal
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.sources.local_folder import is_asset_folder_name
from biodata_cache_pipeline.storage import CacheStore

PROJECT = Path(__file__).resolve().parents[1]

VERSION = version_folder()


@pytest.mark.parametrize(
    ("published", "new", "limit", "refused"),
    [
        (None, 0, 0.2, False),  # nothing published yet
        (0, 0, 0.2, False),  # an empty table may stay empty
        (100, 80, 0.2, False),  # exactly the limit
        (100, 79, 0.2, True),
        (100, 150, 0.2, False),  # growth is fine
        (100, 0, 0.2, True),
        (100, 0, 1.0, True),  # zero rows from a source that had rows: refused whatever the limit
        (100, 1, 1.0, False),
    ],
)
def test_publish_refusal(published, new, limit, refused):
    assert (publish_refusal("t", published, new, limit) is not None) == refused


def test_refusal_names_the_table_and_both_row_counts():
    message = publish_refusal("asset_basics", 300, 120, 0.2)
    assert message == "asset_basics: the build has 120 rows, 60% fewer than the 300 published (the limit is a 20% drop)"
    assert publish_refusal("asset_basics", 300, 0, 0.2) == "asset_basics: the build has 0 rows, the published table has 300"


@pytest.fixture()
def built(tmp_path, monkeypatch) -> tuple[Path, Path, DagsterInstance]:
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    generate_corpus(samples, assets=150, seed=3)
    monkeypatch.setenv("BIODATA_CACHE_ENV", "local")
    monkeypatch.setenv("BIODATA_SAMPLE_ROOT", str(samples))
    monkeypatch.setenv("BIODATA_CACHE_ROOT", str(cache))
    for variable in ("BIODATA_FORAGING_SESSIONS", "BIODATA_OPEN_DATA_ROOT"):
        monkeypatch.delenv(variable, raising=False)
    instance = DagsterInstance.ephemeral()
    assert not materialize_all(instance, say=lambda _: None).failures
    return samples, cache / VERSION, instance


def asset_folders(samples: Path) -> list[Path]:
    return sorted(p for p in samples.iterdir() if p.is_dir() and is_asset_folder_name(p.name))


def remove_every_other_asset(samples: Path) -> None:
    for folder in asset_folders(samples)[1::2]:
        shutil.rmtree(folder)


def nightly_failure(instance: DagsterInstance) -> str:
    result = build_definitions(pipeline_resources()).resolve_job_def("nightly_tables").execute_in_process(
        instance=instance, tags=nightly_run_tags(), raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "asset_basics")
    return str(failure.step_failure_data.error.cause.message)


def test_a_gutted_build_fails_and_the_published_table_stays_readable(built):
    samples, version, instance = built
    published = (version / "asset_basics.pqt").read_bytes()
    published_rows = pq.read_metadata(version / "asset_basics.pqt").num_rows
    fragment = (version / "cache_registry" / "asset_basics.json").read_bytes()
    remove_every_other_asset(samples)

    message = nightly_failure(instance)

    assert "refusing to publish asset_basics: the build has " in message
    assert f"fewer than the {published_rows} published" in message
    assert "--force-publish" in message and "force_publish" in message and "make run FORCE_PUBLISH=1" in message
    assert (version / "asset_basics.pqt").read_bytes() == published
    assert (version / "cache_registry" / "asset_basics.json").read_bytes() == fragment
    assert duckdb.sql(f"select count(*) from read_parquet('{version}/asset_basics.pqt')").fetchone()[0] == published_rows


def test_zero_rows_from_a_source_that_had_rows_is_refused(built):
    samples, version, instance = built
    before = pq.read_metadata(version / "asset_basics.pqt").num_rows
    for folder in samples.iterdir():  # every record gone (folders not named like assets too: they fail sooner)
        if folder.is_dir() and not folder.name.startswith("_"):
            shutil.rmtree(folder)

    assert "the build has 0 rows, the published table has" in nightly_failure(instance)
    assert pq.read_metadata(version / "asset_basics.pqt").num_rows == before


def test_force_publish_replaces_the_table(built):
    samples, version, instance = built
    remove_every_other_asset(samples)

    assert not materialize_all(instance, say=lambda _: None, force_publish=True).failures

    basics = pq.read_table(version / "asset_basics.pqt")
    registry = {t["name"]: t["build"] for t in CacheStore(str(version.parent)).read_registry()["tables"]}
    assert registry["asset_basics"]["row_count"] == basics.num_rows
    subjects = {s for s in basics.column("subject_id").to_pylist() if s}
    assert {p.name.removeprefix("subject_id=") for p in (version / "qc").iterdir()} == subjects


def test_make_run_passes_force_publish_when_asked(tmp_path):
    """`make run FORCE_PUBLISH=1` is how a make user publishes past the guard (the message names it)."""
    (tmp_path / ".complete").touch()  # a sample corpus already made: make plans only the build

    def materialize_line(*variables: str) -> str:
        planned = subprocess.run(["make", "-n", "run", f"SAMPLE_ROOT={tmp_path}", *variables], cwd=PROJECT,
                                 capture_output=True, text=True, check=True).stdout
        return next(line for line in planned.splitlines() if "biodata-cache-pipeline materialize" in line)

    assert materialize_line("FORCE_PUBLISH=1").endswith("materialize --force-publish")
    assert materialize_line().rstrip().endswith("materialize")
