"""quality_control in concurrent runs (`materialize --subjects-per-run N`, the sensor's runs of
`BIODATA_SUBJECTS_PER_RUN` subjects): the cache they leave is the one a single run leaves.

Two and four runs in processes of their own, at the same time, on a local root and on S3
(moto_server): every partition, the build state, the sidecars and the tables are byte-identical
to a single run's, the registry equals it but for the build times, and the newest build manifest
names every partition with the checksum of its published bytes. A run killed mid-way leaves the
other runs' partitions and build state intact, and the next `materialize --changed-only` builds its
subjects again. The sensor splits its runs; with the daemon and `max_concurrent_runs: 2` they run
side by side. Processes rewriting and publishing their partitions at the same time keep every
entry of the build state and leave a newest manifest that names the bytes published, on both
backends.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pyarrow.fs as pafs
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, build_sensor_context

from test_cli import PROJECT, materialize

from biodata_cache_client.layout import REGISTRY_FILE, REGISTRY_FOLDER, history_object_relative, version_folder
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_client.storage import filesystem_for
from biodata_cache_pipeline.automation import SUBJECTS_TAG, apply_partition_requests, quality_control_subjects
from biodata_cache_pipeline.build_history import latest_manifest
from biodata_cache_pipeline.cache_resource import publish_partitions
from biodata_cache_pipeline.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from biodata_cache_pipeline.definitions import build_definitions
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.subject_runs import SUBJECT_RANGE_TAG, SUBJECTS_PER_RUN_VARIABLE, subjects_per_run

VERSION = version_folder()
PROCESSES = 4
KEYS_PER_PROCESS = 5
ROUNDS = 6  # each process rewrites and publishes its partitions this many times


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, assets=160, seed=3)
    return out


@pytest.fixture(scope="module")
def single_run(corpus, tmp_path_factory) -> str:
    """The cache one quality_control run over every subject leaves (local root)."""
    folder = tmp_path_factory.mktemp("single")
    done = materialize(corpus, folder / "cache", folder / "home")
    assert done.returncode == 0, done.stderr
    return str(folder / "cache")


def cache_objects(root: str) -> dict[str, bytes]:
    """The published objects of the version folder by relative path: tables and partitions,
    sidecars, build states, the registry (its JSON with the root written as `<root>` and without
    build times and ids, the only values that differ between builds). Private `_` folders (the
    record snapshot, build history) are left out."""
    filesystem, base = filesystem_for(root)
    prefix = f"{base}/{VERSION}/"
    objects = {}
    for info in filesystem.get_file_info(pafs.FileSelector(prefix, recursive=True)):
        relative = info.path.removeprefix(prefix)
        if info.is_file and not relative.startswith("_") and relative.endswith((".pqt", ".json")):
            with filesystem.open_input_stream(info.path) as source:
                objects[relative] = source.read()
    for relative in [REGISTRY_FILE, *(p for p in objects if p.startswith(f"{REGISTRY_FOLDER}/"))]:
        objects[relative] = _without_build_times(json.loads(objects[relative].decode().replace(root, "<root>")))
    return objects


def _without_build_times(value):
    if isinstance(value, dict):
        return {key: _without_build_times(item) for key, item in value.items() if key not in ("built_at", "build_id")}
    if isinstance(value, list):
        return [_without_build_times(item) for item in value]
    return value


def subjects_of(root: str) -> list[str]:
    return sorted(CacheStore(root).read_partition_state(QUALITY_CONTROL))


def assert_same_cache(root: str, reference: str) -> None:
    built, expected = cache_objects(root), cache_objects(reference)
    assert sorted(built) == sorted(expected)
    differing = [path for path in expected if built[path] != expected[path]]
    assert differing == []


def assert_newest_manifest_names_the_published_bytes(root: str) -> None:
    """The newest quality_control manifest lists every partition of the build state with the
    sha256 and size of the bytes published, and so does its kept copy; the registry entry names it
    and counts the build state's rows and partitions."""
    store = CacheStore(root)
    state = store.read_partition_state(QUALITY_CONTROL)
    manifest = latest_manifest(store, QUALITY_CONTROL)
    assert [entry["partition"] for entry in manifest["objects"]] == sorted(state)
    stale = []
    for entry in manifest["objects"]:
        published = store.storage.read_bytes(f"{VERSION}/{entry['path']}")
        copy = store.storage.read_bytes(f"{VERSION}/{history_object_relative(entry['sha256'])}")
        if (entry["sha256"], entry["size"]) != (hashlib.sha256(published).hexdigest(), len(published)) or copy != published:
            stale.append(entry["partition"])
    assert stale == [], "partitions named with other bytes than the published ones"
    assert [entry["rows"] for entry in manifest["objects"]] == [state[key]["rows"] for key in sorted(state)]
    rows = sum(entry["rows"] for entry in state.values())
    assert manifest["row_count"] == rows
    build = store.read_build(QUALITY_CONTROL)
    assert (build["build_id"], build["row_count"], build["partitions"]) == (manifest["build_id"], rows, len(state))


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "cache")
    request.getfixturevalue("aws_env")
    bucket = f"concurrent-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/data-asset-cache"


