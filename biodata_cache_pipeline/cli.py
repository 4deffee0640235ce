"""`biodata-cache-pipeline`: materialise the cache tables from the command line.

`materialize` runs the same Dagster assets, checks and subject planning as the schedule and the
sensor (`automation.py`), in two runs: `nightly_tables` (every unpartitioned table and
platform_qc), then, after syncing the `subject_id` partitions with the subjects of asset_basics
(new subjects added, gone subjects' keys and data deleted, unsafe keys rejected), quality_control
for every subject in one run. `materialize --changed-only` is what the nightly schedule and the
sensor do: the same first run, then quality_control only for new subjects and subjects whose
records changed. `--force-publish` publishes what the publish guard refuses (a deliberate drop).
Runs are recorded in the Dagster instance under `DAGSTER_HOME` when it is set, so they show up
in `dagster dev` afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from dagster import AssetSelection, DagsterInstance, materialize

from biodata_cache_pipeline.assets import ALL_ASSETS
from biodata_cache_pipeline.assets.checks import ALL_CHECKS
from biodata_cache_pipeline.automation import (
    NIGHTLY_TABLES,
    apply_partition_requests,
    nightly_run_tags,
    partition_range_tags,
    refresh_subjects,
)
from biodata_cache_pipeline.environment import cache_root, environment, pipeline_resources, sample_root
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables.quality_control import QUALITY_CONTROL

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
REJECTED_SHOWN = 10


def _run(instance: DagsterInstance, resources: dict, keys: Sequence[str], tags: dict, run_config: dict) -> None:
    materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        selection=AssetSelection.assets(*keys),
        instance=instance,
        resources=resources,
        tags=tags,
        run_config={**QUIET_LOGS, **run_config},
    )


def materialize_all(
    instance: DagsterInstance,
    say: Callable[[str], None] = print,
    changed_only: bool = False,
    force_publish: bool = False,
) -> dict:
    """Build the tables with the resources of the active environment; return the registry written."""
    resources = pipeline_resources()
    io_manager = resources["cache_io_manager"]
    run_config = io_manager.force_publish_run_config() if force_publish else {}
    started = time.monotonic()

    say(f"[1/2] building the record snapshot and {len(NIGHTLY_TABLES) - 1} tables: {', '.join(NIGHTLY_TABLES[1:])}")
    _run(instance, resources, NIGHTLY_TABLES, nightly_run_tags(), run_config)

    refresh = refresh_subjects(instance, io_manager, full=not changed_only)
    if refresh is None:
        raise RuntimeError("asset_basics was not published by the first run")
    apply_partition_requests(instance, refresh.partition_requests)
    plan = refresh.plan
    say(f"[2/2] building quality_control: {plan.summary()}")
    for key, reason in sorted(plan.rejected.items())[:REJECTED_SHOWN]:
        say(f"      rejected subject id {key!r}: {reason}")
    if plan.run_range is not None:
        _run(instance, resources, [QUALITY_CONTROL.name], partition_range_tags(*plan.run_range), run_config)
    say(f"done in {time.monotonic() - started:.1f}s")
    return io_manager.store().read_registry()


def print_summary(registry: dict, store: CacheStore) -> None:
    print(f"cache: {store.root_uri}/{store.version}/")
    for table in registry["tables"]:
        build = table.get("build", {})
        partitions = f", {build['partitions']} partitions" if table["partitioned"] else ""
        print(f"  {table['name']:<22} {build.get('row_count', '?'):>8} rows{partitions}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="biodata-cache-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("materialize", help="build every cache table into BIODATA_CACHE_ROOT")
    build.add_argument("--changed-only", action="store_true",
                       help="what the nightly schedule does: quality_control only for new and changed subjects")
    build.add_argument("--force-publish", action="store_true",
                       help="publish tables even when the publish guard refuses (a large row-count drop)")
    commands.add_parser("summary", help="print the tables of the current cache version")
    args = parser.parse_args(argv)

    store = CacheStore(cache_root())
    if args.command == "materialize":
        if environment() == "local" and not os.path.isdir(sample_root()) and "://" not in sample_root():
            print(f"no sample corpus at {sample_root()}: run `biodata-cache-sample --out {sample_root()}` first",
                  file=sys.stderr)
            return 2
        print(pipeline_resources()["records"].__doc__)
        with DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral() as instance:
            registry = materialize_all(instance, changed_only=args.changed_only, force_publish=args.force_publish)
    else:
        registry = store.read_registry()
    print_summary(registry, store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
