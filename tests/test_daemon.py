"""The pipeline as it runs unattended: dagster-webserver and dagster-daemon on loopback, driven
through GraphQL, on SQLite (dagster.yaml) and on Postgres (dagster.postgres.yaml, against a
server this test starts; skipped only when no PostgreSQL server is installed).

The test launches the nightly job, lets the sensor sync the subject partitions and build
quality_control, launches a full quality_control rebuild as a backfill (one run), and finds every
table on disk.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
import yaml

from local_servers import free_port

from biodata_cache_client.layout import version_folder
from biodata_cache_client.schema import TABLES
from biodata_cache_pipeline.automation import SUBJECTS_TAG
from biodata_cache_pipeline.sample_corpus import generate_corpus

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = {"repositoryLocationName": "biodata_cache", "repositoryName": "__repository__"}
DEADLINE_SECONDS = 150  # for each wait below; the sensor ticks every 5 s here (daemon_environment)


def wait_for(what: str, probe, timeout: float = DEADLINE_SECONDS, logs: Path | None = None):
    """Poll `probe` until it returns something truthy; fail naming `what` (and the logs) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    tail = ""
    if logs is not None:
        tail = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


@contextmanager
def started(command: list[str], env: dict, log: Path):
    """A process in its own session, stopped with its children (the code servers) at the end."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
                process.wait(grace)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


class GraphQL:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def ready(self) -> bool:
        try:
            entries = self("""{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
        except requests.RequestException:
            return False
        for entry in entries["workspaceOrError"]["locationEntries"]:
            if entry["name"] == "biodata_cache" and entry["loadStatus"] == "LOADED":
                error = entry["locationOrLoadError"]
                assert error["__typename"] != "PythonError", f"the code location failed to load: {error['message']}"
                return True
        return False

    def run(self, run_id: str) -> dict:
        return self("""query ($id: ID!) { runOrError(runId: $id) { ... on Run {
            runId status tags { key value } } } }""", id=run_id)["runOrError"]

    def finished(self, run_id: str) -> dict | None:
        run = self.run(run_id)
        return run if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None


def daemon_environment(home: Path, corpus: Path, cache: Path, **settings: str) -> dict[str, str]:
    """The environment of a webserver and a daemon building `corpus` into `cache` on the instance in
    `home`: none of the caller's BIODATA_ or DAGSTER_ settings, the sensor every 5 s (its turn comes
    soon after the nightly run), and `settings`."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BIODATA_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "BIODATA_SENSOR_INTERVAL_SECONDS": "5",
        "BIODATA_CACHE_ENV": "local",
        "BIODATA_SAMPLE_ROOT": str(corpus),
        "BIODATA_CACHE_ROOT": str(cache),
        **settings,
    }


@contextmanager
def webserver_and_daemon(env: dict[str, str], logs: Path):
    """dagster-webserver and dagster-daemon on the instance of `env`'s DAGSTER_HOME; yields the
    webserver's GraphQL once the code location is loaded."""
    # Create the instance's databases once, before three processes race to create them (on a
    # fresh SQLite home that race can leave alembic with two heads and the code location unloaded).
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], env=env, check=True, capture_output=True,
                   timeout=120)
    port = free_port()
    gql = GraphQL(port)
    webserver = [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    daemon = [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]
    with started(webserver, env, logs / "webserver.log"), started(daemon, env, logs / "daemon.log"):
        wait_for("the webserver to load the code location", gql.ready, logs=logs)
        yield gql


def run_nightly_job(gql: GraphQL, logs: Path) -> dict:
    """Launch the nightly job (what the schedule launches at 02:00) plainly, as the launchpad's
    Launch button does, and wait for it to end; the run."""
    launched = gql("""mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
        ... on RunConfigValidationInvalid { errors { message } } } }""",
                   params={"selector": {**LOCATION, "jobName": "nightly_tables"}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    return wait_for("the nightly run", lambda: gql.finished(launched["launchRun"]["run"]["runId"]), logs=logs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, assets=150, seed=5)
    return out


def run_unattended_pipeline(tmp_path: Path, corpus: Path, instance_file: str, extra_env: dict) -> None:
    home, cache, logs = tmp_path / "dagster_home", tmp_path / "cache", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    shutil.copy(PROJECT / instance_file, home / "dagster.yaml")
    with webserver_and_daemon(daemon_environment(home, corpus, cache, **extra_env), logs) as gql:
        # What the UI shows: the records source, the record snapshot, and eleven described, grouped,
        # owned tables with column schemas and checks.
        nodes = gql("""{ assetNodes { assetKey { path } description groupName kinds
            owners { ... on TeamAssetOwner { team } } metadataEntries { label }
            assetChecksOrError { ... on AssetChecks { checks { name } } } } }""")["assetNodes"]
        names = sorted(n["assetKey"]["path"][-1] for n in nodes)
        assert names == sorted([*TABLES, "metadata_records", "record_snapshot"])
        sources = [n for n in nodes if n["assetKey"]["path"][-1] not in TABLES]
        assert all(n["description"] and n["groupName"] == "sources" for n in sources), sources
        for node in (n for n in nodes if n["assetKey"]["path"][-1] in TABLES):
            assert node["description"] and node["groupName"] and "parquet" in node["kinds"], node
            assert node["owners"] == [{"team": "biodata-cache"}], node
            assert "dagster/column_schema" in {m["label"] for m in node["metadataEntries"]}, node
            assert "schema_matches_declaration" in {c["name"] for c in node["assetChecksOrError"]["checks"]}, node
        schedules = gql("""query ($repo: RepositorySelector!) { schedulesOrError(repositorySelector: $repo) {
            ... on Schedules { results { name cronSchedule executionTimezone scheduleState { status } } } } }""",
                        repo=LOCATION)["schedulesOrError"]["results"]
        assert {"name": "nightly_refresh", "cronSchedule": "0 2 * * *", "executionTimezone": "America/Los_Angeles",
                "scheduleState": {"status": "RUNNING"}} in schedules
        sensors = gql("""query ($repo: RepositorySelector!) { sensorsOrError(repositorySelector: $repo) {
            ... on Sensors { results { name sensorState { status } } } } }""", repo=LOCATION)["sensorsOrError"]
        assert {"name": "quality_control_subjects", "sensorState": {"status": "RUNNING"}} in sensors["results"]

        # The nightly job: unpartitioned tables + platform_qc, launched plainly (no partition tags).
        nightly = run_nightly_job(gql, logs)
        assert nightly["status"] == "SUCCESS", nightly

        # The sensor adds the subject partitions and builds quality_control for all (new) subjects.
        def sensor_run():
            runs = gql("""{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }""")
            return next((r for r in runs["runsOrError"]["results"]
                         if any(t["key"] == SUBJECTS_TAG for t in r["tags"]) and r["status"] in ("SUCCESS", "FAILURE")),
                        None)
        qc_run = wait_for("the sensor's quality_control run", sensor_run, logs=logs)
        assert qc_run["status"] == "SUCCESS", qc_run

        version = cache / version_folder()
        subjects = {s for s in pq.read_table(version / "asset_basics.pqt").column("subject_id").to_pylist() if s}
        qc_folders = {p.name.removeprefix("subject_id=") for p in (version / "qc").iterdir()}
        assert qc_folders == subjects

        # A full rebuild of every subject is one backfill, and one run.
        backfill = gql("""mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                       params={"assetSelection": [{"path": ["quality_control"]}], "allPartitions": True})
        assert backfill["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", backfill

        def backfill_runs_finished():
            runs = gql("""query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
                ... on PartitionBackfill { runs { runId status } } } }""",
                       id=backfill["launchPartitionBackfill"]["backfillId"])["partitionBackfillOrError"]["runs"]
            return runs if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs) else None
        runs = wait_for("the full quality_control backfill", backfill_runs_finished, logs=logs)
        assert [run["status"] for run in runs] == ["SUCCESS"], runs

        partition_stats = gql("""{ assetNodes(assetKeys: [{path: ["quality_control"]}]) {
            partitionStats { numMaterialized numPartitions } } }""")["assetNodes"][0]["partitionStats"]
        assert partition_stats == {"numMaterialized": len(subjects), "numPartitions": len(subjects)}

    for name, spec in TABLES.items():
        assert (version / "cache_registry" / f"{name}.json").is_file(), name
        if not spec.partitioned:
            assert pq.read_metadata(version / f"{name}.pqt").num_rows >= 0
    fragment = json.loads((version / "cache_registry" / "quality_control.json").read_text())
    assert fragment["build"]["partitions"] == len(subjects)
    assert sorted(p.name for p in (version / "platform_qc").iterdir()) == sorted(
        f"platform={p}" for p in TABLES["platform_qc"].static_partitions)


def test_unattended_pipeline_on_sqlite(tmp_path, corpus):
    run_unattended_pipeline(tmp_path, corpus, "dagster.yaml", {})


def test_unattended_pipeline_on_postgres(tmp_path, corpus, postgres_url):
    run_unattended_pipeline(tmp_path, corpus, "dagster.postgres.yaml", {"DAGSTER_POSTGRES_URL": postgres_url})


def test_the_postgres_instance_file_differs_only_in_storage():
    sqlite = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    postgres = yaml.safe_load((PROJECT / "dagster.postgres.yaml").read_text())
    assert "storage" not in sqlite
    assert sqlite.pop("event_log_storage")["module"] == "biodata_cache_pipeline.event_log"
    assert postgres.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    assert postgres == sqlite


def test_make_dev_serves_the_ui_with_the_projects_instance_and_no_false_warning(tmp_path, corpus):
    """`make dev` as the README gives it: the UI answers, on the instance of the project's dagster.yaml
    (its event log storage), and the log does not claim that dagster.yaml "will not be used"."""
    (corpus / ".complete").touch()
    port, home, log = free_port(), tmp_path / "home", tmp_path / "dev.log"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("BIODATA_")}
    command = ["make", "dev", f"DAGSTER_HOME={home}", f"SAMPLE_ROOT={corpus}", f"CACHE_ROOT={tmp_path / 'cache'}",
               f"DEV_PORT={port}"]
    with started(command, env, log):
        gql = GraphQL(port)
        wait_for("the UI of make dev", lambda: gql.ready(), timeout=120, logs=tmp_path)
        instance = gql("{ instance { info } }")["instance"]["info"]
        assert "PooledSqliteEventLogStorage" in instance, instance
    assert "will not be used" not in log.read_text()