@pytest.mark.parametrize(("root", "runs"), [("local", 4), ("s3", 2)], indirect=["root"])
def test_concurrent_runs_leave_the_cache_of_a_single_run(corpus, single_run, root, runs, tmp_path, monkeypatch):
    subjects = subjects_of(single_run)
    per_run = math.ceil(len(subjects) / runs)
    done = materialize(corpus, root, tmp_path / "home", "--subjects-per-run", str(per_run),
                       "--concurrent-runs", str(runs))
    assert done.returncode == 0, done.stderr
    assert f"in {runs} runs of at most {per_run} subjects, {runs} at a time" in done.stdout
    pids = {line.rsplit("process ", 1)[1] for line in done.stdout.splitlines() if ": process " in line}
    assert len(pids) == runs
    assert subjects_of(root) == subjects and len(subjects) >= 2 * runs
    assert_same_cache(root, single_run)
    assert_newest_manifest_names_the_published_bytes(root)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with DagsterInstance.get() as instance:
        qc_runs = [run for run in instance.get_runs() if run.job_name == "subject_quality_control"]
        assert len(qc_runs) == runs and all(run.is_success for run in qc_runs)
        ranges = sorted(run.tags[SUBJECT_RANGE_TAG] for run in qc_runs)
    assert len(set(ranges)) == runs


def test_a_run_killed_mid_way_leaves_the_others_intact_and_is_built_again(corpus, single_run, tmp_path):
    root = str(tmp_path / "cache")
    subjects = subjects_of(single_run)
    per_run = math.ceil(len(subjects) / 2)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_bytes((PROJECT / "dagster.yaml").read_bytes())
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BIODATA_")},
        "BIODATA_CACHE_ENV": "local", "BIODATA_SAMPLE_ROOT": str(corpus), "BIODATA_CACHE_ROOT": root,
        "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1",
    }
    with open(tmp_path / "stderr", "w+") as errors:
        build = subprocess.Popen(
            [sys.executable, "-m", "biodata_cache_pipeline", "materialize", "--subjects-per-run", str(per_run),
             "--concurrent-runs", "2"],
            env=environment, stdout=subprocess.PIPE, stderr=errors, text=True,
        )
        # The second range's process is killed once its first partition is written, before it ends.
        runs = []
        while len(runs) < 2:
            line = build.stdout.readline()
            assert line, "materialize ended before starting its two runs"
            runs += [line] if ": process " in line else []
        victim_range = subjects[per_run:]
        assert f"run {victim_range[0]}..{victim_range[-1]} " in runs[1]
        victim = int(runs[1].rsplit("process ", 1)[1])
        qc_folder = Path(root) / VERSION / QUALITY_CONTROL.object_name
        deadline = time.monotonic() + 300
        while not any((qc_folder / f"subject_id={s}" / "data.pqt").exists() for s in victim_range):
            assert time.monotonic() < deadline and build.poll() is None
            time.sleep(0.002)
        os.kill(victim, signal.SIGKILL)
        build.communicate(timeout=600)
        errors.seek(0)
        stderr = errors.read()
    assert build.returncode == 1, stderr
    failed = [line for line in stderr.splitlines() if line.startswith("failed:")]
    assert failed == [f"failed: quality_control ({victim_range[0]}..{victim_range[-1]}): its process was killed "
                      "(signal 9): its subjects are built again by the next `materialize --changed-only` or sensor tick"]

    # The other run's partitions and build state are all there, and equal a single run's.
    kept = subjects[:per_run]
    state = CacheStore(root).read_partition_state(QUALITY_CONTROL)
    assert set(kept) <= set(state)
    missing = [s for s in victim_range if s not in state]
    assert missing, "the killed run recorded every subject: it was not killed mid-way"
    for subject in kept:
        path = f"{QUALITY_CONTROL.object_name}/subject_id={subject}/data.pqt"
        assert (Path(root) / VERSION / path).read_bytes() == (Path(single_run) / VERSION / path).read_bytes()

    again = materialize(corpus, root, home, "--changed-only", "--subjects-per-run", str(per_run))
    assert again.returncode == 0, again.stderr
    assert f"building quality_control: {len(missing)} subjects to build" in again.stdout
    assert "had stopped without ending: marked failed" in again.stdout  # the killed run, ended by materialize
    assert_same_cache(root, single_run)
    assert_newest_manifest_names_the_published_bytes(root)


