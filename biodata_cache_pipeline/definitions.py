"""The Dagster code location: the eleven cache-table assets, their checks, the nightly schedule,
the subject-partition sensor, run retention, and the resources of the active environment."""

from dagster import Definitions, in_process_executor

from biodata_cache_pipeline.assets import ALL_ASSETS
from biodata_cache_pipeline.assets.checks import ALL_CHECKS
from biodata_cache_pipeline.automation import (
    nightly_refresh,
    nightly_tables,
    quality_control_subjects,
    subject_quality_control,
)
from biodata_cache_pipeline.environment import pipeline_resources
from biodata_cache_pipeline.retention import prune_run_history, prune_run_history_daily


def build_definitions(resources: dict) -> Definitions:
    """The code location over `resources`.

    A run's steps execute one after another in the run's own process: with one run at a time
    (dagster.yaml), a build keeps one core busy and leaves the other to the webserver and daemon.
    """
    return Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        jobs=[nightly_tables, subject_quality_control, prune_run_history],
        schedules=[nightly_refresh, prune_run_history_daily],
        sensors=[quality_control_subjects],
        resources=resources,
        executor=in_process_executor,
    )


defs = build_definitions(pipeline_resources())
