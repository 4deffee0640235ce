"""How long one evaluation of the `quality_control_subjects` sensor takes with 10,000 subjects.

    .venv/bin/python benchmarks/sensor_10k.py [--subjects 10000] [--records-per-subject 10]

Builds, in a temporary folder, a local cache whose asset_basics has `subjects` x
`records_per_subject` rows, a quality_control partition on storage and in the build state for
every subject, and a SQLite Dagster instance whose partition set holds every subject. Then it
times sensor evaluations for: the first sync (empty partition set, nothing built), a quiet night
(nothing changed), and a busy night (2% of subjects changed, 0.5% gone, 1% new, a few unsafe ids).
The Dagster sensor time limit is 60 s by default (DEFAULT_SENSOR_GRPC_TIMEOUT).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance, build_sensor_context

from biodata_cache_client.layout import parquet_bytes
from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS
from biodata_cache_pipeline.automation import SUBJECTS_TAG, apply_partition_requests, quality_control_subjects
from biodata_cache_pipeline.cache_resource import CacheResource
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.subjects import subject_fingerprints


def basics(subjects: list[str], records: int, modified: set[str] = frozenset()) -> object:
    rows = [(s, f"{s}-{n}", "2025-06-01T00:00:00Z" if s in modified else "2025-01-01T00:00:00Z")
            for s in subjects for n in range(records)]
    columns = {name: [None] * len(rows) for name in ASSET_BASICS.column_names}
    columns["subject_id"], columns["_id"], columns["_last_modified"] = (list(c) for c in zip(*rows))
    columns["name"] = columns["_id"]
    return ASSET_BASICS.from_columns(columns)


def timed(label: str, instance: DagsterInstance, cache: CacheResource) -> None:
    started = time.perf_counter()
    result = quality_control_subjects(build_sensor_context(instance=instance, resources={"cache": cache}))
    elapsed = time.perf_counter() - started
    requests = result.dynamic_partitions_requests
    subjects = [r.tags[SUBJECTS_TAG] for r in result.run_requests]
    changes = ", ".join(f"{type(r).__name__.removesuffix('DynamicPartitionsRequest').lower()} {len(r.partition_keys)}"
                        for r in requests)
    print(f"{label:<46} {elapsed:5.2f} s  run over {subjects or 'no'} subjects; partition keys: {changes or 'unchanged'}")
    started = time.perf_counter()
    apply_partition_requests(instance, requests)
    print(f"{'  (applying the partition requests':<46} {time.perf_counter() - started:5.2f} s, outside the sensor)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--records-per-subject", type=int, default=10)
    args = parser.parse_args()
    subjects = [f"{600000 + i}" for i in range(args.subjects)]

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cache = CacheResource(root=str(root / "cache"))
        store = CacheStore(cache.root)
        (root / "dagster").mkdir()
        instance = DagsterInstance.local_temp(str(root / "dagster"))

        store.write_table(ASSET_BASICS, basics(subjects, args.records_per_subject))
        timed(f"first sync ({args.subjects} new subjects)", instance, cache)

        # Every subject built: a partition on storage and its fingerprint in the build state.
        empty = parquet_bytes(QUALITY_CONTROL.empty())
        for subject in subjects:
            path = Path(store.partition_path(QUALITY_CONTROL, subject))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(empty)
        fingerprints = subject_fingerprints(store.read_table(ASSET_BASICS))
        store.write_partition_state(QUALITY_CONTROL, {s: {"rows": 0, "fingerprint": f} for s, f in fingerprints.items()})
        timed("quiet night (nothing changed)", instance, cache)

        step = 50
        modified = set(subjects[::step])  # 2%
        gone = set(subjects[1::step * 4])  # 0.5%
        new = [f"{700000 + i}" for i in range(args.subjects // 100)]  # 1%
        unsafe = ["bad\nid", "x" * 300, "wait..."]
        tonight = [s for s in subjects if s not in gone] + new + unsafe
        store.write_table(ASSET_BASICS, basics(tonight, args.records_per_subject, modified))
        timed(f"busy night ({len(modified)} changed, {len(gone)} gone, {len(new)} new)", instance, cache)
        print(f"partition set: {len(instance.get_dynamic_partitions(SUBJECT_PARTITIONS.name))} keys")


if __name__ == "__main__":
    main()