def test_the_sensor_requests_runs_of_at_most_n_subjects_which_together_build_every_subject(
    corpus, single_run, tmp_path, monkeypatch
):
    """The sensor's runs are consecutive ranges of the partition set; run one after another
    they leave a single run's cache, and the next tick has nothing to build."""
    root = str(tmp_path / "cache")
    for name, value in {"BIODATA_CACHE_ENV": "local", "BIODATA_SAMPLE_ROOT": str(corpus), "BIODATA_CACHE_ROOT": root,
                        SUBJECTS_PER_RUN_VARIABLE: "4"}.items():
        monkeypatch.setenv(name, value)
    resources = pipeline_resources()
    defs = build_definitions(resources)
    instance = DagsterInstance.ephemeral()
    assert defs.resolve_job_def("nightly_tables").execute_in_process(instance=instance).success

    def tick():
        # A context manager: the cache resource's nested S3Resource is set up and torn down with it.
        with build_sensor_context(instance=instance, resources={"cache": resources["cache"]}) as context:
            return quality_control_subjects(context)

    result = tick()
    apply_partition_requests(instance, result.dynamic_partitions_requests)
    keys = list(instance.get_dynamic_partitions("subject_id"))
    ranges = [(r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG]) for r in result.run_requests]
    expected = [keys[start : start + 4] for start in range(0, len(keys), 4)]
    assert ranges == [(chunk[0], chunk[-1]) for chunk in expected]
    assert [int(r.tags[SUBJECTS_TAG]) for r in result.run_requests] == [len(chunk) for chunk in expected]
    assert len({r.run_key for r in result.run_requests}) == len(expected)
    for request in result.run_requests:
        run = defs.resolve_job_def("subject_quality_control").execute_in_process(tags=request.tags, instance=instance)
        assert run.success
    assert tick().run_requests == []
    assert_same_cache(root, single_run)


def _publish_rounds(root: str, process: int, start) -> None:
    """Write this process's partitions with new bytes and publish them, `ROUNDS` times."""
    keys = [f"{process}-{n}" for n in range(KEYS_PER_PROCESS)]
    start.wait()  # every process is ready: their publishes overlap
    for round_ in range(ROUNDS):
        store = CacheStore(root)  # as the IO manager: a store per output
        changes = {}
        for n, key in enumerate(keys):
            rows = 1 + (n + round_) % 3
            store.write_partition(QUALITY_CONTROL, key, QUALITY_CONTROL.from_columns({
                column: [f"{key}:{round_}:{row}" if column == "value" else key if column == "subject_id" else None
                         for row in range(rows)]
                for column in QUALITY_CONTROL.column_names
            }))
            changes[key] = {"rows": rows, "fingerprint": f"{round_}"}
        publish_partitions(store, QUALITY_CONTROL, changes, source="test")


