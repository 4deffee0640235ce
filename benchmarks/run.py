"""biodata-cache benchmarks: speed and peak memory at AIND scale; results in benchmarks/README.md.

    .venv/bin/python benchmarks/run.py                   # every measurement, both corpus kinds
    .venv/bin/python benchmarks/run.py --quick           # the 10,000-asset measurements only (printed)
    .venv/bin/python benchmarks/run.py full --kind cloned --assets 100000 --runs 1 --no-readme

(`make bench`, `make bench QUICK=1`.) Measurements, each in a fresh process. Peak memory is
reported twice: the child's own `ru_maxrss` (from `os.wait4`), and the peak of the summed RSS of
the child and all its descendants, sampled every 0.2 s from /proc (the snapshot refresh parses
records in spawned worker processes, which `ru_maxrss` of the child does not count).

Two corpus kinds (`--kind`): `sample` (`biodata-cache-sample`, seed 0; 10,000 and 100,000 assets,
about 6 KB per record) and `cloned` (`../shared/tools/clone_records.py`: records cloned from
real ones, about 80 KB each with many QC metrics; 30,000 and 100,000 records, seeds in
CLONED_SEEDS, plus the foraging session table of a sample corpus). `<scratch>/cloned-<N>` may be a
symlink to a cloned corpus made earlier; it is used as it is and never deleted.

- `full`: `biodata-cache-pipeline materialize` (the record snapshot, every table, quality_control
  for every subject) into an empty cache with a new Dagster instance (the project's dagster.yaml,
  SQLite); per-step times are the step durations recorded by the instance.
- `incremental`: the nightly path, `materialize --changed-only`, after 1% of the records were
  modified (every 100th asset folder: `_last_modified` moved on and one QC status added; restored
  afterwards), on a copy of the full build's cache (with its record snapshot) and instance; and
  with nothing modified.
- `parse`: one plain parse of a corpus (cloned by default) on one core: read every
  metadata.nd.json and `orjson.loads` it with the collector disabled; the README divides the full
  build's time by it.
- `docdb`: the prod resources against the DocDB stand-in (in this process, 127.0.0.1) serving
  10,000 cloned records: response bytes of a full build, of `--changed-only` after 1% of the
  documents changed, and of `--changed-only` with nothing changed.
- `qc`: quality_control for 5,000 subjects (500 with `--quick`) in one run, as the sensor or a
  single-run backfill does it: partition keys added, the run created (planned events), executed,
  checked.
- `client`: `asset_basics()`, one subject's `quality_control`, a `query()` joining asset_basics
  and source_data, against the 100,000-asset cache; first call (cold) and later calls (warm).
- `sensor`: `benchmarks/sensor_10k.py` (one sensor evaluation with 10,000 subjects).

`--stock-event-log` runs `full` and `qc` with Dagster's own SQLite event log instead of the
project's (dagster.yaml without `event_log_storage`): the before/after of
`biodata_cache_pipeline/event_log.py`.

Corpora and every run folder live under the scratch folder (`--scratch`, default
`$BDC_BENCH_DIR` or /tmp/bdc-bench); corpora are generated once and reused. Medians over
`--runs` repetitions (default 3). Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "benchmarks" / "README.md"
DEFAULT_SCRATCH = os.environ.get("BDC_BENCH_DIR", "/tmp/bdc-bench")
SEED = 0
SIZES = (10_000, 100_000)
QC_SUBJECTS = 5_000
CLIENT_ASSETS = 100_000
MODIFIED_EVERY = 100  # 1% of the records
MODIFIED_AT = "2026-01-15T02:00:00.000000Z"
MODIFIED_MTIME = datetime(2026, 1, 15, 2, tzinfo=timezone.utc).timestamp()
RESULTS_START = "<!-- results:start (written by benchmarks/run.py) -->"
RESULTS_END = "<!-- results:end -->"
MEASUREMENTS = ("full", "incremental", "parse", "docdb", "qc", "client", "sensor")
STOCK_EVENT_LOG = "stock-event-log"
INCREMENTAL_VARIANTS = ("modified_1pct", "unchanged")
KINDS = ("sample", "cloned")
CLONED_SIZES = (30_000, 100_000)
CLONED_SEEDS = {30_000: 5, 100_000: 7, 10_000: 11}  # seeds of the corpora made for the results below
CLONE_TOOL = PROJECT.parent / "shared" / "tools" / "clone_records.py"
CLONE_FIXTURES = PROJECT.parent / "shared" / "fixtures" / "records"
DOCDB_RECORDS = 10_000  # mongomock holds every document in memory
PIPELINE_ENV = (
    "BIODATA_CACHE_ENV", "BIODATA_SAMPLE_ROOT", "BIODATA_CACHE_ROOT", "BIODATA_OPEN_DATA_ROOT",
    "BIODATA_FORAGING_SESSIONS", "BIODATA_CACHE_BACKEND", "BIODATA_CACHE_VERSION", "BIODATA_CACHE_LOCAL_COPY",
    "BIODATA_CACHE_OFFLINE", "DAGSTER_HOME", "BIODATA_DOCDB_LOOPBACK_PORT", "BIODATA_DOCDB_HOST",
)


# -- child processes ---------------------------------------------------------------------------


def run_child(args: list[str], env: dict[str, str], label: str) -> dict:
    """Run `args` in a fresh process; wall seconds, its own peak RSS (MB) and its stdout."""
    child_env = {k: v for k, v in os.environ.items() if k not in PIPELINE_ENV}
    child_env.update(env)
    out_path = Path(env.get("BDC_BENCH_RUN_DIR", "/tmp")) / f"{label}.out"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        # Not in the project folder: the code is the installed package (or what PYTHONPATH names).
        process = subprocess.Popen(args, env=child_env, stdout=out, stderr=subprocess.STDOUT, cwd=out_path.parent)
        sampler = TreeRss(process.pid).start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    output = out_path.read_text(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{label}: {' '.join(args)} exited with {process.returncode}:\n{output[-4000:]}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": sampler.peak_kb / 1024,
            "tree_max_processes": sampler.max_processes, "stdout": output}


class TreeRss:
    """Samples the summed RSS (VmRSS of /proc/<pid>/status) of a process and all its descendants
    every `interval` seconds, in a thread; `peak_kb` is the largest sum seen. The child's own
    `ru_maxrss` misses the snapshot refresh's worker processes (spawned, not its threads)."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.max_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TreeRss":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        total, count, todo = 0, 0, [self.pid]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, ()))
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        count += 1
                        break
            except OSError:
                continue
        self.peak_kb = max(self.peak_kb, total)
        self.max_processes = max(self.max_processes, count)


