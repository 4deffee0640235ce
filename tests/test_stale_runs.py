"""`materialize` after a build was killed (issue 12.4/12.5): the dead run's table pools are freed and
the next build finishes; a pool held by a live run makes it wait, give up naming that run, or stop
on Ctrl-C. Real processes and a real Dagster home with the project's dagster.yaml."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from biodata_cache_pipeline.sample_corpus import generate_corpus

PROJECT = Path(__file__).resolve().parents[1]
HOLDER = """
import time
from dagster import DagsterInstance, job, op

@op(pool="cache_table_record_snapshot")
def hold():
    time.sleep(600)

@job
def holder():
    hold()

holder.execute_in_process(instance=DagsterInstance.get())
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, assets=200, seed=3)
    return out


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A persistent Dagster home with the project's dagster.yaml, also this test's instance; its
    databases are made before any process starts (two processes making them at once can break them)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get():
        pass
    return home


def environment(corpus: Path, cache: Path, home: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BIODATA_")},
        "BIODATA_CACHE_ENV": "local", "BIODATA_SAMPLE_ROOT": str(corpus), "BIODATA_CACHE_ROOT": str(cache),
        "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1", **extra,
    }


@contextmanager
def signal_handlers(handlers: dict[signal.Signals, object]) -> Iterator[None]:
    """These handlers while inside: what children started inside inherit. An ignored signal stays
    ignored across exec: a test process started in the background of a script ignores SIGINT, and
    after an in-process Dagster run SIGTERM too (Dagster maps it to SIGINT's handler)."""
    saved = {number: signal.signal(number, handler) for number, handler in handlers.items()}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


# What a build started from a terminal has.
TERMINAL_SIGNALS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    with signal_handlers(TERMINAL_SIGNALS):
        return subprocess.Popen(command, env=env, cwd=PROJECT, start_new_session=True, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


MATERIALIZE = [sys.executable, "-m", "biodata_cache_pipeline", "materialize"]


def claimed_slots(instance: DagsterInstance) -> dict[str, str]:
    """Pool -> run holding its slot."""
    storage = instance.event_log_storage
    return {
        key: info.claimed_slots[0].run_id
        for key in storage.get_concurrency_keys()
        if (info := storage.get_concurrency_info(key)).claimed_slots
    }


def wait_for_slot(instance: DagsterInstance, process: subprocess.Popen, timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not (held := claimed_slots(instance)):
        assert process.poll() is None and time.monotonic() < deadline, "no pool slot was ever claimed"
        time.sleep(0.02)
    return held


@pytest.fixture
def held_pool(home, tmp_path):
    """A live run (another process) holding the slot of cache_table_record_snapshot: (run id, pid)."""
    holder = start([sys.executable, "-c", HOLDER], {**os.environ, "DAGSTER_HOME": str(home)})
    try:
        with DagsterInstance.get() as instance:
            yield wait_for_slot(instance, holder)["cache_table_record_snapshot"], holder.pid
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=30)


def test_a_killed_build_does_not_block_the_next(corpus, home, tmp_path):
    env = environment(corpus, tmp_path / "cache", home)
    build = start(MATERIALIZE, env)
    with DagsterInstance.get() as instance:
        try:
            held = wait_for_slot(instance, build)
        finally:
            os.killpg(build.pid, signal.SIGKILL)
            build.communicate(timeout=30)
        killed = set(held.values()).pop()
        assert instance.get_run_by_id(killed).status == DagsterRunStatus.STARTED
        assert claimed_slots(instance)  # still held by the dead run
        with signal_handlers({signal.SIGTERM: signal.SIG_IGN}):  # as a run started with SIGINT ignored has it
            leftover_tail = subprocess.Popen(  # what a kill can leave mirroring the run's compute log
                ["tail", "-F", "-c", "+0", str(home / "storage" / killed / "compute_logs" / "left.out")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        try:
            done = subprocess.run(MATERIALIZE, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"run {killed} (nightly_tables) had stopped without ending" in done.stdout
            assert leftover_tail.wait(timeout=10) == -signal.SIGKILL
        finally:
            if leftover_tail.poll() is None:
                leftover_tail.kill()
                leftover_tail.wait()
        assert instance.get_run_by_id(killed).status == DagsterRunStatus.FAILURE
        assert claimed_slots(instance) == {}
    assert not [p for p in (tmp_path / "cache" / ".staging").iterdir() if f".{build.pid}-" in p.name]


def test_a_build_waiting_for_a_held_pool_gives_up_naming_the_run(corpus, home, tmp_path, held_pool):
    run_id, pid = held_pool
    env = environment(corpus, tmp_path / "cache", home, BIODATA_POOL_WAIT_SECONDS="2")
    done = subprocess.run(MATERIALIZE, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"gave up after 2s (BIODATA_POOL_WAIT_SECONDS) waiting for table pool cache_table_record_snapshot, held by "
        f"run {run_id} (holder, STARTED, pid {pid}): run again once it has ended, or "
        "terminate it in the Dagster UI (Runs)"
    ]
    assert not (tmp_path / "cache").exists()  # nothing was built


def test_ctrl_c_stops_a_waiting_build(corpus, home, tmp_path, held_pool):
    run_id, _ = held_pool
    build = start(MATERIALIZE, environment(corpus, tmp_path / "cache", home))
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(build.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("waiting up to" in line for line in lines):
            assert build.poll() is None and time.monotonic() < deadline, f"the build never waited: {lines}"
            time.sleep(0.05)
        assert run_id in next(line for line in lines if "waiting up to" in line)
        time.sleep(0.5)
        build.send_signal(signal.SIGINT)
        assert build.wait(timeout=30) == 1
        err = build.stderr.read()
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.communicate()
    assert err.startswith("interrupted while waiting for table pool cache_table_record_snapshot, held by "
                          f"run {run_id}"), err
    assert "Traceback" not in err