def test_concurrent_publishes_keep_every_entry_and_the_newest_manifest_names_the_published_bytes(root):
    """`PROCESSES` processes each rewriting and publishing their partitions `ROUNDS` times, started
    together: the build state holds every partition as last written, the newest manifest names
    each with the checksum of its published bytes (its copy holding them), and the registry entry
    names that build and counts the state (local lock, S3 conditional writes)."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    processes = [context.Process(target=_publish_rounds, args=(root, n, start)) for n in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    state = CacheStore(root).read_partition_state(QUALITY_CONTROL)
    assert sorted(state) == sorted(f"{p}-{n}" for p in range(PROCESSES) for n in range(KEYS_PER_PROCESS))
    assert {entry["fingerprint"] for entry in state.values()} == {str(ROUNDS - 1)}
    assert_newest_manifest_names_the_published_bytes(root)
    (entry,) = CacheStore(root).read_registry()["tables"]
    assert entry["name"] == QUALITY_CONTROL.name


def test_the_daemon_runs_the_sensors_runs_side_by_side(corpus, single_run, tmp_path, monkeypatch):
    """dagster-daemon with `max_concurrent_runs: 2` and `BIODATA_SUBJECTS_PER_RUN` half the
    subjects: the sensor's two quality_control runs run at the same time and leave a single run's
    cache."""
    from test_daemon import daemon_environment, run_nightly_job, wait_for, webserver_and_daemon

    home, cache, logs = tmp_path / "home", tmp_path / "cache", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    settings = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    settings["concurrency"]["runs"]["max_concurrent_runs"] = 2
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    half = math.ceil(len(subjects_of(single_run)) / 2)
    env = daemon_environment(home, corpus, cache, **{SUBJECTS_PER_RUN_VARIABLE: str(half)})
    with webserver_and_daemon(env, logs) as gql:
        nightly = run_nightly_job(gql, logs)
        assert nightly["status"] == "SUCCESS", nightly

        def sensor_runs():
            runs = gql("""{ runsOrError { ... on Runs { results { runId status startTime endTime
                tags { key value } } } } }""")["runsOrError"]["results"]
            ours = [r for r in runs if any(t["key"] == SUBJECTS_TAG for t in r["tags"])]
            done = len(ours) == 2 and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in ours)
            return ours if done else None

        runs = wait_for("the sensor's two quality_control runs", sensor_runs, timeout=300, logs=logs)
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], runs
    # Both were launched before either ended (with one run at a time, the second waits in the queue).
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the event log lives under DAGSTER_HOME
    with DagsterInstance.get() as instance:
        launched = [instance.get_records_for_run(r["runId"], of_type=DagsterEventType.RUN_STARTING).records[0]
                    .event_log_entry.timestamp for r in runs]
    assert max(launched) < min(r["endTime"] for r in runs), (launched, runs)
    assert_same_cache(str(cache), single_run)


@pytest.mark.parametrize("value", ["0", "ten", "-3"])
def test_a_bad_subjects_per_run_is_one_line_naming_the_setting(value, monkeypatch):
    monkeypatch.setenv(SUBJECTS_PER_RUN_VARIABLE, value)
    with pytest.raises(ValueError) as raised:
        subjects_per_run()
    assert str(raised.value) == (f"{SUBJECTS_PER_RUN_VARIABLE}={value!r} is not a positive whole number of subjects: "
                                 "set it to e.g. 500, or unset it")


def test_the_console_script_reports_a_bad_subjects_per_run_in_one_line(corpus, tmp_path):
    done = materialize(corpus, tmp_path / "cache", tmp_path / "home", **{SUBJECTS_PER_RUN_VARIABLE: "ten"})
    assert done.returncode == 2
    assert done.stderr.strip() == (f"{SUBJECTS_PER_RUN_VARIABLE}='ten' is not a positive whole number of subjects: "
                                   "set it to e.g. 500, or unset it")
    assert not (tmp_path / "cache").exists()
    option = materialize(corpus, tmp_path / "cache", tmp_path / "home", "--subjects-per-run", "-3")
    assert option.returncode == 2 and "--subjects-per-run: '-3' is not a positive whole number" in option.stderr
