"""The whole loop, end to end: a deployed stack, a pipeline execution, Batch jobs, the monitor.

On the embedded environment (the default) each test deploys nothing itself: one stack is
deployed per module with a demo-sized clock. With ``BATCHBRIDGE_TEST_TARGET=endpoint`` the same
happens against that endpoint (``docker compose up``). With ``BATCHBRIDGE_TEST_TARGET=aws`` the
tests use the stack named by ``BATCHBRIDGE_TEST_STACK`` (deployed beforehand with
``batchbridge deploy --target aws``) and skip the ones that need the local control path.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lambdas.contracts import split_job_ids

pytestmark = pytest.mark.timeout(240)

TERMINAL_EXECUTION = ("Succeeded", "Failed", "Stopped")


@dataclass
class Loop:
    """A deployed batchbridge stack and the clients to drive it."""

    target: Any
    stack: str
    outputs: dict[str, str]
    bucket: str

    def client(self, name: str) -> Any:
        return self.target.client(name)

    @property
    def pipeline(self) -> str:
        return self.outputs.get("PipelineName", self.stack)

    def start(self, pipeline: str | None = None, **parameters: Any) -> str:
        return self.client("sagemaker").start_pipeline_execution(
            PipelineName=pipeline or self.pipeline,
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()],
        )["PipelineExecutionArn"]

    def wait(self, arn: str, timeout: float = 90) -> dict[str, Any]:
        sm = self.client("sagemaker")
        deadline = time.monotonic() + timeout
        while True:
            described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
            if described["PipelineExecutionStatus"] in TERMINAL_EXECUTION:
                return described
            assert time.monotonic() < deadline, f"{arn} still {described}"
            time.sleep(0.25)

    def steps(self, arn: str) -> dict[str, dict[str, Any]]:
        steps = self.client("sagemaker").list_pipeline_execution_steps(PipelineExecutionArn=arn)
        return {s["StepName"]: s for s in steps["PipelineExecutionSteps"]}

    def job_ids(self, arn: str) -> tuple[str, ...]:
        submit = self.steps(arn)["SubmitJobs"]
        outputs = submit["Metadata"]["Lambda"]["OutputParameters"]
        return split_job_ids(next(o["Value"] for o in outputs if o["Name"] == "jobIds"))

    def wait_for_step(self, arn: str, name: str, status: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.steps(arn).get(name, {}).get("StepStatus") != status:
            assert time.monotonic() < deadline, f"step {name} never reached {status}"
            time.sleep(0.2)

    def control(self, path: str, body: dict[str, Any]) -> Any:
        import urllib.request

        request = urllib.request.Request(
            f"{self.target.endpoint}/_batchbridge/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def script_jobs(self, **script: Any) -> None:
        """Script the outcome of jobs not yet submitted (local Batch's control path)."""
        self.control("batch/scripts", script)

    def put_inputs(self, count: int, prefix: str) -> None:
        s3 = self.client("s3")
        for i in range(1, count + 1):
            s3.put_object(Bucket=self.bucket, Key=f"{prefix}/in/file_{i:02d}.json", Body=b"{}")

    def monitor_log(self) -> str:
        logs = self.client("logs")
        group = "/aws/lambda/" + self.outputs["MonitorFunctionArn"].rsplit(":", 1)[-1]
        events = logs.filter_log_events(logGroupName=group)["events"]
        return "\n".join(e["message"] for e in events)


def _deploy_local(target: Any, stack: str, **settings: int) -> dict[str, str]:
    from scripts.deploy import deploy_local

    return deploy_local(target.endpoint, target.region, stack, **settings)


@pytest.fixture(scope="module")
def loop(target: Any) -> Iterator[Loop]:
    if target.local:
        stack = f"bbe2e{uuid.uuid4().hex[:6]}"
        outputs = _deploy_local(target, stack)
    else:
        stack = os.environ.get("BATCHBRIDGE_TEST_STACK", "")
        if not stack:
            pytest.skip("set BATCHBRIDGE_TEST_STACK to the stack `batchbridge deploy` made in AWS")
        described = target.client("cloudformation").describe_stacks(StackName=stack)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}
    bucket = os.environ.get("BATCHBRIDGE_TEST_BUCKET", f"{stack}-data")
    if target.local:
        target.client("s3").create_bucket(Bucket=bucket)
    yield Loop(target, stack, outputs, bucket)