def pipeline_env(corpus: Path, run_dir: Path, variant: str | None = None) -> dict[str, str]:
    """The child's environment; its Dagster home has the project's dagster.yaml, or for the
    `stock-event-log` variant the same without `event_log_storage` (Dagster's own SQLite event log)."""
    home = run_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    instance_file = home / "dagster.yaml"
    if variant == STOCK_EVENT_LOG:
        settings = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
        del settings["event_log_storage"]
        instance_file.write_text(yaml.safe_dump(settings))
    elif not instance_file.exists():
        instance_file.symlink_to(PROJECT / "dagster.yaml")
    return {
        "BIODATA_CACHE_ENV": "local",
        "BIODATA_SAMPLE_ROOT": str(corpus),
        "BIODATA_CACHE_ROOT": str(run_dir / "cache"),
        "DAGSTER_HOME": str(home),
        "BDC_BENCH_RUN_DIR": str(run_dir),
    }


def materialize(corpus: Path, run_dir: Path, label: str, *extra: str, variant: str | None = None,
                env: dict[str, str] | None = None) -> dict:
    """`biodata-cache-pipeline materialize` in a child; its wall time, RSS and the instance's step times."""
    env = {**pipeline_env(corpus, run_dir, variant), **(env or {})}
    known = {run["run_id"] for run in dagster_runs(run_dir / "home")} if (run_dir / "home" / "history").exists() else set()
    result = run_child([sys.executable, "-m", "biodata_cache_pipeline", "materialize", *extra], env, label)
    result["runs"] = [run for run in dagster_runs(run_dir / "home") if run["run_id"] not in known]
    result["stdout"] = result["stdout"][-2000:]
    return result


def dagster_runs(home: Path) -> list[dict]:
    """Runs of the instance at `home`, oldest first: wall time, step times, event counts."""
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = DagsterInstance.get()
        runs = []
        for run in reversed(instance.get_runs()):
            stats = instance.get_run_stats(run.run_id)
            steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run.run_id)
                     if s.end_time and s.start_time}
            runs.append({
                "run_id": run.run_id,
                "status": run.status.value,
                "created_s": run_created(instance, run.run_id),
                "wall_s": (stats.end_time or 0) - (stats.start_time or 0),
                "steps": steps,
                "materializations": stats.materializations,
            })
        instance.dispose()
        return runs
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def run_created(instance, run_id: str) -> float:
    """Seconds from the run's creation (planned events written) to its start."""
    record = instance.get_run_record_by_id(run_id)
    stats = instance.get_run_stats(run_id)
    if record is None or not stats.start_time:
        return 0.0
    return max(0.0, stats.start_time - record.create_timestamp.timestamp())


# -- corpora -----------------------------------------------------------------------------------


def corpus_path(scratch: Path, assets: int, kind: str = "sample") -> Path:
    """The corpus of `assets` assets, generated once: `sample` from biodata-cache-sample (seed 0),
    `cloned` from ../shared/tools/clone_records.py (real-shaped records, about 80 KB each; seed
    CLONED_SEEDS) with the foraging session table of a sample corpus. `<scratch>/cloned-<N>` may be
    a symlink to a cloned corpus made earlier (with `_foraging/session_table.parquet`)."""
    if kind == "cloned":
        return cloned_corpus_path(scratch, assets)
    corpus = scratch / f"corpus-{assets}"
    restore_modified(scratch, corpus)
    if not (corpus / ".complete").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        print(f"generating a corpus of {assets} assets in {corpus}", flush=True)
        subprocess.run([sys.executable, "-m", "biodata_cache_pipeline.sample_corpus", "--assets", str(assets),
                        "--seed", str(SEED), "--out", str(corpus), "--quiet"], check=True, cwd=PROJECT)
        (corpus / ".complete").touch()
    return corpus


def cloned_corpus_path(scratch: Path, assets: int) -> Path:
    corpus = scratch / f"cloned-{assets}"
    restore_modified(scratch, corpus)
    foraging = corpus / "_foraging" / "session_table.parquet"
    if corpus.is_symlink() and foraging.exists():
        return corpus  # made elsewhere; never deleted here
    if not (corpus / ".complete").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        seed = CLONED_SEEDS.get(assets, 1)
        print(f"cloning {assets} real-shaped records (seed {seed}) into {corpus}", flush=True)
        subprocess.run([sys.executable, str(CLONE_TOOL), "--records", str(CLONE_FIXTURES), "--scale", str(assets),
                        "--seed", str(seed), "--out", str(corpus)], check=True, cwd=PROJECT, stdout=subprocess.DEVNULL)
        foraging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus_path(scratch, 10_000) / "_foraging" / "session_table.parquet", foraging)
        (corpus / ".complete").touch()
    return corpus


def modified_journal(scratch: Path, corpus: Path) -> Path:
    return scratch / f"{corpus.name}.originals"


