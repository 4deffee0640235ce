"""`biodata-cache-pipeline`: materialise the cache tables from the command line.

`materialize` runs the same Dagster assets, checks and subject planning as the schedule and the
sensor (`automation.py`), in two runs: `nightly_tables` (every unpartitioned table and
platform_qc), then, after syncing the `subject_id` partitions with the subjects of asset_basics
(new subjects added, gone subjects' keys and data deleted, unsafe keys rejected), quality_control
for every subject in one run (`--subjects-per-run N`: in runs of at most N subjects, in parallel
processes; subject_runs.py). `materialize --changed-only` is what the nightly schedule and the
sensor do: the same first run, then quality_control only for new subjects and subjects whose
records changed. `--force-publish` publishes what the publish guard refuses (a deliberate drop). `prune` deletes old
builds and old version folders (`build_history.py`), saying what first (`--dry-run`: only says).
Runs are recorded in the Dagster instance under `DAGSTER_HOME` when it is set, so they show up
in `dagster dev` afterwards, under the job names the schedule and the sensor use.

A table that fails does not stop the others: every table that can be built is built and
published, and the command ends with one line per failed table and exits 1 (`--verbose` prints
the whole errors).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult

from biodata_cache_client.schema.asset_basics import ASSET_BASICS
from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
from biodata_cache_pipeline.assets.snapshot import WARNINGS_METADATA_KEY
from biodata_cache_pipeline.automation import (
    NIGHTLY_TABLES,
    apply_partition_requests,
    nightly_tables,
    refresh_subjects,
    subject_quality_control,
    subject_run_tags,
)
from biodata_cache_pipeline.aws_settings import SettingsError
from biodata_cache_pipeline.build_history import add_prune_command, run_prune
from biodata_cache_pipeline.environment import environment, pipeline_resources, sample_root
from biodata_cache_pipeline.stale_runs import prepare_runs
from biodata_cache_pipeline.storage import CacheStore
from biodata_cache_pipeline.subject_runs import range_label, run_in_processes, subject_ranges
from biodata_cache_pipeline.subject_runs import subjects_per_run as default_subjects_per_run
from biodata_cache_pipeline.subjects import MAX_KEY_LENGTH, shortened

# Dagster's console logger would print each failure's whole error: the CLI prints one line instead.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
REJECTED_SHOWN = 10
REASONS_SHOWN = 2


@dataclass(frozen=True)
class StepFailure:
    """A table (or check) that failed: one line for the terminal, the whole error for --verbose."""

    step: str
    reason: str
    detail: str


@dataclass
class BuildOutcome:
    registry: dict
    failures: list[StepFailure] = field(default_factory=list)
    not_built: list[str] = field(default_factory=list)  # skipped because something they read failed
    skipped_records: dict[str, tuple[int, list[str]]] = field(default_factory=dict)  # table -> count, reasons
    warnings: list[str] = field(default_factory=list)


def _reason(error) -> str:
    """The first line of the first error in the chain that is not Dagster's wrapper around it."""
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    first = (error.message.strip().splitlines() or [error.cls_name])[0]
    head, separator, rest = first.partition(": ")  # "[module.]Class: message"
    return rest if separator and (head == error.cls_name or head.endswith(f".{error.cls_name}")) else first


def _outcome(result: ExecuteInProcessResult, tables: Sequence[str], outcome: BuildOutcome) -> None:
    """Record the run's failed steps, and the `tables` it neither built nor failed on."""
    failed = set()
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            reason = _reason(error)
            checks = [e for e in failed_checks if event.step_key in (e.asset_key.path[-1], f"{e.asset_key.path[-1]}_{e.check_name}")]
            if checks:  # Dagster's first line only counts the failed blocking checks: name them
                reason = "; ".join(f"check {e.check_name} failed" + (f": {e.description}" if e.description else "") for e in checks)
            outcome.failures.append(StepFailure(event.step_key, reason, error.to_string()))
            failed.add(event.step_key)
        elif event.is_run_failure and not failed and event.event_specific_data.error is not None:
            error = event.event_specific_data.error  # a failure outside any step (e.g. a resource)
            outcome.failures.append(StepFailure(result.job_def.name, _reason(error), error.to_string()))
            failed.add(result.job_def.name)
    built = set()
    for event in result.get_asset_materialization_events():
        table = event.asset_key.path[-1]
        built.add(table)
        metadata = {k: getattr(v, "value", v) for k, v in event.step_materialization_data.materialization.metadata.items()}
        if metadata.get("skipped_records"):
            reasons = [line.removeprefix("- ") for line in str(metadata.get("skipped_reasons", "")).splitlines()]
            outcome.skipped_records[table] = (metadata["skipped_records"], reasons)
        if metadata.get(WARNINGS_METADATA_KEY, "none") != "none" and metadata[WARNINGS_METADATA_KEY] not in outcome.warnings:
            outcome.warnings.append(metadata[WARNINGS_METADATA_KEY])
    outcome.not_built += [table for table in tables if table not in built and table not in failed]


