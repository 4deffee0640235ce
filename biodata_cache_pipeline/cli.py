"""`biodata-cache-pipeline`: materialise every cache table from the command line.

`materialize` runs the same Dagster assets as the UI, in three runs: the unpartitioned tables,
then `quality_control` for every subject of asset_basics (one run), then `platform_qc` for every
platform (one run). Runs are recorded in the Dagster instance under `DAGSTER_HOME` when it is
set, so they show up in `dagster dev` afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from dagster import AssetKey, AssetSelection, DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from biodata_cache_pipeline.assets import ALL_ASSETS, SUBJECT_PARTITIONS
from biodata_cache_pipeline.environment import cache_root, local_resources, sample_root
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.tables import TABLES
from biodata_cache_pipeline.tables.asset_basics import ASSET_BASICS
from biodata_cache_pipeline.tables.quality_control import PLATFORM_QC, QUALITY_CONTROL

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def sync_subject_partitions(instance: DagsterInstance, store: CacheStore) -> tuple[list[str], list[str]]:
    """Make the subject partition set equal the subjects of the published asset_basics."""
    subjects = sorted(
        {s for s in store.read_table(ASSET_BASICS).column("subject_id").to_pylist() if s is not None}
    )
    existing = set(instance.get_dynamic_partitions(SUBJECT_PARTITIONS.name))
    added = [s for s in subjects if s not in existing]
    removed = sorted(existing - set(subjects))
    if added:
        instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, added)
    for key in removed:
        instance.delete_dynamic_partition(SUBJECT_PARTITIONS.name, key)
    return added, removed


def _run(instance: DagsterInstance, resources: dict, keys: Sequence[str], partitions: Sequence[str] = ()) -> None:
    tags = {}
    if partitions:
        tags = {ASSET_PARTITION_RANGE_START_TAG: partitions[0], ASSET_PARTITION_RANGE_END_TAG: partitions[-1]}
    materialize(
        ALL_ASSETS,
        selection=AssetSelection.assets(*(AssetKey(k) for k in keys)),
        instance=instance,
        resources=resources,
        tags=tags,
        run_config=QUIET_LOGS,
    )


def materialize_all(instance: DagsterInstance, say: Callable[[str], None] = print) -> dict:
    """Build every table; return the registry written."""
    resources = local_resources()
    store = CacheStore(cache_root())
    unpartitioned = [name for name, spec in TABLES.items() if not spec.partitioned]
    started = time.monotonic()

    say(f"[1/3] building {len(unpartitioned)} tables: {', '.join(unpartitioned)}")
    _run(instance, resources, unpartitioned)

    added, removed = sync_subject_partitions(instance, store)
    subjects = SUBJECT_PARTITIONS.get_partition_keys(dynamic_partitions_store=instance)
    say(f"[2/3] building quality_control for {len(subjects)} subjects (+{len(added)} -{len(removed)})")
    for key in removed:
        store.delete_partition(QUALITY_CONTROL, key)
    if subjects:
        _run(instance, resources, [QUALITY_CONTROL.name], subjects)

    platforms = list(PLATFORM_QC.static_partitions)
    say(f"[3/3] building platform_qc for {len(platforms)} platforms")
    _run(instance, resources, [PLATFORM_QC.name], platforms)
    say(f"done in {time.monotonic() - started:.1f}s")
    return store.read_registry()


def print_summary(registry: dict, store: CacheStore) -> None:
    print(f"cache: {store.root_uri}/{store.version}/")
    for table in registry["tables"]:
        build = table.get("build", {})
        partitions = f", {build['partitions']} partitions" if table["partitioned"] else ""
        print(f"  {table['name']:<22} {build.get('row_count', '?'):>8} rows{partitions}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="biodata-cache-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("materialize", help="build every cache table into BIODATA_CACHE_ROOT")
    commands.add_parser("summary", help="print the tables of the current cache version")
    args = parser.parse_args(argv)

    store = CacheStore(cache_root())
    if args.command == "materialize":
        if not os.path.isdir(sample_root()) and "://" not in sample_root():
            print(f"no sample corpus at {sample_root()}: run `biodata-cache-sample --out {sample_root()}` first",
                  file=sys.stderr)
            return 2
        instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
        print(f"records: {sample_root()}")
        registry = materialize_all(instance)
    else:
        registry = store.read_registry()
    print_summary(registry, store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
