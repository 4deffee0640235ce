"""How the cache stays fresh unattended: the nightly schedule and the subject-partition sensor.

- `nightly_refresh` (02:00 America/Los_Angeles) launches the job `nightly_tables`: every
  unpartitioned table plus platform_qc for all five platforms, in one run. The job's own run tags
  select all five, so a launch from the UI without a partition does the same.
- `quality_control_subjects` (every 30 s) keeps the `subject_id` partition set equal to the
  subjects of the published asset_basics, deletes the data and the keys of subjects that are
  gone, rejects keys that are unsafe (logged, and listed in the cursor), and requests one
  `subject_quality_control` run for the new subjects and those whose records changed (`subjects.py`
  explains the detection and how one run covers exactly those subjects), or one run per
  `BIODATA_SUBJECTS_PER_RUN` of them, which may run at the same time (`subject_runs.py`). While a run that
  writes asset_basics or quality_control is unfinished it waits, so the partition set never
  moves under a running build.
- A full rebuild of all subjects, as one run: `biodata-cache-pipeline materialize`, or in the UI
  quality_control > Materialize > all partitions (single-run backfill policy); as concurrent runs
  of N subjects: `materialize --subjects-per-run N`, or `BIODATA_SUBJECTS_PER_RUN=N`.

`refresh_subjects` is shared with the CLI: `materialize --changed-only` does what the schedule
and the sensor do, in-process.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from biodata_cache_client.schema import TABLES
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.platform_qc import PLATFORM_QC
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.assets.common import SNAPSHOT_ASSET
from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    NOT_FINISHED_STATUSES,
    BulkActionsFilter,
    BulkActionStatus,
)
from biodata_cache_pipeline.number_settings import number_setting
from biodata_cache_pipeline.subject_runs import SUBJECT_RANGE_TAG, range_label, subject_ranges, subjects_per_run
from biodata_cache_pipeline.subjects import (
    FINGERPRINT_COLUMNS,
    SubjectPlan,
    plan_subject_refresh,
    shortened,
    subject_fingerprints,
)

# The record snapshot first: every table is built from it.
NIGHTLY_TABLES = [SNAPSHOT_ASSET] + [name for name, spec in TABLES.items() if not spec.partitioned] + [PLATFORM_QC.name]
SENSOR_INTERVAL_VARIABLE = "BIODATA_SENSOR_INTERVAL_SECONDS"
DEFAULT_SENSOR_INTERVAL_SECONDS = 30
REJECTED_IN_CURSOR = 50
SUBJECTS_TAG = "biodata_cache/subjects"



def sensor_interval_seconds() -> int:
    """The subject sensor's minimum interval: `BIODATA_SENSOR_INTERVAL_SECONDS`, else 30 s. Read when
    the definitions load; a value that is not a positive number of seconds gives 30 s and a warning."""
    try:
        return number_setting(SENSOR_INTERVAL_VARIABLE, DEFAULT_SENSOR_INTERVAL_SECONDS, "seconds",
                              str(DEFAULT_SENSOR_INTERVAL_SECONDS), whole=True, positive=True)
    except ValueError as error:
        warnings.warn(f"{error}; until then the sensor runs every {DEFAULT_SENSOR_INTERVAL_SECONDS} s", stacklevel=2)
        return DEFAULT_SENSOR_INTERVAL_SECONDS


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run build the partitions `first`..`last` (single-run backfill policy)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def subject_run_tags(subjects: Sequence[str]) -> dict[str, str]:
    """Tags of a quality_control run over `subjects`, consecutive keys of the partition set."""
    return {
        **partition_range_tags(subjects[0], subjects[-1]),
        SUBJECTS_TAG: str(len(subjects)),
        SUBJECT_RANGE_TAG: range_label(subjects),
    }


def ecs_task_size(cpu: int, memory: int) -> dict[str, str]:
    """Run tags that size a job's ECS task under dagster.ecs.yaml: Fargate CPU units (1024 = one
    vCPU) and memory in MiB, a combination Fargate accepts. Ignored by the other instance files."""
    return {"ecs/cpu": str(cpu), "ecs/memory": str(memory)}


def nightly_run_tags() -> dict[str, str]:
    """Every platform: what a run of `nightly_tables` builds unless one platform is picked."""
    platforms = PLATFORM_QC.static_partitions
    return partition_range_tags(platforms[0], platforms[-1])


# Its runs carry the all-platforms range, so a plain launch (UI, GraphQL, a retry) builds
# platform_qc for every platform; picking one platform in the launchpad builds only that one.
nightly_tables = define_asset_job(
    "nightly_tables",
    selection=AssetSelection.assets(*NIGHTLY_TABLES),
    description="The record snapshot, then every unpartitioned table and platform_qc (all platforms), in one run.",
    # definition tags: every launch (GraphQL, UI, schedule, retry, in process) carries them
    tags={**nightly_run_tags(), **ecs_task_size(cpu=1024, memory=4096)},
)
subject_quality_control = define_asset_job(
    "subject_quality_control",
    selection=AssetSelection.assets(QUALITY_CONTROL.name),
    description="quality_control for a range of subjects in one run: what the quality_control_subjects sensor "
    "and `biodata-cache-pipeline materialize` launch.",
    tags=ecs_task_size(cpu=2048, memory=8192),  # thousands of subjects' QC metrics in one run
)


@schedule(
    job=nightly_tables,
    cron_schedule="0 2 * * *",
    execution_timezone="America/Los_Angeles",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Nightly refresh: the unpartitioned tables and platform_qc; the quality_control_subjects "
    "sensor then rebuilds quality_control for the subjects whose records changed.",
)
def nightly_refresh() -> RunRequest:
    return RunRequest()


@dataclass(frozen=True)
class SubjectRefresh:
    """A planned refresh of the subject partitions, after the data of gone subjects was deleted."""

    plan: SubjectPlan
    removed: list[str]  # partitions whose data was deleted from storage
    basics_built_at: str  # the asset_basics build the plan follows

    @property
    def partition_requests(self) -> list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]:
        """Deletions, then additions at the end of the set: the daemon applies them in this order."""
        requests = []
        if self.plan.unlist:
            requests.append(DeleteDynamicPartitionsRequest(SUBJECT_PARTITIONS.name, self.plan.unlist))
        if self.plan.append:
            requests.append(AddDynamicPartitionsRequest(SUBJECT_PARTITIONS.name, self.plan.append))
        return requests

    def run_requests(self, per_run: int | None = None) -> list[RunRequest]:
        """quality_control runs over the stale subjects, at most `per_run` each (`subject_runs.py`);
        one run when None, none when nothing is stale."""
        ranges = subject_ranges(self.plan.stale, per_run)
        key = f"quality_control:{self.plan.digest}:{self.basics_built_at}"
        return [
            RunRequest(run_key=key if len(ranges) == 1 else f"{key}:{index}", tags=subject_run_tags(subjects))
            for index, subjects in enumerate(ranges)
        ]


def refresh_subjects(instance: DagsterInstance, cache: CacheResource, full: bool = False) -> SubjectRefresh | None:
    """Plan the subject partitions against the published asset_basics and delete gone subjects' data.

    None when asset_basics is not published yet. `full`: rebuild every subject.
    """
    basics = cache.read_published(ASSET_BASICS, FINGERPRINT_COLUMNS)
    if basics is None:
        return None
    store = cache.store()
    partition_keys = list(instance.get_dynamic_partitions(SUBJECT_PARTITIONS.name))
    built = {key: entry["fingerprint"] for key, entry in store.read_partition_state(QUALITY_CONTROL).items()}
    plan = plan_subject_refresh(
        subject_fingerprints(basics), built, partition_keys, store.list_partitions(QUALITY_CONTROL), full=full
    )
    removed = cache.remove_partitions(QUALITY_CONTROL, plan.gone)
    basics_build = next((t["build"] for t in store.read_registry()["tables"] if t["name"] == ASSET_BASICS.name), {})
    return SubjectRefresh(plan, removed, basics_build.get("built_at", ""))


def apply_partition_requests(
    instance: DagsterInstance, requests: Sequence[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]
) -> None:
    """Apply dynamic-partition requests in order, as the sensor daemon does."""
    for request in requests:
        if isinstance(request, AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def subject_writer_in_progress(instance: DagsterInstance) -> str | None:
    """An unfinished run or backfill that may write asset_basics or quality_control, if any."""
    writers = {AssetKey(ASSET_BASICS.name), AssetKey(QUALITY_CONTROL.name)}
    for run in instance.get_runs(RunsFilter(statuses=NOT_FINISHED_STATUSES)):
        if run.asset_selection is None or writers & set(run.asset_selection):
            return f"run {run.run_id}"
    for backfill in instance.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED])):
        if backfill.asset_selection is None or writers & set(backfill.asset_selection):
            return f"backfill {backfill.backfill_id}"
    return None


def rejection_cursor(rejected: dict[str, str]) -> str:
    """The sensor cursor: the rejected subject ids (the first few with their reasons) and a digest."""
    ordered = sorted(rejected.items())
    return json.dumps(
        {
            "rejected_count": len(ordered),
            "rejected_digest": hashlib.sha256(json.dumps(ordered).encode()).hexdigest()[:16],
            "rejected": {shortened(key): reason for key, reason in ordered[:REJECTED_IN_CURSOR]},
        },
        sort_keys=True,
    )


@sensor(
    job=subject_quality_control,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Keeps the subject_id partitions equal to the subjects of asset_basics and rebuilds "
    "quality_control, in one run (or runs of BIODATA_SUBJECTS_PER_RUN subjects), for new subjects and subjects "
    "whose records changed.",
)
def quality_control_subjects(context: SensorEvaluationContext, cache: CacheResource):
    busy = subject_writer_in_progress(context.instance)
    if busy is not None:
        return SkipReason(f"waiting for {busy}, which writes asset_basics or quality_control")
    refresh = refresh_subjects(context.instance, cache)
    if refresh is None:
        return SkipReason("asset_basics is not published yet")
    plan = refresh.plan
    cursor = rejection_cursor(plan.rejected)
    if plan.rejected and cursor != context.cursor:
        for key, reason in sorted(plan.rejected.items())[:REJECTED_IN_CURSOR]:
            context.log.warning(f"subject id {shortened(key)!r} rejected as a partition key: {reason}")
        context.log.warning(f"{len(plan.rejected)} subject ids rejected in all (listed in the sensor cursor)")
    if refresh.removed:
        context.log.info(f"deleted the quality_control partitions of {len(refresh.removed)} gone subjects")
    run_requests = refresh.run_requests(subjects_per_run())
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=refresh.partition_requests,
        cursor=cursor,
        skip_reason=None if run_requests else f"nothing to build: {plan.summary()}",
    )