def _run(instance: DagsterInstance, defs: Definitions, job: str, tables: Sequence[str], tags: dict,
         run_config: dict, outcome: BuildOutcome) -> None:
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, run_config={**QUIET_LOGS, **run_config}, raise_on_error=False
    )
    _outcome(result, tables, outcome)


def materialize_all(
    instance: DagsterInstance,
    say: Callable[[str], None] = print,
    changed_only: bool = False,
    force_publish: bool = False,
    subjects_per_run: int | None = None,
    concurrent_runs: int | None = None,
    resources: dict | None = None,
) -> BuildOutcome:
    """Build the tables with `resources` (default: those of the active environment). A table that
    fails does not stop the others: the outcome lists the failures and what they left unbuilt.
    `subjects_per_run` (default `BIODATA_SUBJECTS_PER_RUN`): quality_control in runs of at most
    that many subjects, `concurrent_runs` (default: the number of cores) processes at a time."""
    subjects_per_run = subjects_per_run or default_subjects_per_run()
    concurrent_runs = concurrent_runs or os.cpu_count() or 1
    resources = resources or pipeline_resources()
    # Imported here: that module builds the code location on import, reading the settings (Parameter
    # Store too), whose errors `main` reports in one line first.
    from biodata_cache_pipeline.definitions import build_definitions

    defs = build_definitions(resources)
    prepare_runs(instance, [defs.resolve_job_def(job.name) for job in (nightly_tables, subject_quality_control)], say)
    cache = resources["cache"]
    run_config = resources["cache_io_manager"].force_publish_run_config() if force_publish else {}
    started = time.monotonic()
    outcome = BuildOutcome(registry={})

    say(f"[1/2] building the record snapshot and {len(NIGHTLY_TABLES) - 1} tables: {', '.join(NIGHTLY_TABLES[1:])}")
    _run(instance, defs, nightly_tables.name, NIGHTLY_TABLES, {}, run_config, outcome)

    try:
        refresh = refresh_subjects(instance, cache, full=not changed_only)
    except OSError as error:  # the published asset_basics or the build state cannot be read
        outcome.failures.append(StepFailure(QUALITY_CONTROL.name, f"subjects not planned: {error}", repr(error)))
        say(f"[2/2] quality_control not built: {error}")
    else:
        _build_subjects(instance, defs, refresh, run_config, outcome, say, subjects_per_run, concurrent_runs)
    say(f"done in {time.monotonic() - started:.1f}s" + (f", {len(outcome.failures)} failed" if outcome.failures else ""))
    try:
        outcome.registry = cache.store().read_registry()
    except OSError as error:
        outcome.failures.append(StepFailure("cache_registry", f"not read: {error}", repr(error)))
    return outcome


def _build_subjects(instance: DagsterInstance, defs: Definitions, refresh, run_config: dict, outcome: BuildOutcome,
                    say: Callable[[str], None], subjects_per_run: int | None = None, concurrent_runs: int = 1) -> None:
    """Sync the subject partitions with the plan, then quality_control for its subjects: in one run,
    or in runs of at most `subjects_per_run`, `concurrent_runs` processes at a time (subject_runs.py)."""
    if refresh is None:
        say(f"[2/2] quality_control not built: {ASSET_BASICS.name} was never published")
        outcome.not_built.append(QUALITY_CONTROL.name)
    else:
        apply_partition_requests(instance, refresh.partition_requests)
        plan = refresh.plan
        say(f"[2/2] building quality_control: {plan.summary()}")
        for key, reason in sorted(plan.rejected.items())[:REJECTED_SHOWN]:
            say(f"      rejected subject id {shortened(key)!r}: {reason}")
        ranges = subject_ranges(plan.stale, subjects_per_run)
        if len(ranges) == 1:
            tags = subject_run_tags(ranges[0])
            _run(instance, defs, subject_quality_control.name, [QUALITY_CONTROL.name], tags, run_config, outcome)
        elif ranges:
            say(f"      in {len(ranges)} runs of at most {subjects_per_run} subjects, {concurrent_runs} at a time")
            runs = run_in_processes(ranges, subject_run_tags, run_config, not instance.is_ephemeral, concurrent_runs, say)
            for subjects, run_outcome, died in runs:
                _add_range_outcome(outcome, range_label(subjects), run_outcome, died)


