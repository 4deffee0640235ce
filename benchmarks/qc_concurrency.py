"""quality_control for N subjects in one run vs in concurrent runs (`subject_runs.py`).

    .venv/bin/python benchmarks/qc_concurrency.py                       # 5,000 subjects, 1 vs 2 runs
    .venv/bin/python benchmarks/qc_concurrency.py --subjects 300 --repeats 1   # a quick check

The corpus is `<scratch>/cloned-<20 x subjects>` (`../shared/tools/clone_records.py` gives one
subject per 20 records; made as `run.py` makes its cloned corpora). It is built once with
`materialize` (`<scratch>/runs/qc-concurrency-<subjects>/base`). Each measurement starts from a
copy of that cache without quality_control (its partitions, build state and registry fragment)
and a new Dagster instance (the project's dagster.yaml), adds the subjects' partition keys and
runs subject_quality_control over them as `materialize --subjects-per-run` does
(`subject_runs.run_in_processes`): one process over every subject, then `--runs` processes over
ranges of equal size, all at the same time. Reported: wall time of the runs (processes started
to last one ended), their CPU time (user + system of the processes), the speed-up and its bound:
at most min(runs, cores), lowered by the work the split adds (every run starts its own process,
imports Dagster, plans its run and reads the record snapshot's row groups holding its subjects):
bound = min(runs, cores) x CPU(1 run) / CPU(N runs). Each result is checked byte for byte
against the base build's quality_control (partitions and build state).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEFAULT_SCRATCH, cloned_corpus_path, fmt, materialize, pipeline_env, run_child  # noqa: E402

RECORDS_PER_SUBJECT = 20  # clone_records.py: max(1, N // 20) synthetic subjects
# quality_control's partitions, build state, registry fragment and build manifests
QC_OBJECTS = ("qc", ".build_state/quality_control.json", "cache_registry/quality_control.json", "_builds/quality_control")


def version_dir(cache: Path) -> Path:
    from biodata_cache_client.layout import version_folder

    return cache / version_folder()


def base_build(scratch: Path, subjects: int) -> tuple[Path, Path]:
    """The corpus and a full build of it (one quality_control run), made once."""
    corpus = cloned_corpus_path(scratch, subjects * RECORDS_PER_SUBJECT)
    base = scratch / "runs" / f"qc-concurrency-{subjects}" / "base"
    if not (base / ".complete").exists():
        shutil.rmtree(base, ignore_errors=True)
        print(f"building the base cache of {corpus} in {base}", flush=True)
        result = materialize(corpus, base, "base")
        print(f"base build: {fmt(result['wall_s'])} s", flush=True)
        (base / ".complete").touch()
    return corpus, base


def without_quality_control(base: Path, run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    shutil.copytree(base / "cache", run_dir / "cache")
    for relative in QC_OBJECTS:
        path = version_dir(run_dir / "cache") / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def quality_control_bytes(cache: Path) -> dict[str, bytes]:
    folder = version_dir(cache)
    paths = [p for p in (folder / "qc").rglob("*") if p.is_file()] + [folder / QC_OBJECTS[1]]
    return {str(p.relative_to(folder)): p.read_bytes() for p in paths}


def measure(corpus: Path, base: Path, runs: int, label: str) -> dict:
    run_dir = base.parent / label
    without_quality_control(base, run_dir)
    env = pipeline_env(corpus, run_dir)
    result = run_child([sys.executable, __file__, "_child", str(runs)], env, label)
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    result["identical"] = quality_control_bytes(run_dir / "cache") == quality_control_bytes(base / "cache")
    shutil.rmtree(run_dir)
    print(f"{runs} run(s): {fmt(result['runs_wall_s'])} s wall, {fmt(result['runs_cpu_s'])} s CPU, "
          f"identical to one run: {result['identical']}", flush=True)
    return result


def child(runs: int) -> None:
    """In the child: every subject's partition key, then `runs` concurrent runs over them."""
    from dagster import DagsterInstance

    from biodata_cache_client.schema.asset_basics import ASSET_BASICS
    from biodata_cache_pipeline.assets.quality import SUBJECT_PARTITIONS
    from biodata_cache_pipeline.automation import subject_run_tags
    from biodata_cache_pipeline.environment import pipeline_resources
    from biodata_cache_pipeline.subject_runs import run_in_processes, subject_ranges
    from biodata_cache_pipeline.subjects import partition_key_problem

    basics = pipeline_resources()["cache"].read_published(ASSET_BASICS, ["subject_id"])
    keys = sorted({s for s in basics.column("subject_id").to_pylist() if s and partition_key_problem(s) is None})
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(SUBJECT_PARTITIONS.name, keys)
    ranges = subject_ranges(keys, math.ceil(len(keys) / runs))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    results = run_in_processes(ranges, subject_run_tags, {}, True, len(ranges), say=lambda _: None)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failures = [f"{died or [f.reason for f in outcome.failures]}" for _, outcome, died in results
                if died or outcome.failures]
    if failures:
        raise SystemExit(f"runs failed: {failures}")
    print(json.dumps({
        "subjects": len(keys),
        "runs": len(ranges),
        "runs_wall_s": wall,
        "runs_cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=5_000, help="subjects (default %(default)s)")
    parser.add_argument("--runs", type=int, default=2, help="concurrent runs compared with one (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each (default %(default)s); medians")
    parser.add_argument("--scratch", default=DEFAULT_SCRATCH, help="corpora and run folders (default %(default)s)")
    args = parser.parse_args(argv)
    scratch = Path(args.scratch).resolve()
    corpus, base = base_build(scratch, args.subjects)
    measured = {1: [], args.runs: []}
    for _ in range(args.repeats):
        for runs in measured:
            measured[runs].append(measure(corpus, base, runs, f"runs-{runs}"))
    cores = os.cpu_count() or 1
    median = {runs: {key: sorted(r[key] for r in results)[len(results) // 2] for key in ("runs_wall_s", "runs_cpu_s")}
              for runs, results in measured.items()}
    one, many = median[1], median[args.runs]
    bound = min(args.runs, cores) * one["runs_cpu_s"] / many["runs_cpu_s"]
    summary = {
        "subjects": measured[1][0]["subjects"],
        "cores": cores,
        "runs": args.runs,
        "wall_s": {runs: m["runs_wall_s"] for runs, m in median.items()},
        "cpu_s": {runs: m["runs_cpu_s"] for runs, m in median.items()},
        "speed_up": one["runs_wall_s"] / many["runs_wall_s"],
        "bound": bound,
        "identical": all(r["identical"] for results in measured.values() for r in results),
        "measurements": measured,
    }
    out = base.parent / "results.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"quality_control, {summary['subjects']} subjects, {cores} cores: 1 run {fmt(one['runs_wall_s'])} s, "
          f"{args.runs} concurrent runs {fmt(many['runs_wall_s'])} s: speed-up {summary['speed_up']:.2f}x "
          f"(bound {bound:.2f}x = min({args.runs}, {cores}) x CPU {fmt(one['runs_cpu_s'])} s / "
          f"{fmt(many['runs_cpu_s'])} s); byte-identical: {summary['identical']}; results in {out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_child"]:
        child(int(sys.argv[2]))
    else:
        sys.exit(main())