def modify_records(scratch: Path, corpus: Path, every: int = MODIFIED_EVERY) -> int:
    """Modify every `every`-th asset folder (sorted): `_last_modified` moves on and the first QC
    metric gets a new status (whole-record files), or the core files get a new modification time.
    The originals are kept in a journal folder so `restore_modified` can put them back."""
    from biodata_cache_pipeline.sources.local_folder import CORE_FILES, WHOLE_RECORD_FILE, is_asset_folder_name

    journal = modified_journal(scratch, corpus)
    if journal.exists():
        raise RuntimeError(f"{journal} exists: the corpus is already modified")
    folders = sorted(p.name for p in os.scandir(corpus) if p.is_dir() and is_asset_folder_name(p.name))
    chosen = folders[every // 2::every]
    journal.mkdir()
    for folder in chosen:
        files = [corpus / folder / WHOLE_RECORD_FILE] if (corpus / folder / WHOLE_RECORD_FILE).exists() else [
            corpus / folder / name for name in CORE_FILES if (corpus / folder / name).exists()
        ]
        for path in files:
            saved = journal / folder / path.name
            saved.parent.mkdir(exist_ok=True)
            shutil.copy2(path, saved)
        record_file = files[0]
        if record_file.name == WHOLE_RECORD_FILE:
            try:
                record = json.loads(record_file.read_bytes())
            except ValueError:
                record = None  # an unreadable record: only its time changes
            if isinstance(record, dict):
                modify_record(record)
                record_file.write_text(json.dumps(record))
        for path in files:
            os.utime(path, (MODIFIED_MTIME, MODIFIED_MTIME))
    (journal / ".complete").touch()
    return len(chosen)


def modify_record(record: dict) -> None:
    """`_last_modified` moves on and the first QC metric gets a new status."""
    record["_last_modified"] = MODIFIED_AT
    qc = record.get("quality_control")
    metrics = qc.get("metrics") if isinstance(qc, dict) else None
    if isinstance(metrics, list) and metrics and isinstance(metrics[0], dict):
        history = metrics[0].get("status_history")
        if isinstance(history, list):
            history.append({"evaluator": "benchmark", "status": "Fail", "timestamp": MODIFIED_AT})


def restore_modified(scratch: Path, corpus: Path) -> None:
    journal = modified_journal(scratch, corpus)
    if not journal.exists():
        return
    for folder in journal.iterdir():
        if folder.is_dir():
            for saved in folder.iterdir():
                shutil.copy2(saved, corpus / folder.name / saved.name)
    shutil.rmtree(journal)


# -- measurements ------------------------------------------------------------------------------


def measure_full(scratch: Path, assets: int, runs: int, variant: str | None = None, kind: str = "sample") -> dict:
    corpus = corpus_path(scratch, assets, kind)
    key = result_key(assets, variant, kind)
    results = []
    for i in range(runs):
        run_dir = scratch / "runs" / f"full-{key}-{i}"
        shutil.rmtree(run_dir, ignore_errors=True)
        result = materialize(corpus, run_dir, "materialize", variant=variant)
        print(f"full build, {key} assets, run {i + 1}/{runs}: {result['wall_s']:.1f} s, "
              f"main {result['rss_mb']:.0f} MB, process tree {result['tree_rss_mb']:.0f} MB "
              f"({result['tree_max_processes']} processes)", flush=True)
        results.append(result)
        keep = scratch / "runs" / f"full-{key}"
        if i == runs - 1:
            shutil.rmtree(keep, ignore_errors=True)
            run_dir.rename(keep)
        else:
            shutil.rmtree(run_dir)
    return {"assets": assets, "variant": variant, "kind": kind, "runs": results}


def result_key(assets: int, variant: str | None, kind: str = "sample") -> str:
    """`10000`, `10000+stock-event-log`, `cloned-30000`: keys of the results JSON."""
    key = str(assets) if kind == "sample" else f"{kind}-{assets}"
    return f"{key}+{variant}" if variant else key


def parse_key(key: str) -> tuple[str, int, str]:
    """(kind, assets, variant) of a result key."""
    head, _, variant = key.partition("+")
    kind, _, assets = head.rpartition("-")
    return kind or "sample", int(assets), variant


def full_build_dir(scratch: Path, assets: int, kind: str = "sample") -> Path:
    built = scratch / "runs" / f"full-{result_key(assets, None, kind)}"
    if not (built / "cache").exists():
        print(f"no full build of {result_key(assets, None, kind)} assets yet: building one", flush=True)
        measure_full(scratch, assets, 1, kind=kind)
    return built


def copy_build(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("*.out"))


def measure_incremental(scratch: Path, assets: int, runs: int, only: list[str] | None = None,
                        kind: str = "sample") -> dict:
    corpus = corpus_path(scratch, assets, kind)
    key = result_key(assets, None, kind)
    built = full_build_dir(scratch, assets, kind)
    shown = [v for v in INCREMENTAL_VARIANTS if not only or v in only]
    variants = {}
    for variant in shown:
        results = []
        for i in range(runs):
            run_dir = scratch / "runs" / f"incremental-{key}"
            copy_build(built, run_dir)
            modified = modify_records(scratch, corpus) if variant.startswith("modified") else 0
            try:
                result = materialize(corpus, run_dir, "materialize-changed-only", "--changed-only")
            finally:
                restore_modified(scratch, corpus)
            result["records_modified"] = modified
            match = re.search(r"building quality_control: (\d+) subjects to build", result["stdout"])
            result["subjects_rebuilt"] = int(match.group(1)) if match else None
            print(f"incremental ({variant}), {key} assets, run {i + 1}/{runs}: {result['wall_s']:.1f} s, "
                  f"main {result['rss_mb']:.0f} MB, tree {result['tree_rss_mb']:.0f} MB, "
                  f"{result['subjects_rebuilt']} subjects rebuilt", flush=True)
            results.append(result)
        variants[variant] = results
        shutil.rmtree(scratch / "runs" / f"incremental-{key}", ignore_errors=True)
    return {"assets": assets, "kind": kind, "variants": variants}


def measure_qc(scratch: Path, assets: int, subjects: int, runs: int, variant: str | None = None) -> dict:
    corpus = corpus_path(scratch, assets)
    built = full_build_dir(scratch, assets)
    results = []
    for i in range(runs):
        run_dir = scratch / "runs" / f"qc-{assets}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        shutil.copytree(built / "cache", run_dir / "cache")  # a published asset_basics; a new instance
        env = pipeline_env(corpus, run_dir, variant)
        result = run_child([sys.executable, __file__, "_qc_child", "--subjects", str(subjects)], env, "qc")
        result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
        result["runs"] = dagster_runs(run_dir / "home")
        print(f"quality_control ({variant or 'default'}), {subjects} subjects in one run, run {i + 1}/{runs}: "
              f"{result['wall_s']:.1f} s "
              f"(in-process {result['total_s']:.1f} s), {result['rss_mb']:.0f} MB", flush=True)
        results.append(result)
        shutil.rmtree(run_dir)
    return {"assets": assets, "subjects": subjects, "variant": variant, "runs": results}


def qc_child(subjects: int) -> None:
    """In the child: add `subjects` partition keys and build them in one quality_control run."""
    started = time.perf_counter()
    from dagster import DagsterInstance

    from biodata_cache_client.schema.asset_basics import ASSET_BASICS
    from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
    from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS
    from biodata_cache_pipeline.automation import partition_range_tags
    from biodata_cache_pipeline.cli import _run
    from biodata_cache_pipeline.environment import pipeline_resources
    from biodata_cache_pipeline.subjects import partition_key_problem

    imported = time.perf_counter()
    resources = pipeline_resources()
    instance = DagsterInstance.get()
    basics = resources["cache"].read_published(ASSET_BASICS, ["subject_id"])
    ids = sorted({s for s in basics.column("subject_id").to_pylist() if s and partition_key_problem(s) is None})
    keys = ids[:subjects]
    if len(keys) < subjects:
        raise SystemExit(f"only {len(keys)} subjects in the corpus, {subjects} asked for")
    planned = time.perf_counter()
    instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, keys)
    added = time.perf_counter()
    _run(instance, resources, [QUALITY_CONTROL.name], partition_range_tags(keys[0], keys[-1]), {})
    done = time.perf_counter()
    print(json.dumps({
        "import_s": imported - started,
        "select_subjects_s": planned - imported,
        "partition_add_s": added - planned,
        "run_s": done - added,
        "total_s": done - started,
        "first": keys[0],
        "last": keys[-1],
    }))


