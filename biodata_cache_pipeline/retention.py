"""Run retention: the daily `prune_run_history` job deletes finished runs older than 90 days,
except runs that hold the latest materialisation of an asset or asset partition (the UI's asset
history and partition status come from them, and most quality_control partitions are rebuilt
rarely). Dagster has no run retention setting; tick retention is in dagster.yaml.
"""

from datetime import datetime, timedelta, timezone

from dagster import (
    Config,
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunsFilter,
    ScheduleDefinition,
    job,
    op,
)

from biodata_cache_pipeline.dagster_internals import FINISHED_STATUSES

RUN_RETENTION_DAYS = 90


def current_materializations(instance: DagsterInstance) -> set[int]:
    """Storage ids of the latest materialisation of every asset and of every asset partition."""
    current = set()
    for key in instance.get_asset_keys():
        current.update(record.storage_id for record in instance.fetch_materializations(key, limit=1).records)
        current.update(instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION).values())
    return current


def expired_runs(instance: DagsterInstance, created_before: datetime) -> list[str]:
    """Finished runs created before `created_before` none of whose materialisations is still current."""
    current = current_materializations(instance)
    expired = []
    for run in instance.get_runs(RunsFilter(statuses=FINISHED_STATUSES, created_before=created_before)):
        records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        if not any(record.storage_id in current for record in records):
            expired.append(run.run_id)
    return expired


class RetentionConfig(Config):
    days: int = RUN_RETENTION_DAYS


@op(description="Delete finished runs older than `days` whose materialisations have all been superseded.")
def delete_expired_runs(context: OpExecutionContext, config: RetentionConfig) -> None:
    expired = expired_runs(context.instance, datetime.now(timezone.utc) - timedelta(days=config.days))
    for run_id in expired:
        context.instance.delete_run(run_id)
    context.log.info(f"deleted {len(expired)} runs older than {config.days} days")


@job(description="Run retention: deletes old runs that no longer hold a current materialisation.")
def prune_run_history():
    delete_expired_runs()


prune_run_history_daily = ScheduleDefinition(
    job=prune_run_history,
    cron_schedule="30 3 * * *",
    execution_timezone="America/Los_Angeles",
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Daily run retention: runs older than {RUN_RETENTION_DAYS} days without a current materialisation.",
)