def _uris(loop: Loop, prefix: str) -> dict[str, str]:
    return {
        "InputUri": f"s3://{loop.bucket}/{prefix}/in",
        "OutputUri": f"s3://{loop.bucket}/{prefix}/out",
    }


def test_jobs_that_succeed_resolve_the_step_with_the_tutorials_outputs(loop: Loop) -> None:
    loop.put_inputs(3, "ok")
    arn = loop.start(**_uris(loop, "ok"), MaxJobs=3)

    assert loop.wait(arn)["PipelineExecutionStatus"] == "Succeeded"
    wait = loop.steps(arn)["WaitForJobs"]
    outputs = {o["Name"]: o["Value"] for o in wait["Metadata"]["Callback"]["OutputParameters"]}
    assert outputs["job_status"] == "Completed"
    assert outputs["job_count"] == "3"
    s3 = loop.client("s3")
    for i in (1, 2, 3):  # the copy jobs really ran
        s3.head_object(Bucket=loop.bucket, Key=f"ok/out/output_{i:02d}.json")


def test_a_failed_job_fails_the_pipeline_naming_the_job(loop: Loop) -> None:
    loop.put_inputs(3, "bad")
    loop.client("s3").delete_object(Bucket=loop.bucket, Key="bad/in/file_02.json")
    arn = loop.start(**_uris(loop, "bad"), MaxJobs=3)

    described = loop.wait(arn)
    reason = loop.steps(arn)["WaitForJobs"]["FailureReason"]
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "1 of 3 jobs failed" in reason
    assert "-0002 exit 1" in reason  # the job that copies the missing file_02


def test_a_stop_ends_stopped_and_terminates_the_running_jobs(loop: Loop, local_only: Any) -> None:
    loop.script_jobs(jobNamePrefix="batchbridge-", durationSeconds=60, exitCode=0)
    try:
        arn = loop.start(**_uris(loop, "stop"), MaxJobs=2)
        loop.wait_for_step(arn, "WaitForJobs", "Executing")
        jobs = loop.job_ids(arn)
        loop.client("sagemaker").stop_pipeline_execution(
            PipelineExecutionArn=arn, ClientRequestToken=uuid.uuid4().hex
        )
        assert loop.wait(arn)["PipelineExecutionStatus"] == "Stopped"
    finally:
        _clear_scripts(loop)
    described = loop.client("batch").describe_jobs(jobs=list(jobs))["jobs"]
    assert [j["status"] for j in described] == ["FAILED", "FAILED"]
    assert all("stop" in j.get("statusReason", "").lower() for j in described)


def test_the_deadline_fails_the_step_and_terminates_the_rest(target: Any, local_only: Any) -> None:
    stack = f"bbdead{uuid.uuid4().hex[:6]}"
    outputs = _deploy_local(target, stack, max_wait=3)
    loop = Loop(target, stack, outputs, f"{stack}-data")
    target.client("s3").create_bucket(Bucket=loop.bucket)
    loop.script_jobs(jobNamePrefix="batchbridge-", durationSeconds=60, exitCode=0)
    try:
        arn = loop.start(**_uris(loop, "slow"), MaxJobs=2)
        described = loop.wait(arn, timeout=30)
    finally:
        _clear_scripts(loop)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "timed out" in loop.steps(arn)["WaitForJobs"]["FailureReason"]
    jobs = loop.client("batch").describe_jobs(jobs=list(loop.job_ids(arn)))["jobs"]
    assert {j["status"] for j in jobs} == {"FAILED"}


