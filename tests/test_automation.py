"""The nightly schedule and the subject sensor, evaluated against an ephemeral Dagster instance.

A small hand-written corpus (ten subjects, two records each) is built, changed the way DocDB
changes overnight, and refreshed: only new and changed subjects are rebuilt, in one run; gone
subjects lose their data and their partition keys; unsafe subject ids are rejected with a reason.
"""

import json
import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.assets import SUBJECT_PARTITIONS
from biodata_cache_pipeline.automation import (
    SUBJECTS_TAG,
    apply_partition_requests,
    quality_control_subjects,
    sensor_interval_seconds,
)
from biodata_cache_pipeline.cli import materialize_all
from biodata_cache_pipeline.definitions import build_definitions
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.sample_corpus import generate_corpus
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.subjects import shortened

from handmade_corpus import asset_name, remove_record, use_local_environment, write_corpus, write_record

VERSION = version_folder()
SUBJECTS = [f"6000{i:02d}" for i in range(10)]
UNSAFE_SUBJECTS = {"bad\nline": "U+000A", "wait...": "Dagster does not allow", "9" * 250: "longer than 200"}


class Pipeline:
    """The definitions over a temporary corpus and cache, with an ephemeral instance."""

    def __init__(self, samples: Path, cache: Path):
        self.samples, self.version = samples, cache / VERSION
        self.instance = DagsterInstance.ephemeral()
        self.resources = pipeline_resources()
        self.defs = build_definitions(self.resources)
        self.cursor = None
        self.sensor_log: logging.Handler | None = None  # where the sensor's log lines also go

    def nightly(self):
        result = self.defs.resolve_job_def("nightly_tables").execute_in_process(instance=self.instance)
        assert result.success
        return result

    def tick(self) -> SensorResult | SkipReason:
        # A context manager: the cache resource's nested S3Resource is set up and torn down with it.
        with build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"cache": self.resources["cache"]}
        ) as context:
            if self.sensor_log is not None:
                context.log.addHandler(self.sensor_log)
            result = quality_control_subjects(context)
        if isinstance(result, SensorResult):
            self.cursor = result.cursor
        return result

    def run(self, request: RunRequest):
        run = self.defs.resolve_job_def("subject_quality_control").execute_in_process(
            tags=request.tags, instance=self.instance
        )
        assert run.success
        return run

    def apply(self, result: SensorResult):
        """What the daemon does with a sensor result: partition requests, then the run."""
        apply_partition_requests(self.instance, result.dynamic_partitions_requests)
        (request,) = result.run_requests
        return self.run(request)

    def partition_keys(self) -> list[str]:
        return list(self.instance.get_dynamic_partitions(SUBJECT_PARTITIONS.name))

    def qc_file(self, subject: str) -> Path:
        return self.version / "qc" / f"subject_id={subject}" / "data.pqt"


@pytest.fixture()
def pipeline(tmp_path, monkeypatch) -> Pipeline:
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    write_corpus(samples, SUBJECTS)
    use_local_environment(monkeypatch, samples, cache)
    return Pipeline(samples, cache)


def materialized_partitions(run, asset: str) -> set[str]:
    return {m.partition for m in run.asset_materializations_for_node(asset)}


