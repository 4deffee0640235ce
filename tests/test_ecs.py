"""The ECS deployment (dagster.ecs.yaml), tested the way Dagster tests its EcsRunLauncher: ECS, EC2,
S3 and Parameter Store from a moto server on loopback (one moto bug fixed, see `moto_aws`), the
daemon's task metadata endpoint from a loopback HTTP server, and the instance built from the file
unchanged (Postgres from conftest).

The daemon's own ECS task is made in moto. The nightly job is launched as the UI does (GraphQL,
queued) and the daemon's dequeue code starts its ECS task; the test checks the registered task
definition, the RunTask overrides (command, size from the job's tags) and the task's tags and
network. Then it runs the task's command in the environment ECS would give the container (the
task definition's variables, the secret read from Parameter Store) and finds the run succeeded,
its tables in the S3 cache and its step logs in the compute-log bucket. The subject sensor then
requests quality_control, whose task gets the job's larger size.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value
from dagster._utils.error import SerializableErrorInfo
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_graphql.test.utils import execute_dagster_graphql
from local_servers import free_port
from moto.ecs.models import EC2ContainerServiceBackend
from moto.server import ThreadedMotoServer

from biodata_cache_client.layout import version_folder
from biodata_cache_pipeline.automation import SUBJECTS_TAG, nightly_tables, subject_quality_control
from biodata_cache_pipeline.sample_corpus import generate_corpus

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/biodata-cache:2026.12.01"
TASK_ROLE = "arn:aws:iam::123456789012:role/biodata-cache-run"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/biodata-cache-ecs-execution"
LOG_GROUP = "/ecs/biodata-cache"
POSTGRES_PARAMETER = "/biodata-cache/dagster-postgres-url"
LOCATION = {"repositoryLocationName": "biodata_cache", "repositoryName": "__repository__"}

# Fargate's CPU units and the memory (MiB) each allows:
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4096 + 1, 1024)),
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
    8192: set(range(16384, 61440 + 1, 4096)),
    16384: set(range(32768, 122880 + 1, 8192)),
}


@contextmanager
def task_metadata_endpoint(task: dict) -> Iterator[str]:
    """The ECS task metadata endpoint (v4) of the daemon's task, on loopback; yields its URI."""
    documents = {
        "": {"Name": task["containers"][0]["name"]},
        "/task": {"Cluster": task["clusterArn"], "TaskARN": task["taskArn"]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.removeprefix("/v4/daemon")
            if path not in documents:
                self.send_error(404)
                return
            body = json.dumps(documents[path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v4/daemon"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def moto_aws(monkeypatch) -> Iterator[dict[str, str]]:
    """A moto server of this test's own on loopback (ECS, EC2, S3, Parameter Store), and the AWS
    environment that reaches it. It runs in this process so that one known moto bug can be fixed
    for it: moto's RunTask requires container-level memory, which Fargate does not
    (getmoto/moto#7272), and the launcher sets memory on the task only."""
    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def without_container_memory(task_definition):
        task_definition = copy.copy(task_definition)
        task_definition.container_definitions = [{"memoryReservation": 0, **c}
                                                 for c in task_definition.container_definitions]
        return original(task_definition)

    monkeypatch.setattr(EC2ContainerServiceBackend, "_calculate_task_resource_requirements",
                        staticmethod(without_container_memory))
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_ECS", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env
    finally:
        server.stop()


@pytest.fixture
def daemon_task(moto_aws) -> dict:
    """The daemon's own Fargate task in moto: cluster, subnet, security group, task definition."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as in a default VPC
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="biodata-cache", Description="dagster", VpcId=vpc)["GroupId"]
    ecs = boto3.client("ecs")
    ecs.create_cluster(clusterName="biodata-cache")
    ecs.register_task_definition(
        family="biodata-cache-daemon",
        containerDefinitions=[{"name": "daemon", "image": IMAGE, "command": ["dagster-daemon", "run"]}],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
    )
    return ecs.run_task(
        cluster="biodata-cache",
        taskDefinition="biodata-cache-daemon",
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}
        },
    )["tasks"][0]


@pytest.fixture
def ecs_instance(moto_aws, daemon_task, postgres_url, tmp_path, monkeypatch) -> Iterator[DagsterInstance]:
    """The instance of the project's dagster.ecs.yaml, as the daemon's task sees it: its settings in
    the environment, the Postgres URL a Parameter Store secret, the task metadata endpoint. The
    working directory holds the sample corpus where the `local` environment looks for it."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="ecs-cache")
    s3.create_bucket(Bucket="ecs-dagster-logs")
    boto3.client("ssm").put_parameter(Name=POSTGRES_PARAMETER, Value=postgres_url, Type="SecureString")
    parameter_arn = boto3.client("ssm").get_parameter(Name=POSTGRES_PARAMETER)["Parameter"]["ARN"]
    workdir = tmp_path / "workdir"
    generate_corpus(workdir / ".biodata-sample", assets=40, seed=3)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.ecs.yaml", home / "dagster.yaml")
    monkeypatch.chdir(workdir)
    for name, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": postgres_url,
        "DAGSTER_CURRENT_IMAGE": IMAGE,
        "BIODATA_ECS_TASK_ROLE_ARN": TASK_ROLE,
        "BIODATA_ECS_EXECUTION_ROLE_ARN": EXECUTION_ROLE,
        "BIODATA_ECS_LOG_GROUP": LOG_GROUP,
        "BIODATA_ECS_POSTGRES_URL_PARAMETER": parameter_arn,
        "BIODATA_DAGSTER_LOG_BUCKET": "ecs-dagster-logs",
        "BIODATA_CACHE_ENV": "local",
        "BIODATA_CACHE_ROOT": "s3://ecs-cache/data-asset-cache",
        "BIODATA_SSM_PREFIX": "",  # no Parameter Store settings (local); passed on all the same
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("BIODATA_SAMPLE_ROOT", "BIODATA_OPEN_DATA_ROOT", "BIODATA_FORAGING_SESSIONS"):
        monkeypatch.delenv(name, raising=False)
    with task_metadata_endpoint(daemon_task) as uri:
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", uri)
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance


def dequeue(context) -> None:
    """One iteration of the daemon's run queue: what dagster-daemon does every few seconds."""
    errors = [r for r in QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(context)
              if isinstance(r, SerializableErrorInfo)]
    assert not errors, errors


def run_task(instance: DagsterInstance, run_id: str) -> tuple[dict, dict]:
    """The ECS task the launcher started for the run (with its tags), and its task definition."""
    run = instance.get_run_by_id(run_id)
    assert run.status == DagsterRunStatus.STARTING, run.status
    ecs = boto3.client("ecs")
    tasks = ecs.describe_tasks(cluster=run.tags["ecs/cluster"], tasks=[run.tags["ecs/task_arn"]], include=["TAGS"])
    task = tasks["tasks"][0]
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    return task, definition


def task_network(task: dict) -> tuple[str, list[str]]:
    """The subnet and the security groups of a task's network interface."""
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    (interface,) = boto3.client("ec2").describe_network_interfaces(
        NetworkInterfaceIds=[details["networkInterfaceId"]])["NetworkInterfaces"]
    return details["subnetId"], [group["GroupId"] for group in interface["Groups"]]


def container_environment(definition: dict) -> dict[str, str]:
    """The environment ECS gives the run container: the task definition's variables and its secrets,
    read from Parameter Store as the execution role would."""
    (container,) = definition["containerDefinitions"]
    ssm = boto3.client("ssm")
    secrets = {s["name"]: ssm.get_parameter(Name=s["valueFrom"], WithDecryption=True)["Parameter"]["Value"]
               for s in container.get("secrets", [])}
    return {**{v["name"]: v["value"] for v in container["environment"]}, **secrets}


def test_the_ecs_instance_file_is_the_postgres_file_with_a_launcher_and_compute_logs():
    postgres = yaml.safe_load((PROJECT / "dagster.postgres.yaml").read_text())
    ecs = yaml.safe_load((PROJECT / "dagster.ecs.yaml").read_text())
    assert ecs.pop("run_launcher")["class"] == "EcsRunLauncher"
    assert ecs.pop("compute_logs")["class"] == "S3ComputeLogManager"
    assert ecs == postgres


def test_every_ecs_task_size_is_one_fargate_accepts():
    launcher = yaml.safe_load((PROJECT / "dagster.ecs.yaml").read_text())["run_launcher"]["config"]
    sizes = {"default": launcher["run_resources"]}
    sizes.update({job.name: {k.removeprefix("ecs/"): v for k, v in job.tags.items() if k.startswith("ecs/")}
                  for job in (nightly_tables, subject_quality_control)})
    for name, size in sizes.items():
        assert int(size["memory"]) in FARGATE_SIZES.get(int(size["cpu"]), set()), (name, size)
    qc, nightly = sizes["subject_quality_control"], sizes["nightly_tables"]
    assert int(qc["cpu"]) > int(nightly["cpu"]) and int(qc["memory"]) > int(nightly["memory"])


def test_runs_launch_as_ecs_tasks_and_execute_there(ecs_instance, daemon_task, moto_aws):
    instance = ecs_instance
    assert isinstance(instance.run_launcher, EcsRunLauncher)
    assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
    with create_test_daemon_workspace_context(WorkspaceFileTarget(paths=[str(PROJECT / "workspace.yaml")]),
                                              instance) as context:
        launched = execute_dagster_graphql(context.create_request_context(), """
            mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
                __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
            {"params": {"selector": {**LOCATION, "jobName": "nightly_tables"}}}).data["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        nightly_id = launched["run"]["runId"]
        assert instance.get_run_by_id(nightly_id).status == DagsterRunStatus.QUEUED
        dequeue(context)
        task, definition = run_task(instance, nightly_id)

        # The task definition registered for the run: the image, container `run`, the settings of the file.
        (container,) = definition["containerDefinitions"]
        assert (container["name"], container["image"]) == ("run", IMAGE)
        assert (definition["taskRoleArn"], definition["executionRoleArn"]) == (TASK_ROLE, EXECUTION_ROLE)
        assert definition["requiresCompatibilities"] == ["FARGATE"]
        assert (definition["cpu"], definition["memory"]) == ("512", "2048")  # run_resources, the default size
        assert container["logConfiguration"]["options"]["awslogs-group"] == LOG_GROUP
        assert container["secrets"] == [{"name": "DAGSTER_POSTGRES_URL",
                                         "valueFrom": os.environ["BIODATA_ECS_POSTGRES_URL_PARAMETER"]}]
        environment = container_environment(definition)
        assert environment["DAGSTER_POSTGRES_URL"] == os.environ["DAGSTER_POSTGRES_URL"]
        copied = ("BIODATA_CACHE_ENV", "BIODATA_CACHE_ROOT", "BIODATA_SSM_PREFIX", "DAGSTER_RUN_JOB_NAME")
        assert {k: environment[k] for k in copied} == {
            "BIODATA_CACHE_ENV": "local", "BIODATA_CACHE_ROOT": "s3://ecs-cache/data-asset-cache",
            "BIODATA_SSM_PREFIX": "", "DAGSTER_RUN_JOB_NAME": "nightly_tables"}

        # RunTask: the daemon's cluster and network, the job's size, a command that executes this run.
        assert task["clusterArn"] == daemon_task["clusterArn"] and task["launchType"] == "FARGATE"
        assert task_network(task) == task_network(daemon_task)
        overrides = task["overrides"]
        (run_container,) = overrides["containerOverrides"]
        assert (overrides["cpu"], overrides["memory"]) == ("1024", "4096")
        assert (run_container["name"], run_container["cpu"], run_container["memory"]) == ("run", 1024, 4096)
        command = run_container["command"]
        assert command[:3] == ["dagster", "api", "execute_run"]
        assert deserialize_value(command[3], ExecuteRunArgs).run_id == nightly_id
        tags = {t["key"]: t["value"] for t in task["tags"]}
        assert tags["dagster/run_id"] == nightly_id and tags["dagster/job_name"] == "nightly_tables"
        assert tags["project"] == "biodata-cache"

        # The container's command, in the container's environment (the task role's credentials and
        # the image's programs besides), executes the run: tables in S3, step logs in the log bucket.
        container_env = {**environment, **moto_aws, "PATH": os.environ["PATH"],
                         "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        worker = subprocess.run([str(BIN / command[0]), *command[1:]], env=container_env, capture_output=True,
                                text=True, timeout=300)
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert instance.get_run_by_id(nightly_id).status == DagsterRunStatus.SUCCESS, worker.stderr[-3000:]
        s3 = boto3.client("s3")
        cached = s3.list_objects_v2(Bucket="ecs-cache", Prefix=f"data-asset-cache/{version_folder()}/")
        assert f"data-asset-cache/{version_folder()}/asset_basics.pqt" in {o["Key"] for o in cached.get("Contents", [])}
        logs = s3.list_objects_v2(Bucket="ecs-dagster-logs", Prefix="dagster-compute-logs/storage/").get("Contents", [])
        assert any(nightly_id in o["Key"] for o in logs), [o["Key"] for o in logs]

        # The subject sensor requests quality_control; the daemon starts it at the job's larger size,
        # and the task carries the sensor's name.
        for _ in execute_sensor_iteration(context, logging.getLogger("test_ecs"), None, None):
            pass
        (qc_run,) = instance.get_runs(RunsFilter(job_name="subject_quality_control"))
        assert SUBJECTS_TAG in qc_run.tags and qc_run.status == DagsterRunStatus.QUEUED, qc_run
        dequeue(context)
        qc_task, _ = run_task(instance, qc_run.run_id)
        assert (qc_task["overrides"]["cpu"], qc_task["overrides"]["memory"]) == ("2048", "8192")
        qc_tags = {t["key"]: t["value"] for t in qc_task["tags"]}
        assert qc_tags["dagster/sensor_name"] == "quality_control_subjects"
