"""AWS Batch jobs that really run: the Batch API through the endpoint, with real boto3 clients
and the aws CLI, against queues and job definitions created through the API or CloudFormation.

The embedded environment runs jobs with the ``process`` executor; outcomes a command cannot
produce on cue (a child failing, a first attempt failing) are scripted on the control path.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.timeout(60)

TERMINAL = ("SUCCEEDED", "FAILED")
AWS_CLI = Path(sys.executable).parent / "aws"

# Prints what a job sees, then exits with $EXIT_CODE (0 unless overridden).
SHELL_COMMAND = [
    "sh",
    "-c",
    'echo "job=$AWS_BATCH_JOB_ID queue=$AWS_BATCH_JQ_NAME ce=$AWS_BATCH_CE_NAME '
    'attempt=$AWS_BATCH_JOB_ATTEMPT index=$AWS_BATCH_JOB_ARRAY_INDEX"; exit ${EXIT_CODE:-0}',
]


class Batch:
    """The module's queue and job definitions, and helpers to run jobs on them."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.client = target.client("batch")
        self.suffix = uuid.uuid4().hex[:8]
        iam = target.client("iam")
        role = iam.create_role(
            RoleName=f"batchbridge-batch-{self.suffix}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        self.ce = f"ce-{self.suffix}"
        self.client.create_compute_environment(
            computeEnvironmentName=self.ce, type="UNMANAGED", serviceRole=role
        )
        self.queue = f"queue-{self.suffix}"
        self.client.create_job_queue(
            jobQueueName=self.queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": self.ce}],
        )
        self.shell = self.register(f"shell-{self.suffix}", SHELL_COMMAND)
        self.sleeper = self.register(f"sleep-{self.suffix}", ["sleep", "30"])
        self.ref = self.register(
            f"ref-{self.suffix}",
            ["sh", "-c", "Ref::script", "Ref::unknown"],
            parameters={"script": "echo default; exit 9"},
        )

    def register(self, name: str, command: list[str], **kwargs: Any) -> str:
        self.client.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": command},
            **kwargs,
        )
        return name

    def submit(self, name: str, definition: str | None = None, **kwargs: Any) -> str:
        response = self.client.submit_job(
            jobName=f"{name}-{self.suffix}",
            jobQueue=self.queue,
            jobDefinition=definition or self.shell,
            **kwargs,
        )
        return str(response["jobId"])

    def describe(self, job_id: str) -> dict[str, Any]:
        jobs = self.client.describe_jobs(jobs=[job_id])["jobs"]
        assert len(jobs) == 1, f"DescribeJobs does not know {job_id}"
        return dict(jobs[0])

    def wait(
        self,
        job_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda job: job["status"] in TERMINAL,
        seconds: float = 20,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            job = self.describe(job_id)
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {seconds}s")
            time.sleep(0.05)

    def script(self, **spec: Any) -> None:
        _control(self.target.endpoint, "POST", "/_batchbridge/batch/scripts", spec)

    def output(self, job: dict[str, Any]) -> str:
        logs = self.target.client("logs")
        events = logs.get_log_events(
            logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"]
        )["events"]
        return "\n".join(e["message"] for e in events)


def _control(endpoint: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(endpoint + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def batch(target: Any) -> Iterator[Batch]:
    if not target.local:
        pytest.skip("these tests script outcomes and use sub-minute timeouts: local only")
    yield Batch(target)


@pytest.fixture(autouse=True)
def _clear_scripts(target: Any) -> Iterator[None]:
    yield
    if target.local:
        _control(target.endpoint, "DELETE", "/_batchbridge/batch/scripts")


def test_a_job_runs_its_command_and_succeeds_with_its_output_in_cloudwatch(batch: Batch) -> None:
    job_id = batch.submit("hello")
    seen = set()
    job = batch.wait(job_id, lambda j: seen.add(j["status"]) or j["status"] in TERMINAL)

    assert job["status"] == "SUCCEEDED", job.get("statusReason")
    assert seen & {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"}
    assert job["container"]["exitCode"] == 0
    assert job["createdAt"] <= job["startedAt"] <= job["stoppedAt"]
    assert len(job["attempts"]) == 1
    assert job["attempts"][0]["container"]["logStreamName"].startswith(f"{batch.shell}/default/")
    output = batch.output(job)
    assert f"job={job_id} queue={batch.queue} ce={batch.ce} attempt=1 index=" in output


def test_a_failing_command_fails_the_job_with_its_exit_code(batch: Batch) -> None:
    job_id = batch.submit(
        "fails", containerOverrides={"environment": [{"name": "EXIT_CODE", "value": "3"}]}
    )
    job = batch.wait(job_id)

    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 3
    assert job["statusReason"] == "Essential container in task exited"


def test_ref_parameters_are_substituted_job_definition_defaults_overridden(batch: Batch) -> None:
    default_job = batch.submit("ref-default", batch.ref)
    override_job = batch.submit(
        "ref-override", batch.ref, parameters={"script": "echo overridden $0; exit 4"}
    )

    default, override = batch.wait(default_job), batch.wait(override_job)
    assert default["container"]["exitCode"] == 9
    assert override["container"]["exitCode"] == 4
    # A Ref:: naming no parameter is passed through, as AWS does.
    assert override["container"]["command"] == [
        "sh",
        "-c",
        "echo overridden $0; exit 4",
        "Ref::unknown",
    ]
    assert "overridden Ref::unknown" in batch.output(override)


def test_an_array_job_reports_its_children_in_status_summary(batch: Batch) -> None:
    name = f"array-{uuid.uuid4().hex[:6]}"
    batch.script(jobNamePrefix=name, durationSeconds=0.6, exitCode=0)
    batch.script(jobNamePrefix=name, arrayIndices=[2], durationSeconds=0.6, exitCode=7)
    parent_id = batch.submit(name, arrayProperties={"size": 5})

    running = batch.wait(
        parent_id, lambda j: j["arrayProperties"]["statusSummary"]["RUNNING"] > 0, seconds=10
    )
    assert running["status"] == "PENDING"  # as AWS reports a parent while children run
    parent = batch.wait(parent_id)

    assert parent["status"] == "FAILED"
    summary = parent["arrayProperties"]["statusSummary"]
    assert (summary["SUCCEEDED"], summary["FAILED"], parent["arrayProperties"]["size"]) == (4, 1, 5)
    children = batch.client.list_jobs(arrayJobId=parent_id, jobStatus="FAILED")["jobSummaryList"]
    assert [(c["jobId"], c["arrayProperties"]["index"]) for c in children] == [
        (f"{parent_id}:2", 2)
    ]
    child = batch.describe(f"{parent_id}:2")
    assert child["container"]["exitCode"] == 7


def test_array_children_run_their_command_with_their_index(batch: Batch) -> None:
    parent_id = batch.submit("array-real", arrayProperties={"size": 2})
    parent = batch.wait(parent_id)

    assert parent["status"] == "SUCCEEDED"
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2
    child = batch.describe(f"{parent_id}:1")
    assert child["arrayProperties"] == {"index": 1}
    assert f"job={parent_id}:1 " in batch.output(child)
    assert "index=1" in batch.output(child)


def test_a_retry_succeeds_on_the_second_attempt(batch: Batch) -> None:
    name = f"retry-{uuid.uuid4().hex[:6]}"
    # The first attempt fails as scripted; the second runs the real command.
    batch.script(jobNamePrefix=name, attempts=1, exitCode=1, durationSeconds=0.1)
    job = batch.wait(batch.submit(name, retryStrategy={"attempts": 2}))

    assert job["status"] == "SUCCEEDED"
    assert [a["container"].get("exitCode") for a in job["attempts"]] == [1, 0]
    assert "attempt=2" in batch.output(job)


def test_evaluate_on_exit_can_stop_retries(batch: Batch) -> None:
    strategy = {
        "attempts": 3,
        "evaluateOnExit": [
            {"onExitCode": "4*", "action": "EXIT"},
            {"onReason": "*", "action": "RETRY"},
        ],
    }
    job = batch.wait(
        batch.submit(
            "no-retry",
            retryStrategy=strategy,
            containerOverrides={"environment": [{"name": "EXIT_CODE", "value": "42"}]},
        )
    )

    assert job["status"] == "FAILED"
    assert len(job["attempts"]) == 1


def test_terminate_stops_a_running_job_and_cancel_only_queued_ones(batch: Batch) -> None:
    running_id = batch.submit("terminated", batch.sleeper)
    batch.wait(running_id, lambda j: j["status"] == "RUNNING")
    batch.client.cancel_job(jobId=running_id, reason="too late to cancel")
    assert batch.describe(running_id)["status"] == "RUNNING"

    started = time.monotonic()
    batch.client.terminate_job(jobId=running_id, reason="stopped by the test")
    job = batch.wait(running_id, seconds=5)
    assert time.monotonic() - started < 5  # the 30 s sleep was killed
    assert (job["status"], job["statusReason"], job["isTerminated"]) == (
        "FAILED",
        "stopped by the test",
        True,
    )

    queued_id = batch.submit("cancelled", batch.sleeper)
    batch.client.cancel_job(jobId=queued_id, reason="not needed")
    job = batch.wait(queued_id, seconds=5)
    assert (job["status"], job["statusReason"], job["isCancelled"]) == (
        "FAILED",
        "not needed",
        True,
    )
    assert job["attempts"] == []


def test_a_job_times_out_and_is_not_retried(batch: Batch) -> None:
    # AWS's minimum is 60 s; the local service takes any positive duration for tests.
    job = batch.wait(
        batch.submit(
            "timeout",
            batch.sleeper,
            timeout={"attemptDurationSeconds": 1},
            retryStrategy={"attempts": 2},
        ),
        seconds=10,
    )

    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1
    assert job["stoppedAt"] - job["startedAt"] < 5000


def test_list_jobs_by_queue_status_name_filter_with_pagination(batch: Batch) -> None:
    prefix = f"listed-{uuid.uuid4().hex[:6]}"
    batch.script(jobNamePrefix=prefix, durationSeconds=0)
    ids = {batch.submit(f"{prefix}-{i}") for i in range(3)}
    other = batch.submit("unlisted")
    for job_id in [*ids, other]:
        batch.wait(job_id)

    name_filter = [{"name": "JOB_NAME", "values": [f"{prefix.upper()}*"]}]
    first = batch.client.list_jobs(jobQueue=batch.queue, filters=name_filter, maxResults=2)
    second = batch.client.list_jobs(
        jobQueue=batch.queue, filters=name_filter, maxResults=2, nextToken=first["nextToken"]
    )
    listed = [j["jobId"] for j in first["jobSummaryList"] + second["jobSummaryList"]]
    assert sorted(listed) == sorted(ids)
    assert "nextToken" not in second

    paginator = batch.client.get_paginator("list_jobs")
    succeeded = {
        j["jobId"]
        for page in paginator.paginate(jobQueue=batch.queue, jobStatus="SUCCEEDED")
        for j in page["jobSummaryList"]
    }
    assert ids | {other} <= succeeded
    assert not batch.client.list_jobs(jobQueue=batch.queue, jobStatus="RUNNABLE")["jobSummaryList"]


def test_unknown_queue_or_definition_is_a_client_error_unknown_ids_are_absent(batch: Batch) -> None:
    with pytest.raises(ClientError) as queue_error:
        batch.client.submit_job(jobName="x", jobQueue="no-such-queue", jobDefinition=batch.shell)
    with pytest.raises(ClientError) as definition_error:
        batch.client.submit_job(jobName="x", jobQueue=batch.queue, jobDefinition="no-such-def:3")

    assert queue_error.value.response["Error"]["Code"] == "ClientException"
    assert "no-such-queue" in queue_error.value.response["Error"]["Message"]
    assert "no-such-def:3" in definition_error.value.response["Error"]["Message"]
    assert batch.client.describe_jobs(jobs=[str(uuid.uuid4())])["jobs"] == []


def test_a_ten_thousand_child_array_job_and_fast_describe(batch: Batch) -> None:
    name = f"big-{uuid.uuid4().hex[:6]}"
    batch.script(jobNamePrefix=name, durationSeconds=0.2)
    parent_id = batch.submit(name, arrayProperties={"size": 10_000})

    started = time.monotonic()
    batch.client.describe_jobs(jobs=[f"{parent_id}:{i}" for i in range(0, 10_000, 100)])
    assert time.monotonic() - started < 2.0
    parent = batch.wait(parent_id, seconds=30)
    assert parent["status"] == "SUCCEEDED"
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 10_000


def test_the_aws_cli_runs_the_tutorial_s3_copy_job(batch: Batch, target: Any) -> None:
    s3 = target.client("s3")
    bucket = f"batchbridge-{batch.suffix}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/data.txt", Body=b"payload")
    definition = f"copy-{batch.suffix}"
    batch.client.register_job_definition(
        jobDefinitionName=definition,
        type="container",
        containerProperties={
            "image": "public.ecr.aws/aws-cli/aws-cli:2.15.0",
            "vcpus": 1,
            "memory": 256,
            "command": ["s3", "cp", "Ref::s3Input", "Ref::s3Output"],
        },
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": target.region,
    }

    def aws(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(AWS_CLI), "--endpoint-url", target.endpoint, "--output", "json", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=True,
        )
        return dict(json.loads(done.stdout))

    submitted = aws(
        "batch",
        "submit-job",
        "--job-name",
        f"copy-{batch.suffix}",
        "--job-queue",
        batch.queue,
        "--job-definition",
        f"{definition}:1",
        "--parameters",
        f"s3Input=s3://{bucket}/in/data.txt,s3Output=s3://{bucket}/out/data.txt",
    )
    deadline = time.monotonic() + 30
    while True:
        job = aws("batch", "describe-jobs", "--jobs", submitted["jobId"])["jobs"][0]
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert job["status"] == "SUCCEEDED", batch.output(job)
    assert job["jobDefinition"].endswith(f"job-definition/{definition}:1")
    assert s3.get_object(Bucket=bucket, Key="out/data.txt")["Body"].read() == b"payload"


CFN_TEMPLATE = """
Resources:
  ServiceRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {"Version": "2012-10-17", "Statement": []}
  InstanceProfile:
    Type: AWS::IAM::InstanceProfile
    Properties:
      Roles: [!Ref ServiceRole]
  Vpc:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/24}
  SecurityGroup:
    Type: AWS::EC2::SecurityGroup
    Properties: {GroupDescription: batch jobs, VpcId: !Ref Vpc}
  Compute:
    Type: AWS::Batch::ComputeEnvironment
    Properties:
      Type: MANAGED
      ServiceRole: !GetAtt ServiceRole.Arn
      ComputeResources:
        Type: EC2
        MinvCpus: 0
        MaxvCpus: 4
        InstanceTypes: [optimal]
        Subnets: [!Ref Subnet]
        SecurityGroupIds: [!GetAtt SecurityGroup.GroupId]
        InstanceRole: !GetAtt InstanceProfile.Arn
  Queue:
    Type: AWS::Batch::JobQueue
    Properties:
      Priority: 1
      ComputeEnvironmentOrder:
        - Order: 1
          ComputeEnvironment: !Ref Compute
  Definition:
    Type: AWS::Batch::JobDefinition
    Properties:
      Type: container
      RetryStrategy: {Attempts: 1}
      Parameters: {word: from-cloudformation}
      ContainerProperties:
        Image: busybox
        Vcpus: 1
        Memory: 128
        Command: [echo, Ref::word]
Outputs:
  Queue: {Value: !Ref Queue}
  Definition: {Value: !Ref Definition}
"""


def test_a_cloudformation_queue_and_definition_run_jobs(batch: Batch, target: Any) -> None:
    cfn = target.client("cloudformation")
    stack = f"batch-{batch.suffix}"
    cfn.create_stack(StackName=stack, TemplateBody=CFN_TEMPLATE)
    description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    assert description["StackStatus"] == "CREATE_COMPLETE", description.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}

    job_id = batch.client.submit_job(
        jobName="from-cfn", jobQueue=outputs["Queue"], jobDefinition=outputs["Definition"]
    )["jobId"]
    job = batch.wait(job_id)

    assert job["status"] == "SUCCEEDED"
    assert job["jobQueue"] == outputs["Queue"]
    assert "from-cloudformation" in batch.output(job)


# --- the docker executor, against a fake Docker Engine on a unix socket ----------------------


class FakeDockerEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Just enough of the Engine API: create, start, wait, logs, remove (and pull on a 404)."""

    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.created: list[dict[str, Any]] = []
        self.pulled: list[str] = []
        self.removed: list[str] = []
        self.images = {"busybox:latest"}
        super().__init__(path, _FakeDockerHandler)


class _FakeDockerHandler(BaseHTTPRequestHandler):
    server: FakeDockerEngine

    def log_message(self, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _reply(self, status: int, body: Any = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        path = self.path.split("/", 2)[2]  # drop the /v1.41 prefix
        if path.startswith("containers/create"):
            image = body["Image"] if ":" in body["Image"] else body["Image"] + ":latest"
            if image not in self.server.images:
                return self._reply(404, {"message": f"No such image: {image}"})
            self.server.created.append(body)
            return self._reply(201, {"Id": f"c{len(self.server.created)}", "Warnings": []})
        if path.startswith("images/create"):
            query = parse_qs(urlsplit(path).query)
            image = f"{query['fromImage'][0]}:{query['tag'][0]}"
            self.server.pulled.append(image)
            self.server.images.add(image)
            return self._reply(200, raw=b'{"status":"Pulling"}\n{"status":"Done"}\n')
        if path.endswith("/start") or path.endswith("/kill"):
            return self._reply(204)
        if path.endswith("/wait"):
            created = self.server.created[int(path.split("/")[1][1:]) - 1]
            code = 5 if "fail" in " ".join(created["Cmd"] or []) else 0
            return self._reply(200, {"StatusCode": code})
        self._reply(404, {"message": "not faked"})

    def do_GET(self) -> None:
        index = int(self.path.split("/")[3][1:]) - 1
        text = f"ran {' '.join(self.server.created[index]['Cmd'])}\n".encode()
        frame = bytes([1, 0, 0, 0]) + len(text).to_bytes(4, "big") + text
        self._reply(200, raw=frame)

    def do_DELETE(self) -> None:
        self.server.removed.append(self.path.split("/")[3].split("?")[0])
        self._reply(204)


@pytest.fixture
def docker_env(
    target: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, FakeDockerEngine]]:
    if target.env is None:
        pytest.skip("starts a second embedded environment with the docker executor")
    from services.environment import LocalEnvironment

    folder = tempfile.mkdtemp(prefix="bb-docker-")
    engine = FakeDockerEngine(os.path.join(folder, "docker.sock"))
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder}/docker.sock")
    monkeypatch.setenv("BATCHBRIDGE_DATA_PLANES", "batch")
    env = LocalEnvironment(port=0, executor="docker", region=target.region)
    env.start()
    try:
        yield env, engine
    finally:
        env.stop()
        engine.shutdown()
        engine.server_close()


def test_the_docker_executor_runs_the_image_through_the_engine_api(
    batch: Batch, docker_env: tuple[Any, FakeDockerEngine]
) -> None:
    env, engine = docker_env
    client = env.client("batch")
    definition = f"docker-{batch.suffix}"
    client.register_job_definition(
        jobDefinitionName=definition,
        type="container",
        containerProperties={
            "image": "example/tool",
            "vcpus": 1,
            "memory": 128,
            "command": ["echo", "Ref::word"],
        },
        parameters={"word": "default"},
    )
    ok = client.submit_job(
        jobName="docker-ok",
        jobQueue=batch.queue,
        jobDefinition=definition,
        parameters={"word": "hi"},
    )["jobId"]
    bad = client.submit_job(
        jobName="docker-bad",
        jobQueue=batch.queue,
        jobDefinition=definition,
        containerOverrides={"command": ["fail"]},
    )["jobId"]
    deadline = time.monotonic() + 10
    while True:
        jobs = {j["jobId"]: j for j in client.describe_jobs(jobs=[ok, bad])["jobs"]}
        if all(j["status"] in TERMINAL for j in jobs.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert (jobs[ok]["status"], jobs[ok]["container"]["exitCode"]) == ("SUCCEEDED", 0)
    assert (jobs[bad]["status"], jobs[bad]["container"]["exitCode"]) == ("FAILED", 5)
    assert set(engine.pulled) == {"example/tool:latest"}
    created = next(c for c in engine.created if c["Cmd"] == ["echo", "hi"])
    assert created["Image"] == "example/tool"
    assert f"AWS_BATCH_JOB_ID={ok}" in created["Env"]
    assert any(
        e.startswith("AWS_ENDPOINT_URL=http://host.docker.internal:") for e in created["Env"]
    )
    assert sorted(engine.removed) == ["c1", "c2"]
    logs = env.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=jobs[ok]["container"]["logStreamName"]
    )
    assert [e["message"] for e in logs["events"]] == ["ran echo hi"]


def test_the_simulate_executor_succeeds_jobs_by_default(batch: Batch, target: Any) -> None:
    if target.env is None:
        pytest.skip("drives a second Batch engine in this process")
    from services.batch import BatchEngine
    from services.batch.logs import LogWriter

    engine = BatchEngine(
        account_id=target.env.account_id,
        region=target.region,
        endpoint=target.endpoint,
        executor=None,
        log_writer=LogWriter(target.client("logs")),
        step_seconds=0.01,
    )
    engine.start()
    try:
        job_id = engine.submit_job(
            {"jobName": "simulated", "jobQueue": batch.queue, "jobDefinition": batch.sleeper},
            target.region,
        )["jobId"]
        deadline = time.monotonic() + 5
        while (job := engine.describe_jobs([job_id])["jobs"][0])["status"] not in TERMINAL:
            assert time.monotonic() < deadline, job["status"]
            time.sleep(0.02)
    finally:
        engine.stop()

    # `sleep 30` was not run: the simulated attempt succeeds after a short default duration.
    assert job["status"] == "SUCCEEDED"
    assert job["stoppedAt"] - job["startedAt"] < 5000
    assert engine.state()["counts"]["SUCCEEDED"] == 1


def test_terminating_an_array_parent_stops_its_children(batch: Batch) -> None:
    name = f"array-stop-{uuid.uuid4().hex[:6]}"
    batch.script(jobNamePrefix=name, durationSeconds=30)
    parent_id = batch.submit(name, arrayProperties={"size": 3})
    batch.wait(parent_id, lambda j: j["arrayProperties"]["statusSummary"]["RUNNING"] == 3)

    batch.client.terminate_job(jobId=parent_id, reason="pipeline stopped")
    parent = batch.wait(parent_id, seconds=5)

    assert (parent["status"], parent["statusReason"], parent["isTerminated"]) == (
        "FAILED",
        "pipeline stopped",
        True,
    )
    assert parent["arrayProperties"]["statusSummary"]["FAILED"] == 3
    child = batch.describe(f"{parent_id}:0")
    assert (child["statusReason"], child["isTerminated"]) == ("pipeline stopped", True)


def test_health_and_state_report_job_counts(batch: Batch, target: Any) -> None:
    batch.wait(batch.submit("counted"))

    health = _control(target.endpoint, "GET", "/_batchbridge/health")["services"]["batch"]
    state = _control(target.endpoint, "GET", "/_batchbridge/batch/state")
    assert health["ready"] is True
    assert health["jobs"]["SUCCEEDED"] >= 1
    assert (
        set(state["counts"])
        == set(health["jobs"])
        == {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"}
    )
    assert state["executor"] == "process"


def test_depends_on_holds_a_job_in_pending_until_its_dependency_ends(batch: Batch) -> None:
    name = f"deps-{uuid.uuid4().hex[:6]}"
    batch.script(jobNamePrefix=f"{name}-first", durationSeconds=0.5)
    batch.script(jobNamePrefix=f"{name}-bad", durationSeconds=0, exitCode=2)
    first = batch.submit(f"{name}-first")
    bad = batch.submit(f"{name}-bad")
    after_first = batch.submit(f"{name}-after", dependsOn=[{"jobId": first}])
    after_bad = batch.submit(f"{name}-never", dependsOn=[{"jobId": bad}])

    assert batch.wait(first, lambda j: j["status"] == "RUNNING")["status"] == "RUNNING"
    assert batch.describe(after_first)["status"] == "PENDING"
    done = batch.wait(after_first)
    assert done["status"] == "SUCCEEDED"
    assert done["startedAt"] >= batch.describe(first)["stoppedAt"]
    never = batch.wait(after_bad)
    assert (never["status"], never["attempts"]) == ("FAILED", [])
    assert bad in never["statusReason"]


def test_a_sequential_array_runs_its_children_one_after_another(batch: Batch) -> None:
    name = f"seq-{uuid.uuid4().hex[:6]}"
    batch.script(jobNamePrefix=name, durationSeconds=0.1)
    parent = batch.wait(
        batch.submit(name, arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    )

    assert parent["status"] == "SUCCEEDED"
    children = [batch.describe(f"{parent['jobId']}:{i}") for i in range(3)]
    assert children[1]["startedAt"] >= children[0]["stoppedAt"]
    assert children[2]["startedAt"] >= children[1]["stoppedAt"]


@pytest.mark.parametrize(
    ("strategy", "attempts_made", "exit_code", "reason", "status_reason", "retry"),
    [
        ({}, 1, 1, None, None, False),  # one attempt by default
        ({"attempts": 2}, 1, 1, None, None, True),
        ({"attempts": 2}, 2, 1, None, None, False),
        (
            {"attempts": 3, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]},
            1,
            1,
            None,
            None,
            False,
        ),
        (
            {"attempts": 3, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]},
            1,
            2,
            None,
            None,
            True,
        ),
        (
            {
                "attempts": 3,
                "evaluateOnExit": [
                    {"onStatusReason": "Host EC2*", "action": "retry"},
                    {"onReason": "*", "action": "EXIT"},
                ],
            },
            1,
            None,
            None,
            "Host EC2 (instance i-1) terminated.",
            True,
        ),
        (
            {"attempts": 3, "evaluateOnExit": [{"onReason": "CannotPull*", "action": "EXIT"}]},
            1,
            None,
            "CannotPullContainerError: x",
            None,
            False,
        ),
    ],
)
def test_retry_strategy_follows_evaluate_on_exit(
    strategy: dict[str, Any],
    attempts_made: int,
    exit_code: int | None,
    reason: str | None,
    status_reason: str | None,
    retry: bool,
) -> None:
    from services.batch.retry import should_retry

    assert should_retry(strategy, attempts_made, exit_code, reason, status_reason) is retry


def test_under_compose_a_docker_job_joins_the_compose_network_and_reaches_the_gateway(
    batch: Batch, docker_env: tuple[Any, FakeDockerEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, engine = docker_env
    # What docker-compose.yml sets for the batchbridge service.
    monkeypatch.setenv("BATCHBRIDGE_DOCKER_NETWORK", "batchbridge")
    monkeypatch.setenv("BATCHBRIDGE_DOCKER_ENDPOINT_URL", "http://batchbridge:4566")
    client = env.client("batch")
    definition = f"docker-net-{batch.suffix}"
    client.register_job_definition(
        jobDefinitionName=definition,
        type="container",
        containerProperties={"image": "example/tool", "vcpus": 1, "memory": 128},
    )
    job = client.submit_job(
        jobName="docker-net",
        jobQueue=batch.queue,
        jobDefinition=definition,
        containerOverrides={"command": ["echo", "net"]},
    )["jobId"]
    deadline = time.monotonic() + 10
    while client.describe_jobs(jobs=[job])["jobs"][0]["status"] not in TERMINAL:
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    created = next(c for c in engine.created if c["Cmd"] == ["echo", "net"])
    assert created["HostConfig"]["NetworkMode"] == "batchbridge"
    assert "AWS_ENDPOINT_URL=http://batchbridge:4566" in created["Env"]