def _add_range_outcome(outcome: BuildOutcome, label: str, run_outcome: BuildOutcome | None, died: str | None) -> None:
    """Add the outcome of one quality_control run over the subjects `label` (or why it has none)."""
    if run_outcome is None:
        reason = f"{died}: its subjects are built again by the next `materialize --changed-only` or sensor tick"
        outcome.failures.append(StepFailure(f"{QUALITY_CONTROL.name} ({label})", reason, reason))
        return
    outcome.failures += [StepFailure(f"{f.step} ({label})", f.reason, f.detail) for f in run_outcome.failures]
    outcome.not_built += [table for table in run_outcome.not_built if table not in outcome.not_built]
    for table, (count, reasons) in run_outcome.skipped_records.items():
        total, known = outcome.skipped_records.get(table, (0, []))
        outcome.skipped_records[table] = (total + count, known + reasons)
    outcome.warnings += [warning for warning in run_outcome.warnings if warning not in outcome.warnings]


def print_summary(registry: dict, store: CacheStore) -> None:
    print(f"cache: {store.root_uri}/{store.version}/")
    for table in registry.get("tables", []):
        build = table.get("build", {})
        partitions = f", {build['partitions']} partitions" if table["partitioned"] else ""
        print(f"  {table['name']:<22} {build.get('row_count', '?'):>8} rows{partitions}")


def print_notes(outcome: BuildOutcome) -> None:
    """Warnings, and the records each table read with problems (their bad fields are left empty)."""
    for warning in outcome.warnings:
        print(f"warning: {shortened(warning, 4 * MAX_KEY_LENGTH)}", file=sys.stderr)
    if outcome.skipped_records:
        print("records with problems (their bad fields are empty in the tables):", file=sys.stderr)
    for table, (count, reasons) in outcome.skipped_records.items():
        shown = "; ".join(shortened(reason) for reason in reasons[:REASONS_SHOWN])
        print(f"  {table}: {count}" + (f", e.g. {shown}" if shown else ""), file=sys.stderr)


def print_failures(outcome: BuildOutcome, verbose: bool = False) -> None:
    """One line per failed table, then what was not built because of them (stderr)."""
    for failure in outcome.failures:
        print(f"failed: {failure.step}: {failure.reason}", file=sys.stderr)
        if verbose:
            print(failure.detail, file=sys.stderr)
    if outcome.not_built:
        print(f"not built (an input failed): {', '.join(outcome.not_built)}", file=sys.stderr)
    if outcome.failures and not verbose:
        print("the tables not named here were built and published; `--verbose` prints the whole errors",
              file=sys.stderr)


def _positive(text: str) -> int:
    try:
        return default_subjects_per_run(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="biodata-cache-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("materialize", help="build every cache table into BIODATA_CACHE_ROOT")
    build.add_argument("--changed-only", action="store_true",
                       help="what the nightly schedule does: quality_control only for new and changed subjects")
    build.add_argument("--force-publish", action="store_true",
                       help="publish tables even when the publish guard refuses (a large row-count drop)")
    build.add_argument("--subjects-per-run", type=_positive, metavar="N",
                       help="quality_control in runs of at most N subjects, in parallel processes "
                            "(default: BIODATA_SUBJECTS_PER_RUN, else one run)")
    build.add_argument("--concurrent-runs", type=_positive, metavar="M",
                       help="with --subjects-per-run: at most M runs at a time (default: the number of cores)")
    build.add_argument("--verbose", action="store_true", help="print the whole error of each failed table")
    commands.add_parser("summary", help="print the tables of the current cache version")
    add_prune_command(commands)
    args = parser.parse_args(argv)

    try:
        resources = pipeline_resources()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    store = resources["cache"].store()  # its S3 connection too
    if args.command == "prune":
        return run_prune(args, store)
    if args.command == "materialize":
        try:
            subjects_per_run = args.subjects_per_run or default_subjects_per_run()
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        if environment() == "local" and not os.path.isdir(sample_root()) and "://" not in sample_root():
            print(f"no sample corpus at {sample_root()}: run `biodata-cache-sample --out {sample_root()}` first",
                  file=sys.stderr)
            return 2
        print(resources["records"].__doc__)
        with DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral() as instance:
            outcome = materialize_all(
                instance, changed_only=args.changed_only, force_publish=args.force_publish, resources=resources,
                subjects_per_run=subjects_per_run, concurrent_runs=args.concurrent_runs,
            )
        print_summary(outcome.registry, store)
        print_notes(outcome)
        print_failures(outcome, verbose=args.verbose)
        return 1 if outcome.failures else 0
    print_summary(store.read_registry(), store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
