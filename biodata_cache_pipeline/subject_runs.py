"""quality_control in runs of at most N subjects, which may run at the same time.

`BIODATA_SUBJECTS_PER_RUN=N` (for one command: `materialize --subjects-per-run N`) splits the
subjects to build into runs of at most N consecutive keys of the `subject_id` partition set: the
sensor requests one run per range, a backfill launches one run per N partitions
(`BackfillPolicy.multi_run`), and `materialize` runs the ranges in separate processes, as many at
a time as the machine has cores (`--concurrent-runs`). Unset: one run for every subject.

Concurrent runs are safe: each writes only its own partitions, and the objects they share are
updated as read-modify-writes (`Storage.update`: a file lock locally, conditional writes on S3):
the build state, with the build manifest recorded inside its update (`build_history.py`), the
registry fragment and `cache_registry.json`. So quality_control has no writer
pool, which would make the runs wait for each other; each run carries `SUBJECT_RANGE_TAG`, which
dagster.yaml limits to one run per range. A run reads only its subjects' rows of the record
snapshot and never refreshes it. A run that dies leaves its subjects' build state unwritten, so
the next sensor tick (or `materialize --changed-only`) builds them again.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence

from dagster import BackfillPolicy

from biodata_cache_pipeline.number_settings import number_setting

SUBJECTS_PER_RUN_VARIABLE = "BIODATA_SUBJECTS_PER_RUN"
SUBJECT_RANGE_TAG = "biodata_cache/subject_range"


def subjects_per_run(value: str | None = None) -> int | None:
    """`value` (else `BIODATA_SUBJECTS_PER_RUN`) as a positive number of subjects; None when unset."""
    return number_setting(SUBJECTS_PER_RUN_VARIABLE, None, "subjects", "500", whole=True, positive=True, text=value)


def subject_backfill_policy() -> BackfillPolicy:
    """quality_control's backfills: runs of `BIODATA_SUBJECTS_PER_RUN` subjects, else one run.
    Read when the assets are defined (imported), where an error would be a traceback: an invalid
    value gives one run here, and is reported in one line by `materialize` and by each sensor tick."""
    try:
        per_run = subjects_per_run()
    except ValueError:
        per_run = None
    return BackfillPolicy.single_run() if per_run is None else BackfillPolicy.multi_run(per_run)


def subject_ranges(subjects: Sequence[str], per_run: int | None) -> list[list[str]]:
    """`subjects` (consecutive keys of the partition set) in runs of at most `per_run`."""
    if not subjects:
        return []
    size = len(subjects) if per_run is None else per_run
    return [list(subjects[start : start + size]) for start in range(0, len(subjects), size)]


def range_label(subjects: Sequence[str]) -> str:
    """The value of `SUBJECT_RANGE_TAG`: first and last subject of a run."""
    return f"{subjects[0]}..{subjects[-1]}"


def run_in_processes(
    ranges: Sequence[Sequence[str]],
    tags_for: Callable[[Sequence[str]], dict],
    run_config: dict,
    persistent_instance: bool,
    processes: int,
    say: Callable[[str], None] = print,
) -> list[tuple[Sequence[str], object | None, str | None]]:
    """Run subject_quality_control over each range in a process of its own, at most `processes` at
    a time; return (range, the run's `cli.BuildOutcome`, None) for each run whose process ended,
    or (range, None, why) for a process that died (killed, out of memory). `persistent_instance`:
    the runs are recorded in the instance under `DAGSTER_HOME` (its partition set already holds the
    ranges); otherwise each process makes an ephemeral instance holding its range's keys."""
    context = multiprocessing.get_context("spawn")  # Dagster's threads and open files are not forked
    pending, running, results = list(ranges), {}, []
    with tempfile.TemporaryDirectory(prefix="biodata-subject-runs-") as folder:
        while pending or running:
            while pending and len(running) < processes:
                subjects = pending.pop(0)
                path = os.path.join(folder, f"{len(results) + len(running)}.pickle")
                process = context.Process(
                    target=_run_range, args=(list(subjects), tags_for(subjects), run_config, persistent_instance, path)
                )
                process.start()
                say(f"      run {range_label(subjects)} ({len(subjects)} subjects): process {process.pid}")
                running[process.sentinel] = (process, subjects, path)
            for sentinel in multiprocessing.connection.wait(list(running)):
                process, subjects, path = running.pop(sentinel)
                process.join()
                if process.exitcode == 0 and os.path.exists(path):
                    with open(path, "rb") as result:
                        results.append((subjects, pickle.load(result), None))
                else:
                    results.append((subjects, None, _ended(process.exitcode)))
    return results


def _ended(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"its process was killed (signal {-exitcode})"
    return f"its process ended with status {exitcode} before reporting"


def _run_range(subjects: list[str], tags: dict, run_config: dict, persistent_instance: bool, result_path: str) -> None:
    """In a process of its own: one subject_quality_control run; its outcome pickled to `result_path`."""
    from dagster import DagsterInstance

    from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
    from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS
    from biodata_cache_pipeline.automation import subject_quality_control
    from biodata_cache_pipeline.cli import BuildOutcome, _run
    from biodata_cache_pipeline.definitions import build_definitions
    from biodata_cache_pipeline.environment import pipeline_resources

    outcome = BuildOutcome(registry={})
    with DagsterInstance.get() if persistent_instance else DagsterInstance.ephemeral() as instance:
        if not persistent_instance:
            instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, subjects)
        defs = build_definitions(pipeline_resources())
        _run(instance, defs, subject_quality_control.name, [QUALITY_CONTROL.name], tags, run_config, outcome)
    with open(result_path, "wb") as result:
        pickle.dump(outcome, result)