def test_nightly_schedule_refreshes_every_unpartitioned_table_and_platform_qc_at_2am_pacific(pipeline):
    schedule = pipeline.defs.resolve_schedule_def("nightly_refresh")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "America/Los_Angeles")
    assert schedule.job_name == "nightly_tables"
    at_two = datetime(2025, 7, 1, 2, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    tick = schedule.evaluate_tick(build_schedule_context(pipeline.instance, scheduled_execution_time=at_two))
    (request,) = tick.run_requests
    assert request.tags == {"dagster/schedule_name": "nightly_refresh"}

    run = pipeline.nightly()  # launched plainly, as the schedule's request or the UI's Launch button does

    built = {e.asset_key.path[-1] for e in run.get_asset_materialization_events()}
    assert built == set(TABLES) - {QUALITY_CONTROL.name} | {"record_snapshot"}
    assert materialized_partitions(run, "platform_qc") == set(TABLES["platform_qc"].static_partitions)
    checks = {(e.asset_key.path[-1], e.check_name): e.passed for e in run.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks
    assert {name for name, _ in checks} == built - {"record_snapshot"}


def test_the_sensor_interval_is_a_setting(monkeypatch):
    assert quality_control_subjects.minimum_interval_seconds == 30, "the default, with the setting unset"
    monkeypatch.setenv("BIODATA_SENSOR_INTERVAL_SECONDS", "5")
    assert sensor_interval_seconds() == 5
    for wrong in ("soon", "0", "-5", "2.5"):
        monkeypatch.setenv("BIODATA_SENSOR_INTERVAL_SECONDS", wrong)
        expected = f"BIODATA_SENSOR_INTERVAL_SECONDS={wrong!r} is not a positive whole number of seconds"
        with pytest.warns(UserWarning, match=expected):
            assert sensor_interval_seconds() == 30


def test_sensor_builds_every_subject_once_then_nothing(pipeline):
    assert pipeline.tick() == SkipReason("asset_basics is not published yet")
    pipeline.nightly()

    first = pipeline.tick()
    assert first.dynamic_partitions_requests == [AddDynamicPartitionsRequest(SUBJECT_PARTITIONS.name, SUBJECTS)]
    run = pipeline.apply(first)
    assert materialized_partitions(run, "quality_control") == set(SUBJECTS)
    assert first.run_requests[0].tags[SUBJECTS_TAG] == str(len(SUBJECTS))

    again = pipeline.tick()
    assert again.run_requests == [] and again.dynamic_partitions_requests == []
    assert again.skip_reason.skip_message.startswith("nothing to build: 0 subjects to build")


def test_sensor_rebuilds_changed_and_new_subjects_in_one_run_and_deletes_gone_ones(pipeline, caplog):
    pipeline.sensor_log = caplog.handler
    pipeline.nightly()
    pipeline.apply(pipeline.tick())
    modified, extended, gone, new = SUBJECTS[1], SUBJECTS[4], SUBJECTS[6], "600099"
    write_record(pipeline.samples, asset_name(modified, 0), modified, last_modified="2025-06-01T00:00:00Z")
    write_record(pipeline.samples, asset_name(extended, 2), extended)
    for n in range(2):
        remove_record(pipeline.samples, asset_name(gone, n))
    write_record(pipeline.samples, asset_name(new, 0), new)
    for n, subject in enumerate(UNSAFE_SUBJECTS):
        write_record(pipeline.samples, f"unsafe{n}_2025-01-01_03-04-05", subject)
    unchanged = [s for s in SUBJECTS if s not in (modified, extended, gone)]
    written = {s: pipeline.qc_file(s).stat().st_mtime_ns for s in unchanged}
    pipeline.nightly()

    result = pipeline.tick()

    # Gone: its data is deleted at once, its key leaves the set with the changed keys (which move).
    assert not pipeline.qc_file(gone).parent.exists()
    assert gone not in CacheStore(str(pipeline.version.parent)).read_partition_state(QUALITY_CONTROL)
    assert result.dynamic_partitions_requests == [
        DeleteDynamicPartitionsRequest(SUBJECT_PARTITIONS.name, [gone, modified, extended]),
        AddDynamicPartitionsRequest(SUBJECT_PARTITIONS.name, [modified, extended, new]),
    ]
    # Unsafe ids are logged and reported in the cursor, with their reasons, and never become keys.
    cursor = json.loads(result.cursor)
    assert cursor["rejected_count"] == len(UNSAFE_SUBJECTS)
    for subject, reason in UNSAFE_SUBJECTS.items():
        assert reason in cursor["rejected"][shortened(subject)]  # a long id is cut (the 250-character one)
        assert f"subject id {shortened(subject)!r} rejected as a partition key: " in caplog.text

    (request,) = result.run_requests
    apply_partition_requests(pipeline.instance, result.dynamic_partitions_requests)
    keys = pipeline.partition_keys()
    first = keys.index(request.tags["dagster/asset_partition_range_start"])
    last = keys.index(request.tags["dagster/asset_partition_range_end"])
    assert keys[first : last + 1] == [modified, extended, new]
    run = pipeline.run(request)

    assert materialized_partitions(run, "quality_control") == {modified, extended, new}
    assert {s: pipeline.qc_file(s).stat().st_mtime_ns for s in unchanged} == written
    assert pq.read_table(pipeline.qc_file(extended)).num_rows == 6
    assert sorted(pipeline.partition_keys()) == sorted([*unchanged, modified, extended, new])
    registry = {t["name"]: t["build"] for t in CacheStore(str(pipeline.version.parent)).read_registry()["tables"]}
    assert registry["quality_control"]["partitions"] == len(unchanged) + 3
    assert registry["quality_control"]["row_count"] == sum(pq.read_metadata(f).num_rows
                                                           for f in (pipeline.version / "qc").glob("*/data.pqt"))

    caplog.clear()
    after = pipeline.tick()
    assert after.run_requests == [] and after.dynamic_partitions_requests == []
    assert "rejected" not in caplog.text, "known rejections are logged once, not on every tick"


def test_a_megabyte_subject_id_is_cut_in_the_cursor_and_the_log(pipeline, caplog):
    pipeline.sensor_log = caplog.handler
    huge = "x" * 1_000_000
    write_record(pipeline.samples, "huge_2025-01-01_03-04-05", huge)
    pipeline.nightly()
    result = pipeline.tick()
    assert len(result.cursor) < 10_000
    assert json.loads(result.cursor)["rejected_count"] == 1
    assert "(1000000 characters)" in result.cursor and "(1000000 characters)" in caplog.text
    assert len(caplog.text) < 10_000


def test_sensor_waits_while_a_run_writes_asset_basics(pipeline):
    pipeline.nightly()
    pipeline.instance.add_run(
        DagsterRun(job_name="nightly_tables", status=DagsterRunStatus.STARTED, asset_selection={AssetKey("asset_basics")})
    )
    result = pipeline.tick()
    assert isinstance(result, SkipReason) and result.skip_message.startswith("waiting for run ")
    assert pipeline.partition_keys() == []


def test_changed_only_cli_path_rebuilds_only_what_changed(pipeline):
    assert not materialize_all(pipeline.instance, say=lambda _: None).failures
    written = {s: pipeline.qc_file(s).stat().st_mtime_ns for s in SUBJECTS}
    write_record(pipeline.samples, asset_name(SUBJECTS[3], 1), SUBJECTS[3], last_modified="2025-06-02T00:00:00Z", metrics=3)
    lines, instance = [], DagsterInstance.ephemeral()

    assert not materialize_all(instance, say=lines.append, changed_only=True).failures

    assert "[2/2] building quality_control: 1 subjects to build (0 never built), 0 gone, 0 rejected" in lines
    built = instance.fetch_materializations(AssetKey("quality_control"), limit=100).records
    assert {record.partition_key for record in built} == {SUBJECTS[3]}
    rewritten = {s for s in SUBJECTS if pipeline.qc_file(s).stat().st_mtime_ns != written[s]}
    assert rewritten == {SUBJECTS[3]}


def test_behavior_curriculum_reuses_published_rows_and_rechecks_the_rest(tmp_path, monkeypatch):
    samples, cache = tmp_path / "samples", tmp_path / "cache"
    generate_corpus(samples, assets=150, seed=3)
    use_local_environment(monkeypatch, samples, cache)
    pipeline = Pipeline(samples, cache)
    first = pipeline.nightly()
    table = pq.read_table(pipeline.version / "behavior_curriculum.pqt").to_pylist()
    complete = [r for r in table if r["curriculum_name"] is not None]
    missing = [r for r in table if r["curriculum_name"] is None]
    assert complete and missing
    assert first.asset_materializations_for_node("behavior_curriculum")[0].metadata["reused_rows"].value == 0
    # A known, complete row is not looked up again (its file changes, its row does not);
    # an asset that had no trainer state is looked up again and now has one.
    known, late = complete[0], missing[0]
    for state in (samples / known["asset_name"] / "behavior").rglob("*.json"):
        state.write_text(json.dumps({"curriculum": {"name": "rewritten"}, "stage": {"name": "x"}}))
    late_state = samples / late["asset_name"] / "behavior" / "trainer_state.json"
    late_state.parent.mkdir(parents=True, exist_ok=True)
    late_state.write_text(json.dumps({"curriculum": {"name": "late"}, "stage": {"name": "STAGE_1"}}))

    second = pipeline.nightly()

    rows = {r["asset_name"]: r for r in pq.read_table(pipeline.version / "behavior_curriculum.pqt").to_pylist()}
    assert rows[known["asset_name"]] == known
    assert rows[late["asset_name"]]["curriculum_name"] == "late"
    metadata = second.asset_materializations_for_node("behavior_curriculum")[0].metadata
    assert metadata["reused_rows"].value == len(complete)
    assert metadata["looked_up"].value == len(missing)


def test_run_retention_keeps_runs_that_hold_a_current_materialisation(pipeline):
    first_nightly = pipeline.nightly().run_id
    qc_run = pipeline.apply(pipeline.tick()).run_id
    write_record(pipeline.samples, asset_name(SUBJECTS[0], 0), SUBJECTS[0], last_modified="2025-06-03T00:00:00Z")
    second_nightly = pipeline.nightly().run_id
    changed_qc_run = pipeline.apply(pipeline.tick()).run_id

    prune = pipeline.defs.resolve_job_def("prune_run_history").execute_in_process(
        instance=pipeline.instance, run_config={"ops": {"delete_expired_runs": {"config": {"days": 0}}}}
    )

    assert prune.success
    remaining = {run.run_id for run in pipeline.instance.get_runs()}
    assert first_nightly not in remaining, "every materialisation of the first nightly run was superseded"
    assert {second_nightly, qc_run, changed_qc_run, prune.run_id} <= remaining, "qc_run still holds nine subjects"
    materialized = pipeline.instance.get_materialized_partitions(AssetKey("quality_control"))
    assert materialized == set(SUBJECTS)