def test_an_unreadable_message_goes_to_the_dlq_at_once_and_does_not_loop(
    loop: Loop, local_only: Any
) -> None:
    sqs = loop.client("sqs")
    body = f"not json {uuid.uuid4().hex}"
    calls_before = _calls(loop, "sqs:SendMessage")
    sqs.send_message(QueueUrl=loop.outputs["CallbackQueueUrl"], MessageBody=body)

    deadline = time.monotonic() + 20
    while body not in loop.monitor_log():
        assert time.monotonic() < deadline, "the monitor never logged the unreadable message"
        time.sleep(0.3)
    # The monitor sent it on to the DLQ (one SendMessage besides ours) and it left the queue.
    assert _calls(loop, "sqs:SendMessage") >= calls_before + 2
    attributes = sqs.get_queue_attributes(
        QueueUrl=loop.outputs["CallbackQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


def test_a_message_that_ran_out_of_receives_fails_its_step_through_the_reaper(
    loop: Loop, local_only: Any
) -> None:
    sqs = loop.client("sqs")
    queue = loop.outputs["CallbackQueueUrl"]
    original = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(original["RedrivePolicy"])
    # A monitor that crashes every time: shorten the queue's clock so the redrive comes soon.
    sqs.set_queue_attributes(
        QueueUrl=queue,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({**redrive, "maxReceiveCount": 2}),
        },
    )
    monitor = loop.outputs["MonitorFunctionArn"].rsplit(":", 1)[-1]
    loop.control("lambda/crash", {"function": monitor, "count": 1000, "when": "before"})
    try:
        arn = loop.start(**_uris(loop, "reaper"), MaxJobs=1)
        described = loop.wait(arn, timeout=60)
    finally:
        _clear_lambda_faults(loop)
        sqs.set_queue_attributes(
            QueueUrl=queue,
            Attributes={
                "VisibilityTimeout": original["VisibilityTimeout"],
                "RedrivePolicy": original["RedrivePolicy"],
            },
        )
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "gave up" in loop.steps(arn)["WaitForJobs"]["FailureReason"]


def test_250_jobs_succeed(loop: Loop, local_only: Any) -> None:
    loop.script_jobs(jobNamePrefix="batchbridge-", durationSeconds=0.2, exitCode=0)
    try:
        arn = loop.start(**_uris(loop, "many"), MaxJobs=250)
        described = loop.wait(arn, timeout=120)
    finally:
        _clear_scripts(loop)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    outputs = loop.steps(arn)["WaitForJobs"]["Metadata"]["Callback"]["OutputParameters"]
    assert {o["Name"]: o["Value"] for o in outputs}["job_count"] == "250"
    assert len(loop.job_ids(arn)) == 250


def test_an_array_job_of_1000_children_succeeds(loop: Loop, local_only: Any) -> None:
    from pipeline.definition import build_pipeline
    from pipeline.sdk import client_session, load
    from scripts.pipeline_sync import _quiet_sdk

    sdk = load()
    boto_session = _boto_session(loop.target)
    session = client_session(sdk, boto_session, loop.client("sagemaker"), telemetry=False)
    name = f"{loop.stack}-array"
    pipeline = build_pipeline(
        name,
        submitter_function_arn=loop.outputs["SubmitterFunctionArn"],
        callback_queue_url=loop.outputs["CallbackQueueUrl"],
        session=session,
        sdk=sdk,
        array_size=2,
    )
    with _quiet_sdk():
        pipeline.upsert(role_arn=loop.outputs["PipelineRoleArn"])
    loop.script_jobs(jobNamePrefix="batchbridge-", durationSeconds=0.1, exitCode=0)
    try:
        arn = loop.start(name, **_uris(loop, "array"), MaxJobs=1000, ArraySize=1000)
        described = loop.wait(arn, timeout=120)
    finally:
        _clear_scripts(loop)
    assert described["PipelineExecutionStatus"] == "Succeeded", loop.steps(arn)
    (parent,) = loop.job_ids(arn)
    job = loop.client("batch").describe_jobs(jobs=[parent])["jobs"][0]
    assert job["arrayProperties"]["size"] == 1000
    assert job["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 1000


# --- helpers ----------------------------------------------------------------------------------


def _boto_session(target: Any) -> Any:
    import boto3

    return boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=target.region
    )


def _calls(loop: Loop, key: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{loop.target.endpoint}/_batchbridge/calls") as response:
        return int(json.loads(response.read()).get(key, 0))


def _delete(loop: Loop, path: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{loop.target.endpoint}/_batchbridge/{path}", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()


def _clear_scripts(loop: Loop) -> None:
    _delete(loop, "batch/scripts")


def _clear_lambda_faults(loop: Loop) -> None:
    _delete(loop, "lambda/faults")
