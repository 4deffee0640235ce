"""Before `materialize` runs: free the table pools of runs whose process is gone, then wait for them.

Each table's writer is a Dagster pool with one slot (`cache_table_<table>`, dagster.yaml). A build
killed with `kill -9` leaves its run STARTED and its slot claimed, and Dagster 1.13's in-process
executor waits for a claimed slot forever, spinning a core and deaf to Ctrl-C and SIGTERM (its
wait loop never sleeps and checks no interrupt). So `prepare_runs`, called by `materialize_all`
before its runs:

- marks failed every STARTING or STARTED run whose recorded process (the pids of its Dagster
  engine events) no longer runs on this host, frees its slots, and kills the compute-log
  `tail -F` processes it left; slots of finished or deleted runs are freed too. Only a SQLite
  instance is checked against this host's processes: its runs were made on this host. On
  Postgres, the daemon's run monitoring handles the runs it launched;
- then waits until every pool of the jobs to run has a free slot, at most
  `BIODATA_POOL_WAIT_SECONDS` (default 600); Ctrl-C stops the wait. A timeout or an interrupt ends
  the command with one line naming the run that holds the slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, JobDefinition, RunsFilter

from biodata_cache_client.storage import process_alive
from biodata_cache_pipeline.dagster_internals import SqliteEventLogStorage
from biodata_cache_pipeline.number_settings import number_setting

WAIT_VARIABLE = "BIODATA_POOL_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 600.0
POLL_SECONDS = 1.0
RUNNING = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
START_TOLERANCE_SECONDS = 2.0  # /proc start times are whole seconds after boot


class BuildBlocked(SystemExit):
    """The build cannot start: a pool stays held. Ends the command with this one line (status 1)."""


def prepare_runs(instance: DagsterInstance, jobs: Sequence[JobDefinition], say: Callable[[str], None] = print) -> None:
    """Free the slots of dead runs, then wait for the pools of `jobs` (see the module docstring)."""
    if not instance.event_log_storage.supports_global_concurrency_limits:
        return
    for run_id, job_name in release_dead_runs(instance):
        say(f"run {run_id} ({job_name}) had stopped without ending: marked failed, its table pools freed")
    pools = sorted({node.definition.pool for job in jobs for node in job.nodes_in_topological_order} - {None})
    wait_for_pools(instance, pools, _wait_seconds(), say)


def release_dead_runs(instance: DagsterInstance) -> list[tuple[str, str]]:
    """Mark failed the runs of this host whose process is gone and free their slots, and the slots
    of finished or deleted runs; return (run id, job name) of the runs marked failed."""
    storage = instance.event_log_storage
    dead = []
    if isinstance(storage, SqliteEventLogStorage):
        for record in instance.get_run_records(RunsFilter(statuses=RUNNING)):
            run = record.dagster_run
            pids = _recorded_pids(instance, run.run_id)
            if pids and not any(_runs_since(pid, record.start_time) for pid in pids):
                instance.report_run_failed(
                    run, f"The process of this run (pid {', '.join(map(str, pids))}) ended without ending the "
                         "run (killed?): marked failed by `biodata-cache-pipeline materialize`, which freed its pools."
                )
                storage.free_concurrency_slots_for_run(run.run_id)
                dead.append((run.run_id, run.job_name))
        _stop_compute_log_tails([run_id for run_id, _ in dead])
    held = storage.get_concurrency_run_ids()
    runs = {run.run_id: run for run in instance.get_runs(RunsFilter(run_ids=list(held)))} if held else {}
    for run_id in held:
        if run_id not in runs or runs[run_id].is_finished:
            storage.free_concurrency_slots_for_run(run_id)
    return dead


def wait_for_pools(instance: DagsterInstance, pools: Iterable[str], timeout: float, say: Callable[[str], None]) -> None:
    """Return once every pool has a free slot; `BuildBlocked` naming the holding run after `timeout`
    seconds or on Ctrl-C. Runs that die meanwhile are released."""
    deadline, announced, waiting_for = time.monotonic() + timeout, None, "the table pools"
    try:
        while (held := _held_pool(instance, pools)) is not None:
            waiting_for = f"table pool {held[0]}, held by {_describe_run(instance, held[1])}"
            if time.monotonic() >= deadline:
                raise BuildBlocked(
                    f"gave up after {timeout:.0f}s ({WAIT_VARIABLE}) waiting for {waiting_for}: "
                    "run again once it has ended, or terminate it in the Dagster UI (Runs)"
                )
            if held != announced:
                say(f"waiting up to {timeout:.0f}s for {waiting_for} (Ctrl-C stops)")
                announced = held
            time.sleep(POLL_SECONDS)
            release_dead_runs(instance)
    except KeyboardInterrupt:
        raise BuildBlocked(f"interrupted while waiting for {waiting_for}: nothing was built") from None


def _wait_seconds() -> float:
    try:
        return number_setting(WAIT_VARIABLE, DEFAULT_WAIT_SECONDS, "seconds", "600")
    except ValueError as error:
        raise BuildBlocked(str(error)) from None


def _held_pool(instance: DagsterInstance, pools: Iterable[str]) -> tuple[str, str] | None:
    """(pool, run holding its last slot) for the first pool without a free slot, else None."""
    for pool in pools:
        info = instance.event_log_storage.get_concurrency_info(pool)
        if info.claimed_slots and info.limit is not None and len(info.claimed_slots) >= info.limit:
            return pool, info.claimed_slots[0].run_id
    return None


def _describe_run(instance: DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id}"
    pids = _recorded_pids(instance, run_id)
    process = f", pid {', '.join(map(str, pids))}" if pids else ""
    return f"run {run_id} ({run.job_name}, {run.status.value}{process})"


def _recorded_pids(instance: DagsterInstance, run_id: str) -> list[int]:
    """The process ids Dagster's engine events recorded for the run ("Executing steps in process")."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    pids = []
    for record in records:
        metadata = record.event_log_entry.dagster_event.engine_event_data.metadata
        text = getattr(metadata.get("pid"), "value", None)
        if isinstance(text, str) and text.isdigit() and int(text) not in pids:
            pids.append(int(text))
    return pids


def _runs_since(pid: int, run_start: float | None) -> bool:
    """Whether process `pid` runs on this host and is the one that started the run: not this
    process (which runs no build yet), nor a later process given the same id."""
    if pid == os.getpid() or not process_alive(pid):
        return False
    started = _process_start_time(pid)
    return started is None or run_start is None or started <= run_start + START_TOLERANCE_SECONDS


def _process_start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch), from /proc; None where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/stat") as boot:
            booted = next(int(line.split()[1]) for line in boot if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return booted + ticks / os.sysconf("SC_CLK_TCK")


def _stop_compute_log_tails(run_ids: Sequence[str]) -> None:
    """Kill the `tail -F` processes mirroring the compute logs of these runs (they outlive a kill).
    SIGKILL, not SIGTERM: a tail inherits its run's signal dispositions, and a run started with
    SIGINT ignored (a background job of a script) ignores SIGTERM too, since Dagster maps SIGTERM
    to the SIGINT handler."""
    if not run_ids:
        return
    try:
        listing = subprocess.run(["ps", "-ww", "-Ao", "pid=,args="], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for line in listing.splitlines():
        pid, _, args = line.strip().partition(" ")
        if args.startswith("tail ") and any(f"/{run_id}/compute_logs/" in args for run_id in run_ids):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