def measure_parse(scratch: Path, assets: int, runs: int, kind: str = "cloned") -> dict:
    """One plain parse of the corpus on one core, in a fresh process: read every
    metadata.nd.json and orjson.loads it, the collector disabled (as the snapshot workers do)."""
    corpus = corpus_path(scratch, assets, kind)
    key = result_key(assets, None, kind)
    results = []
    for i in range(runs):
        result = run_child([sys.executable, __file__, "_parse_child", str(corpus)],
                           {"BDC_BENCH_RUN_DIR": str(scratch / "runs" / "parse")}, f"parse-{key}")
        result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
        print(f"plain parse, {key}, run {i + 1}/{runs}: {result['wall_s']:.1f} s (read + loads "
              f"{result['total_s']:.1f} s, loads alone {result['loads_s']:.1f} s), {result['records']} records, "
              f"{result['bytes'] / 1e9:.2f} GB", flush=True)
        results.append(result)
    return {"assets": assets, "kind": kind, "runs": results}


def parse_child(corpus: str) -> None:
    import gc

    import orjson

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    gc.disable()
    started = time.perf_counter()
    loads = 0.0
    records = size = 0
    for entry in sorted(os.scandir(corpus), key=lambda e: e.name):
        if entry.name.startswith((".", "_")) or not entry.is_dir():
            continue
        try:
            data = Path(entry.path, "metadata.nd.json").read_bytes()
        except FileNotFoundError:
            continue
        begin = time.perf_counter()
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        loads += time.perf_counter() - begin
        records += 1
        size += len(data)
    print(json.dumps({"total_s": time.perf_counter() - started, "loads_s": loads, "records": records, "bytes": size}))


def docdb_corpus(scratch: Path, records: int) -> Path:
    """`records` real-shaped records: symlinks to the first asset folders of the cloned 30,000 corpus."""
    from biodata_cache_pipeline.sources.local_folder import is_asset_folder_name

    corpus = scratch / f"cloned-docdb-{records}"
    if (corpus / ".complete").exists():
        return corpus
    shutil.rmtree(corpus, ignore_errors=True)
    source = corpus_path(scratch, 30_000, "cloned")
    corpus.mkdir(parents=True)
    folders = sorted(e.name for e in os.scandir(source) if e.is_dir() and is_asset_folder_name(e.name))[:records]
    for name in folders:
        (corpus / name).symlink_to(source.resolve() / name)
    (corpus / "_foraging").mkdir()
    shutil.copy2(source / "_foraging" / "session_table.parquet", corpus / "_foraging" / "session_table.parquet")
    (corpus / ".complete").touch()
    return corpus


def measure_docdb(scratch: Path, records: int = DOCDB_RECORDS) -> dict:
    """Response bytes of the DocDB stand-in (in this process) to the prod resources (in a child):
    a full build, then `--changed-only` after 1% of the documents changed, then with nothing changed."""
    import gc

    sys.path.insert(0, str(PROJECT / "tests"))  # the stand-in lives with the tests (test-only dependencies)
    from docdb_standin import DocDbStandIn, records_from_folder

    corpus = docdb_corpus(scratch, records)
    started = time.perf_counter()
    documents = records_from_folder(str(corpus))
    standin = DocDbStandIn(documents)
    count = len(documents)
    del documents
    gc.collect()
    load_s = time.perf_counter() - started
    print(f"DocDB stand-in: {count} documents loaded in {load_s:.0f} s", flush=True)
    run_dir = scratch / "runs" / f"docdb-{records}"
    shutil.rmtree(run_dir, ignore_errors=True)
    results: dict = {"records": count, "load_s": load_s}
    with standin:
        env = {
            "BIODATA_CACHE_ENV": "prod",
            "BIODATA_DOCDB_LOOPBACK_PORT": str(standin.port),
            "BIODATA_OPEN_DATA_ROOT": str(corpus),
            "BIODATA_FORAGING_SESSIONS": str(corpus / "_foraging" / "session_table.parquet"),
        }

        def one(label: str, *extra: str) -> dict:
            bytes_before, requests_before = standin.bytes_served, len(standin.requests)
            result = materialize(corpus, run_dir, label, *extra, env=env)
            result["bytes"] = standin.bytes_served - bytes_before
            result["requests"] = len(standin.requests) - requests_before
            print(f"DocDB {label}: {result['bytes'] / 1e6:.1f} MB served in {result['requests']} requests, "
                  f"{result['wall_s']:.1f} s, tree {result['tree_rss_mb']:.0f} MB", flush=True)
            return result

        results["full"] = one("docdb-full")
        ids = sorted(d["_id"] for d in standin.collection.find({}, {"_id": 1}))[MODIFIED_EVERY // 2::MODIFIED_EVERY]
        for _id in ids:
            document = standin.collection.find_one({"_id": _id})
            modify_record(document)
            standin.collection.replace_one({"_id": _id}, document)
        results["modified"] = len(ids)
        results["changed_only_1pct"] = one("docdb-changed-only-1pct", "--changed-only")
        results["changed_only_unchanged"] = one("docdb-changed-only-unchanged", "--changed-only")
    shutil.rmtree(run_dir, ignore_errors=True)
    return results


CLIENT_CALLS = ("asset_basics", "quality_control", "query")
CLIENT_QUERY = """
    select a.name as raw_name, a.subject_id, a.modalities, s.name as derived_name, s.pipeline_name
    from asset_basics a join source_data s on s.source_data = a.name
    where a.data_level = 'raw'
"""


def typical_subject(cache: Path) -> str:
    """The subject whose quality_control row count is the median (ties: smallest id)."""
    from biodata_cache_client.schema.quality_control import QUALITY_CONTROL
    from biodata_cache_pipeline.storage import CacheStore

    state = CacheStore(str(cache)).read_partition_state(QUALITY_CONTROL)
    ordered = sorted(state.items(), key=lambda item: (item[1]["rows"], item[0]))
    return ordered[len(ordered) // 2][0]


def measure_client(scratch: Path, assets: int, runs: int, repeats: int = 5) -> dict:
    built = full_build_dir(scratch, assets)
    subject = typical_subject(built / "cache")
    env = {"BIODATA_CACHE_BACKEND": "LOCAL", "BIODATA_CACHE_ROOT": str(built / "cache"),
           "BDC_BENCH_RUN_DIR": str(scratch / "runs" / "client")}
    calls = {}
    for call in CLIENT_CALLS:
        results = []
        for _ in range(runs):
            result = run_child([sys.executable, __file__, "_client_child", call, "--subject", subject,
                                "--repeats", str(repeats)], env, f"client-{call}")
            result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
            results.append(result)
        cold = statistics.median(r["cold_s"] for r in results)
        warm = statistics.median(r["warm_s"] for r in results)
        print(f"client {call}: cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms, {results[0]['rows']} rows",
              flush=True)
        calls[call] = results
    return {"assets": assets, "subject": subject, "repeats": repeats, "calls": calls}


def client_child(call: str, subject: str, repeats: int) -> None:
    started = time.perf_counter()
    import biodata_cache_client as bdc

    imported = time.perf_counter()
    read = {
        "asset_basics": lambda: bdc.asset_basics(),
        "quality_control": lambda: bdc.quality_control(subject),
        "query": lambda: bdc.query(CLIENT_QUERY),
    }[call]
    times = []
    for _ in range(repeats + 1):
        begin = time.perf_counter()
        frame = read()
        times.append(time.perf_counter() - begin)
    print(json.dumps({"import_s": imported - started, "cold_s": times[0], "warm_s": statistics.median(times[1:]),
                      "rows": len(frame), "subject": subject}))


SENSOR_LINE = re.compile(r"^(?P<label>\S.*?)\s+(?P<seconds>\d+\.\d+) s\b")


def measure_sensor(scratch: Path, runs: int) -> dict:
    results = []
    for _ in range(runs):
        result = run_child([sys.executable, str(PROJECT / "benchmarks" / "sensor_10k.py")],
                           {"BDC_BENCH_RUN_DIR": str(scratch / "runs" / "sensor")}, "sensor")
        timings, evaluation = {}, ""
        for line in result["stdout"].splitlines():
            if m := SENSOR_LINE.match(line.strip()):
                label = m["label"].strip()
                if label.startswith("("):  # "(applying the partition requests": after the evaluation above it
                    label = f"{evaluation}: applying its partition requests (outside the sensor)"
                else:
                    evaluation = label
                timings[label] = float(m["seconds"])
        result["timings"] = timings
        results.append(result)
    medians = {label: statistics.median(r["timings"][label] for r in results) for label in results[0]["timings"]}
    for label, seconds in medians.items():
        print(f"sensor: {label}: {seconds:.2f} s", flush=True)
    return {"runs": results}


# -- report ------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gb": round(memory / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "pyarrow": metadata.version("pyarrow"),
        "dagster": metadata.version("dagster"),
        "duckdb": metadata.version("duckdb"),
        "pandas": metadata.version("pandas"),
        "kernel": platform.release(),
    }


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def step_medians(results: list[dict]) -> dict[str, float]:
    """Median seconds per step key over repetitions (all runs of a repetition merged)."""
    keys = {key for result in results for run in result["runs"] for key in run["steps"]}
    merged = [{key: secs for run in result["runs"] for key, secs in run["steps"].items()} for result in results]
    return {key: median(m.get(key) for m in merged) for key in sorted(keys)}


def table_times(steps: dict[str, float]) -> dict[str, tuple[float, float]]:
    """table -> (its asset step's seconds, its checks' seconds)."""
    from biodata_cache_client.schema import TABLES

    def owner(step: str) -> str | None:
        candidates = [name for name in TABLES if step == name or step.startswith(f"{name}_")]
        return max(candidates, key=len) if candidates else None

    checks = {name: 0.0 for name in TABLES}
    for step, seconds in steps.items():
        name = owner(step)
        if name is not None and step != name:
            checks[name] += seconds
    return {name: (steps.get(name, float("nan")), checks[name]) for name in TABLES}


def fmt(seconds: float, digits: int = 1) -> str:
    return "–" if seconds != seconds else f"{seconds:.{digits}f}"


def qc_run(result: dict) -> dict | None:
    """The quality_control run of a `materialize` (its second run), if there was one."""
    return result["runs"][1] if len(result["runs"]) > 1 else None


def created_to_finished(run: dict | None) -> float | None:
    return None if run is None else run["wall_s"] + run["created_s"]


def column_label(key: str) -> str:
    kind, assets, variant = parse_key(key)
    label = f"{assets:,} assets" if kind == "sample" else f"{assets:,} records, real-shaped ({kind})"
    return label + (f" ({variant})" if variant else "")


def by_size(keys) -> list[str]:
    """Sample corpora first, then cloned; by size."""
    return sorted(keys, key=lambda key: (KINDS.index(parse_key(key)[0]), parse_key(key)[1], key))


def tree_mb(runs: list[dict]) -> str:
    values = [r["tree_rss_mb"] for r in runs if r.get("tree_rss_mb")]
    return f"{max(values):.0f}" if values else "–"


OTHER_STEPS = ("record_snapshot",)  # steps that are not a table's


def render(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB RAM, Linux {m['kernel']}; Python {m['python']}, "
        f"pyarrow {m['pyarrow']}, dagster {m['dagster']}, duckdb {m['duckdb']}, pandas {m['pandas']}; "
        f"measured {m['date']}. Times are medians of the repetitions; peak memory is the largest of them: "
        "*process tree* is the peak of the summed RSS (VmRSS) of the measured process and all its descendants "
        "(the snapshot refresh's worker processes), sampled every 0.2 s; *main* is the measured process's own "
        "`ru_maxrss` (on Linux a child started by `subprocess` inherits the harness's peak RSS at exec, so *main* is "
        "never below the harness's own peak; the tree sum has no such floor).",
        "",
    ]
    full = results.get("full", {})
    if full:
        keys = by_size(full)
        runs = {key: full[key]["runs"] for key in keys}
        lines += [
            "**Full build**: `biodata-cache-pipeline materialize` into an empty cache with a new SQLite "
            "instance (the project's dagster.yaml): the ten-table run, then quality_control for every subject "
            "in one run. Per-table times are the Dagster step durations; checks in brackets.",
            "",
            "| | " + " | ".join(column_label(key) for key in keys) + " |",
            "|---|" + "---:|" * len(keys),
            "| **wall time (s)**, process start to exit | "
            + " | ".join(f"**{fmt(median(r['wall_s'] for r in runs[k]))}**" for k in keys) + " |",
            "| **peak memory, process tree (MB)** | " + " | ".join(f"**{tree_mb(runs[k])}**" for k in keys) + " |",
            "| peak RSS, main process (MB) | " + " | ".join(f"{max(r['rss_mb'] for r in runs[k]):.0f}" for k in keys) + " |",
            "| repetitions | " + " | ".join(str(len(runs[k])) for k in keys) + " |",
        ]
        steps = {key: step_medians(runs[key]) for key in keys}
        for step in OTHER_STEPS:
            lines.append(f"| `{step}` step | " + " | ".join(fmt(steps[k].get(step, float("nan"))) for k in keys) + " |")
        tables = {key: table_times(steps[key]) for key in keys}
        for name in tables[keys[0]]:
            lines.append(f"| `{name}` step [checks] | " + " | ".join(
                f"{fmt(tables[k][name][0])} [{fmt(tables[k][name][1])}]" for k in keys) + " |")
        for label, pick in (
            ("ten-table run: created → finished", lambda r: created_to_finished(r["runs"][0])),
            ("quality_control run: created → finished", lambda r: created_to_finished(qc_run(r))),
            ("&nbsp;&nbsp;of which run creation (planned events)", lambda r: (qc_run(r) or {}).get("created_s")),
            ("subjects (quality_control partitions)", lambda r: (qc_run(r) or {}).get("materializations")),
        ):
            lines.append(f"| {label} | " + " | ".join(fmt(median(pick(r) for r in runs[k]), 0 if "subjects" in label else 1)
                                                     for k in keys) + " |")
        lines.append("")
    incremental = results.get("incremental", {})
    for size in by_size(incremental):
        variants = incremental[size]["variants"]
        full_wall = median(r["wall_s"] for r in full[size]["runs"]) if size in full else float("nan")
        names = {"modified_1pct": "1% modified", "unchanged": "nothing modified"}
        shown = [v for v in INCREMENTAL_VARIANTS if v in variants]
        lines += [
            f"**Nightly incremental, {column_label(size)}**: `materialize --changed-only` on a copy of the full "
            f"build's cache and instance (full build: {fmt(full_wall)} s). Every 100th asset folder modified "
            "(`_last_modified` moved on, a QC status added), restored afterwards.",
            "",
            "| | " + " | ".join(names[v] for v in shown) + " |",
            "|---|" + "---:|" * len(shown),
            "| records modified / subjects rebuilt | " + " | ".join(
                f"{variants[v][0]['records_modified']} / {variants[v][0]['subjects_rebuilt']}" for v in shown) + " |",
            "| **wall time (s)** | " + " | ".join(f"**{fmt(median(r['wall_s'] for r in variants[v]))}**" for v in shown) + " |",
            "| share of the full build | " + " | ".join(
                f"{median(r['wall_s'] for r in variants[v]) / full_wall:.0%}" for v in shown) + " |",
            "| peak memory, process tree / main (MB) | " + " | ".join(
                f"{tree_mb(variants[v])} / {max(r['rss_mb'] for r in variants[v]):.0f}" for v in shown) + " |",
            "| `record_snapshot` step (s) | " + " | ".join(
                fmt(step_medians(variants[v]).get("record_snapshot", float("nan"))) for v in shown) + " |",
            "| ten-table run (s) | " + " | ".join(
                fmt(median(created_to_finished(r["runs"][0]) for r in variants[v])) for v in shown) + " |",
            "| quality_control run (s) | " + " | ".join(
                fmt(median(created_to_finished(qc_run(r)) for r in variants[v])) for v in shown) + " |",
            "| repetitions | " + " | ".join(str(len(variants[v])) for v in shown) + " |",
            "",
        ]
    parse = results.get("parse", {})
    if parse:
        lines += [
            "**Plain parse** of the same corpus, one process pinned to one core, collector disabled: read every "
            "`metadata.nd.json` and `orjson.loads` it (the floor of a build that reads every record once, on one "
            "core); *full build / parse* divides the full build's median wall time by this.",
            "",
            "| corpus | records | JSON (GB) | read + loads (s) | of which loads (s) | process wall (s) | full build (s) | full build / parse |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key in by_size(parse):
            runs = parse[key]["runs"]
            total = median(r["total_s"] for r in runs)
            full_wall = median(r["wall_s"] for r in full[key]["runs"]) if key in full else float("nan")
            lines.append(
                f"| {column_label(key)} | {runs[0]['records']:,} | {runs[0]['bytes'] / 1e9:.2f} | {fmt(total)} | "
                f"{fmt(median(r['loads_s'] for r in runs))} | {fmt(median(r['wall_s'] for r in runs))} | "
                f"{fmt(full_wall)} | {full_wall / total:.2f}× ({len(runs)} parse run{'s' if len(runs) > 1 else ''}) |")
        lines.append("")
    docdb = results.get("docdb")
    if docdb:
        full_bytes = docdb["full"]["bytes"]
        lines += [
            f"**DocDB response bytes** (prod resources, `BIODATA_CACHE_ENV=prod`): the DocDB stand-in "
            f"(`docdb_standin.py`, mongomock, in the harness process on 127.0.0.1) serves {docdb['records']:,} "
            "real-shaped (cloned) records; the pipeline runs in a child; bytes are the response bodies "
            f"(`bytes_served`). Then {docdb['modified']} documents (every 100th by `_id`) get a new "
            "`_last_modified` and a QC status, and `materialize --changed-only` runs on the same cache and instance; "
            "then once more with nothing changed. One run each. Peak memory is the pipeline's process tree only "
            "(the main process's `ru_maxrss` is meaningless here: it starts from the harness's own peak, which holds "
            "the mongomock collection).",
            "",
            "| run | response bytes (MB) | requests | share of the full build's bytes | wall (s) | peak memory, process tree (MB) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, name in (("full build (`materialize`)", "full"),
                            (f"`--changed-only`, {docdb['modified']} documents changed", "changed_only_1pct"),
                            ("`--changed-only`, nothing changed", "changed_only_unchanged")):
            r = docdb[name]
            lines.append(f"| {label} | {r['bytes'] / 1e6:.2f} | {r['requests']} | {r['bytes'] / full_bytes:.2%} | "
                         f"{fmt(r['wall_s'])} | {r['tree_rss_mb']:.0f} |")
        lines.append("")
    for variant, qc in results.get("qc", {}).items():
        runs = qc["runs"]
        steps = step_medians(runs)
        title = "" if variant == "default" else f" — with Dagster's stock SQLite event log (`{variant}`)"
        lines += [
            f"**quality_control, {qc['subjects']:,} subjects in one run**{title}: in a fresh process with a new SQLite "
            f"instance and the {int(qc['assets']):,}-asset cache (published asset_basics): add the partition keys, "
            "then one run over their range, as the sensor or a single-run backfill launches it.",
            "",
            "| | seconds |",
            "|---|---:|",
            f"| **process start to exit** | **{fmt(median(r['wall_s'] for r in runs))}** |",
            f"| imports, instance, subject selection | {fmt(median(r['import_s'] + r['select_subjects_s'] for r in runs))} |",
            f"| add {qc['subjects']:,} partition keys | {fmt(median(r['partition_add_s'] for r in runs))} |",
            f"| run, created → finished | {fmt(median(r['run_s'] for r in runs))} |",
            f"| &nbsp;&nbsp;of which run creation (planned events) | {fmt(median(r['runs'][0]['created_s'] for r in runs))} |",
            f"| &nbsp;&nbsp;of which the `quality_control` step | {fmt(steps.get('quality_control', float('nan')))} |",
            f"| &nbsp;&nbsp;of which its two checks | {fmt(sum(v for k, v in steps.items() if k.startswith('quality_control_')))} |",
            f"| peak RSS (MB) | {max(r['rss_mb'] for r in runs):.0f} |",
            f"| repetitions | {len(runs)} |",
            "",
        ]
    client = results.get("client")
    if client:
        lines += [
            f"**Client reads** from the local cache of the {int(client['assets']):,}-asset build "
            f"(`BIODATA_CACHE_BACKEND=LOCAL`), each repetition a fresh process: *cold* is the first call, *warm* "
            f"the median of the next {client['repeats']}.",
            "",
            "| call | rows | cold (ms) | warm (ms) | client import (s) | peak RSS (MB) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        labels = {
            "asset_basics": "`asset_basics()`",
            "quality_control": f"`quality_control(\"{client['subject']}\")` (the median subject by QC rows)",
            "query": "`query()`: raw assets joined to their derived assets (asset_basics ⋈ source_data)",
        }
        for call, runs in client["calls"].items():
            lines.append(
                f"| {labels[call]} | {runs[0]['rows']:,} | {median(r['cold_s'] for r in runs) * 1000:.0f} | "
                f"{median(r['warm_s'] for r in runs) * 1000:.0f} | {median(r['import_s'] for r in runs):.2f} | "
                f"{max(r['rss_mb'] for r in runs):.0f} |"
            )
        lines += ["", f"{len(next(iter(client['calls'].values())))} processes per call.", ""]
    sensor = results.get("sensor")
    if sensor:
        runs = sensor["runs"]
        lines += [
            "**Sensor** (`benchmarks/sensor_10k.py`): one evaluation of `quality_control_subjects` with 10,000 "
            "subjects (10 records each); the partition requests are applied outside the sensor.",
            "",
            "| evaluation | seconds |",
            "|---|---:|",
        ]
        for label in runs[0]["timings"]:
            lines.append(f"| {label} | {median(r['timings'].get(label) for r in runs):.2f} |")
        lines += ["", f"{len(runs)} repetitions.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_readme(results: dict) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{RESULTS_START}\n{RESULTS_END}\n"
    if RESULTS_START not in text:
        text += f"\n{RESULTS_START}\n{RESULTS_END}\n"
    head, rest = text.split(RESULTS_START, 1)
    _, tail = rest.split(RESULTS_END, 1)
    README.write_text(f"{head}{RESULTS_START}\n{render(results)}{RESULTS_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_qc_child":
        parser = argparse.ArgumentParser()
        parser.add_argument("--subjects", type=int, required=True)
        qc_child(parser.parse_args(argv[1:]).subjects)
        return 0
    if argv and argv[0] == "_parse_child":
        parse_child(argv[1])
        return 0
    if argv and argv[0] == "_client_child":
        parser = argparse.ArgumentParser()
        parser.add_argument("call", choices=CLIENT_CALLS)
        parser.add_argument("--subject", required=True)
        parser.add_argument("--repeats", type=int, default=5)
        args = parser.parse_args(argv[1:])
        client_child(args.call, args.subject, args.repeats)
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", nargs="*", help=f"what to measure: {', '.join(MEASUREMENTS)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="10,000-asset sample measurements only, no parse or docdb "
                        "(results-quick.json; the README is left as it is)")
    parser.add_argument("--assets", type=int, nargs="+",
                        help=f"corpus sizes for full, incremental and parse (sample: {SIZES}, cloned: {CLONED_SIZES})")
    parser.add_argument("--kind", choices=KINDS, nargs="+",
                        help="corpus kinds for full, incremental and parse (default: both; parse: cloned)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement (default 3)")
    parser.add_argument("--scratch", default=DEFAULT_SCRATCH, help="corpora and run folders (default %(default)s)")
    parser.add_argument("--results", help="results JSON (default <scratch>/results.json); merged with earlier results")
    parser.add_argument("--no-readme", action="store_true", help="do not write the table into benchmarks/README.md")
    parser.add_argument("--incremental-variants", nargs="+", choices=INCREMENTAL_VARIANTS,
                        help="incremental only: these variants (default: all)")
    parser.add_argument("--stock-event-log", dest="variant", action="store_const", const=STOCK_EVENT_LOG,
                        help="full and qc only: with Dagster's own SQLite event log instead of the project's "
                        "(the comparison in the README)")
    args = parser.parse_args(argv)

    scratch = Path(args.scratch).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    measurements = args.measurements or [m for m in MEASUREMENTS if not (args.quick and m in ("parse", "docdb"))]
    unknown = sorted(set(measurements) - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurements {unknown}; choose from {', '.join(MEASUREMENTS)}")
    sizes = args.assets or ([SIZES[0]] if args.quick else list(SIZES))
    big = sizes[0] if args.quick else max(max(sizes), CLIENT_ASSETS)
    results_path = Path(args.results) if args.results else scratch / ("results-quick.json" if args.quick else "results.json")
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = machine()

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=1))

    kinds = args.kind or (["sample"] if args.quick or args.variant else list(KINDS))

    def sizes_of(kind: str) -> list[int]:
        return args.assets or (sizes if kind == "sample" else list(CLONED_SIZES))

    if "full" in measurements:
        for kind in kinds:
            for size in sizes_of(kind):
                results.setdefault("full", {})[result_key(size, args.variant, kind)] = measure_full(
                    scratch, size, args.runs, args.variant, kind)
                save()
    if "incremental" in measurements:
        for kind in kinds:
            for size in sizes_of(kind):
                results.setdefault("incremental", {})[result_key(size, None, kind)] = measure_incremental(
                    scratch, size, args.runs, args.incremental_variants, kind)
                save()
    if "parse" in measurements:
        for kind in args.kind or ["cloned"]:
            for size in sizes_of(kind):
                results.setdefault("parse", {})[result_key(size, None, kind)] = measure_parse(
                    scratch, size, args.runs, kind)
                save()
    if "docdb" in measurements:
        results["docdb"] = measure_docdb(scratch)
        save()
    if "qc" in measurements:
        results.setdefault("qc", {})[args.variant or "default"] = measure_qc(
            scratch, big, QC_SUBJECTS if not args.quick else 500, args.runs, args.variant)
        save()
    if "client" in measurements:
        results["client"] = measure_client(scratch, big, args.runs)
        save()
    if "sensor" in measurements:
        results["sensor"] = measure_sensor(scratch, args.runs)
        save()
    print(render(results))
    if not args.no_readme and not args.quick:
        write_readme(results)
        print(f"results written to {README.relative_to(PROJECT)} and {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
