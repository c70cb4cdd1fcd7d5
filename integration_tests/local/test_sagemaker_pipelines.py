"""SageMaker Pipelines that really run: pipelines built with the sagemaker SDK, executed by the
target's SageMaker service, with the test playing the Callback step's consumer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import boto3
import sagemaker
from botocore.exceptions import ClientError
from sagemaker.lambda_helper import Lambda
from sagemaker.processing import Processor
from sagemaker.workflow.callback_step import CallbackOutput, CallbackStep
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThan
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join
from sagemaker.workflow.lambda_step import (
    LambdaOutput,
    LambdaOutputTypeEnum,
    LambdaStep,
)
from sagemaker.workflow.parameters import ParameterInteger, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.steps import ProcessingStep

from lambdas.contracts import (
    CALLBACK_STATUS_EXECUTING,
    CALLBACK_STATUS_STOPPING,
    CallbackMessage,
    parse_callback_message,
)

pytestmark = [
    pytest.mark.timeout(60),
    # LambdaStep with an existing function ARN: the SDK warns that it will not deploy code.
    pytest.mark.filterwarnings("ignore:Lambda function won't be updated"),
]

ROLE = "arn:aws:iam::123456789012:role/batchbridge-pipeline"
# Silences the SDK's telemetry (an HTTPS call to an AWS host after create/start) at its switch.
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

ECHO_HANDLER = """
import json

def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail: " + str(event["fail"]))
    return {"statusCode": 200, "jobIds": "job-1 job-2", "echo": json.dumps(event, sort_keys=True)}
"""


@pytest.fixture(scope="module")
def local(target: Any) -> Any:
    """The local target (module scoped): these tests run pipelines on the local service."""
    if not target.local:
        pytest.skip("runs pipelines on batchbridge's local SageMaker; the target is real AWS")
    return target


@pytest.fixture(scope="module")
def session(local: Any) -> sagemaker.session.Session:
    local_only = local
    boto_session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=local_only.region
    )
    return sagemaker.session.Session(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker", endpoint_url=local_only.endpoint),
        sagemaker_config=SDK_CONFIG,
        default_bucket="batchbridge-test",
    )


@pytest.fixture
def queue(client: Callable[..., Any]) -> Iterator[str]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=f"callbacks-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture(scope="module")
def echo_function(local: Any) -> str:
    """A tiny Lambda, deployed through the endpoint, that echoes its event."""
    local_only = local
    iam = local_only.client("iam")
    try:
        role = iam.create_role(
            RoleName="batchbridge-test-lambda",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
    except ClientError:
        role = iam.get_role(RoleName="batchbridge-test-lambda")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("echo.py", ECHO_HANDLER)
    name = f"echo-{uuid.uuid4().hex[:8]}"
    arn = local_only.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="echo.handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=30,
    )["FunctionArn"]
    return str(arn)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def receive(sqs: Any, queue_url: str, timeout: float = 15) -> tuple[CallbackMessage, str]:
    """The next callback message on the queue (parsed) and its receipt handle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, MaxNumberOfMessages=1)
        for message in got.get("Messages", []):
            return parse_callback_message(message["Body"]), message["ReceiptHandle"]
    raise AssertionError(f"no callback message on {queue_url} within {timeout} s")


def wait_for_status(execution: Any, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        described = execution.describe()
        if described["PipelineExecutionStatus"] in statuses:
            return dict(described)
        if time.monotonic() > deadline:
            raise AssertionError(f"execution stayed {described['PipelineExecutionStatus']}")
        time.sleep(0.05)


def steps_by_name(execution: Any) -> dict[str, dict[str, Any]]:
    return {step["StepName"]: step for step in execution.list_steps()}


def callback_pipeline(session: Any, queue_url: str, name: str | None = None) -> Pipeline:
    """One Callback step whose consumer is the test; queue URL written as on AWS."""
    account, queue_name = queue_url.rstrip("/").split("/")[-2:]
    wait = CallbackStep(
        "WaitForJobs",
        sqs_queue_url=f"https://sqs.us-east-1.amazonaws.com/{account}/{queue_name}",
        inputs={"job_ids": "job-a job-b", "execution": ExecutionVariables.PIPELINE_EXECUTION_ARN},
        outputs=[CallbackOutput("job_status")],
    )
    return Pipeline(name or unique("callback"), steps=[wait], sagemaker_session=session)


# --- the loop: Lambda feeding a Callback ------------------------------------------------------


def test_lambda_step_feeds_callback_step_and_outputs_are_visible(
    session: Any, queue: str, echo_function: str, client: Callable[..., Any]
) -> None:
    input_uri = ParameterString("InputUri", default_value="s3://in/default")
    submit = LambdaStep(
        "SubmitJobs",
        lambda_func=Lambda(function_arn=echo_function, session=session),
        inputs={"input_uri": input_uri, "run": ExecutionVariables.PIPELINE_EXECUTION_ID},
        outputs=[
            LambdaOutput("jobIds", LambdaOutputTypeEnum.String),
            LambdaOutput("echo", LambdaOutputTypeEnum.String),
        ],
    )
    wait = CallbackStep(
        "WaitForJobs",
        sqs_queue_url=queue,
        inputs={"job_ids": submit.properties.Outputs["jobIds"]},
        outputs=[CallbackOutput("job_status"), CallbackOutput("job_count")],
    )
    pipeline = Pipeline(
        unique("loop"), parameters=[input_uri], steps=[submit, wait], sagemaker_session=session
    )
    pipeline.upsert(role_arn=ROLE)
    pipeline.upsert(role_arn=ROLE)  # the second upsert updates the existing pipeline
    execution = pipeline.start()

    sqs = client("sqs")
    message, receipt = receive(sqs, queue)
    assert message.status == CALLBACK_STATUS_EXECUTING
    assert message.pipeline_execution_arn == execution.arn
    assert message.job_ids == ("job-1", "job-2")
    assert len(message.token) == 10 and message.token.isalnum()
    client("sagemaker").send_pipeline_execution_step_success(
        CallbackToken=message.token,
        OutputParameters=[
            {"Name": "job_status", "Value": "Completed"},
            {"Name": "job_count", "Value": "2"},
        ],
    )
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)
    execution.wait(delay=1, max_attempts=30)

    assert execution.describe()["PipelineExecutionStatus"] == "Succeeded"
    steps = steps_by_name(execution)
    assert {s["StepStatus"] for s in steps.values()} == {"Succeeded"}
    lambda_meta = steps["SubmitJobs"]["Metadata"]["Lambda"]
    assert lambda_meta["Arn"] == echo_function
    lambda_outputs = {p["Name"]: p["Value"] for p in lambda_meta["OutputParameters"]}
    assert lambda_outputs["jobIds"] == "job-1 job-2"
    assert json.loads(lambda_outputs["echo"]) == {
        "input_uri": "s3://in/default",
        "run": execution.arn.rsplit("/", 1)[1],
    }
    callback_meta = steps["WaitForJobs"]["Metadata"]["Callback"]
    assert callback_meta["CallbackToken"] == message.token
    assert {p["Name"]: p["Value"] for p in callback_meta["OutputParameters"]} == {
        "job_status": "Completed",
        "job_count": "2",
    }
    for step in steps.values():
        assert step["StartTime"] <= step["EndTime"]


def test_parameter_override_reaches_the_lambda(
    session: Any, echo_function: str, client: Callable[..., Any]
) -> None:
    input_uri = ParameterString("InputUri", default_value="s3://in/default")
    max_jobs = ParameterInteger("MaxJobs", default_value=1)
    submit = LambdaStep(
        "SubmitJobs",
        lambda_func=Lambda(function_arn=echo_function, session=session),
        inputs={
            "input_uri": Join(on="/", values=[input_uri, "part"]),
            "max_jobs": max_jobs,
        },
        outputs=[LambdaOutput("echo", LambdaOutputTypeEnum.String)],
    )
    pipeline = Pipeline(
        unique("override"),
        parameters=[input_uri, max_jobs],
        steps=[submit],
        sagemaker_session=session,
    )
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start(parameters={"InputUri": "s3://in/override", "MaxJobs": 7})
    execution.wait(delay=1, max_attempts=30)

    outputs = steps_by_name(execution)["SubmitJobs"]["Metadata"]["Lambda"]["OutputParameters"]
    echoed = json.loads({p["Name"]: p["Value"] for p in outputs}["echo"])
    assert echoed == {"input_uri": "s3://in/override/part", "max_jobs": 7}


def test_lambda_error_fails_the_step_with_its_message(session: Any, echo_function: str) -> None:
    submit = LambdaStep(
        "SubmitJobs",
        lambda_func=Lambda(function_arn=echo_function, session=session),
        inputs={"fail": "bad input_uri"},
    )
    pipeline = Pipeline(unique("lambda-error"), steps=[submit], sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    described = wait_for_status(execution, {"Failed", "Succeeded"})

    assert described["PipelineExecutionStatus"] == "Failed"
    step = steps_by_name(execution)["SubmitJobs"]
    assert step["StepStatus"] == "Failed"
    assert "asked to fail: bad input_uri" in step["FailureReason"]


# --- callbacks ----------------------------------------------------------------------------


def test_failure_callback_fails_the_execution_with_its_reason(
    session: Any, queue: str, client: Callable[..., Any]
) -> None:
    pipeline = callback_pipeline(session, queue)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    message, _ = receive(client("sqs"), queue)
    assert message.arguments["execution"] == execution.arn

    client("sagemaker").send_pipeline_execution_step_failure(
        CallbackToken=message.token, FailureReason="job job-a FAILED: exit code 3"
    )
    described = wait_for_status(execution, {"Failed", "Succeeded"})

    assert described["PipelineExecutionStatus"] == "Failed"
    assert "job job-a FAILED: exit code 3" in described["FailureReason"]
    step = steps_by_name(execution)["WaitForJobs"]
    assert step["StepStatus"] == "Failed"
    assert step["FailureReason"] == "job job-a FAILED: exit code 3"


def test_a_token_answered_twice_or_unknown_is_rejected(
    session: Any, queue: str, client: Callable[..., Any]
) -> None:
    sm = client("sagemaker")
    pipeline = callback_pipeline(session, queue)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    message, _ = receive(client("sqs"), queue)
    request_token = uuid.uuid4().hex
    answer = sm.send_pipeline_execution_step_success(
        CallbackToken=message.token, ClientRequestToken=request_token
    )
    assert answer["PipelineExecutionArn"] == execution.arn
    # The same request again (same ClientRequestToken) is idempotent …
    again = sm.send_pipeline_execution_step_success(
        CallbackToken=message.token, ClientRequestToken=request_token
    )
    assert again["PipelineExecutionArn"] == execution.arn
    # … a different answer to a finished step is a conflict, and a token nobody issued is unknown.
    with pytest.raises(ClientError) as twice:
        sm.send_pipeline_execution_step_failure(CallbackToken=message.token, FailureReason="late")
    assert twice.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as unknown:
        sm.send_pipeline_execution_step_success(CallbackToken="AAAAAAAAAA")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"
    assert wait_for_status(execution, {"Succeeded"})["PipelineExecutionStatus"] == "Succeeded"


def test_stop_sends_a_stopping_message_and_ends_stopped(
    session: Any, queue: str, client: Callable[..., Any]
) -> None:
    sqs = client("sqs")
    pipeline = callback_pipeline(session, queue)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    first, receipt = receive(sqs, queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)

    execution.stop()
    assert execution.describe()["PipelineExecutionStatus"] == "Stopping"
    stopping, _ = receive(sqs, queue)
    assert stopping.status == CALLBACK_STATUS_STOPPING
    assert stopping.token == first.token
    assert stopping.arguments == first.arguments
    assert steps_by_name(execution)["WaitForJobs"]["StepStatus"] == "Stopping"

    client("sagemaker").send_pipeline_execution_step_failure(
        CallbackToken=stopping.token, FailureReason="stopped"
    )
    # Not execution.wait(): the SDK v2 waiter knows only Succeeded and Failed.
    assert wait_for_status(execution, {"Stopped", "Failed"})["PipelineExecutionStatus"] == "Stopped"
    assert steps_by_name(execution)["WaitForJobs"]["StepStatus"] == "Stopped"


# --- control flow ---------------------------------------------------------------------------


def test_condition_step_takes_the_right_branch(session: Any) -> None:
    max_jobs = ParameterInteger("MaxJobs", default_value=1)
    too_many = FailStep(
        "TooManyJobs", error_message=Join(on=" ", values=["MaxJobs is", max_jobs, "> 10"])
    )
    check = ConditionStep(
        "CheckMaxJobs",
        conditions=[ConditionGreaterThan(left=max_jobs, right=10)],
        if_steps=[too_many],
        else_steps=[],
    )
    pipeline = Pipeline(
        unique("condition"), parameters=[max_jobs], steps=[check], sagemaker_session=session
    )
    pipeline.upsert(role_arn=ROLE)

    small = pipeline.start()
    large = pipeline.start(parameters={"MaxJobs": 50})
    assert wait_for_status(small, {"Succeeded", "Failed"})["PipelineExecutionStatus"] == "Succeeded"
    small_steps = steps_by_name(small)
    assert small_steps["CheckMaxJobs"]["Metadata"]["Condition"]["Outcome"] == "False"
    assert "TooManyJobs" not in small_steps

    described = wait_for_status(large, {"Succeeded", "Failed"})
    assert described["PipelineExecutionStatus"] == "Failed"
    large_steps = steps_by_name(large)
    assert large_steps["CheckMaxJobs"]["Metadata"]["Condition"]["Outcome"] == "True"
    assert large_steps["TooManyJobs"]["StepStatus"] == "Failed"
    assert large_steps["TooManyJobs"]["Metadata"]["Fail"]["ErrorMessage"] == "MaxJobs is 50 > 10"


@pytest.mark.filterwarnings("ignore:We are deprecating the instantiation of ProcessingStep")
def test_an_unsupported_step_type_fails_fast_and_names_the_type(session: Any) -> None:
    processor = Processor(
        role=ROLE,
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/prep:1",
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=session,
    )
    pipeline = Pipeline(
        unique("unsupported"),
        steps=[ProcessingStep("Prepare", processor=processor)],
        sagemaker_session=session,
    )
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    described = wait_for_status(execution, {"Failed", "Succeeded"}, timeout=2)

    assert described["PipelineExecutionStatus"] == "Failed"
    assert "Processing" in described["FailureReason"]
    assert steps_by_name(execution)["Prepare"]["StepStatus"] == "Failed"


# --- the API surface ------------------------------------------------------------------------


def test_pipeline_crud_and_unsupported_operations(
    session: Any, queue: str, client: Callable[..., Any]
) -> None:
    sm = client("sagemaker")
    pipeline = callback_pipeline(session, queue)
    created = pipeline.upsert(role_arn=ROLE, description="first")
    described = sm.describe_pipeline(PipelineName=pipeline.name)
    assert described["PipelineArn"] == created["PipelineArn"]
    assert json.loads(described["PipelineDefinition"]) == json.loads(pipeline.definition())
    names = [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    assert pipeline.name in names

    execution = pipeline.start()
    definition = sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution.arn)
    assert json.loads(definition["PipelineDefinition"]) == json.loads(pipeline.definition())
    summaries = sm.list_pipeline_executions(PipelineName=pipeline.name)
    assert [s["PipelineExecutionArn"] for s in summaries["PipelineExecutionSummaries"]] == [
        execution.arn
    ]
    execution.stop()  # nobody answers the Stopping message in this test: it stays Stopping

    sm.delete_pipeline(PipelineName=pipeline.name, ClientRequestToken=uuid.uuid4().hex)
    with pytest.raises(ClientError) as missing:
        sm.describe_pipeline(PipelineName=pipeline.name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as unsupported:
        sm.list_training_jobs()
    assert "ListTrainingJobs" in unsupported.value.response["Error"]["Message"]


def test_a_definition_stored_in_s3_is_read_from_there(
    session: Any, queue: str, client: Callable[..., Any]
) -> None:
    s3, sm = client("s3"), client("sagemaker")
    bucket = unique("definitions")
    s3.create_bucket(Bucket=bucket)
    pipeline = callback_pipeline(session, queue)
    s3.put_object(Bucket=bucket, Key="p.json", Body=pipeline.definition().encode())
    sm.create_pipeline(
        PipelineName=pipeline.name,
        PipelineDefinitionS3Location={"Bucket": bucket, "ObjectKey": "p.json"},
        RoleArn=ROLE,
    )
    described = sm.describe_pipeline(PipelineName=pipeline.name)
    assert json.loads(described["PipelineDefinition"]) == json.loads(pipeline.definition())


def test_aws_cli_lists_the_steps_of_an_execution(
    session: Any, queue: str, client: Callable[..., Any], local_only: Any
) -> None:
    pipeline = callback_pipeline(session, queue)
    pipeline.upsert(role_arn=ROLE)
    execution = pipeline.start()
    message, _ = receive(client("sqs"), queue)
    client("sagemaker").send_pipeline_execution_step_success(
        CallbackToken=message.token, OutputParameters=[{"Name": "job_status", "Value": "Completed"}]
    )
    wait_for_status(execution, {"Succeeded"})

    aws = Path(sys.executable).with_name("aws")
    result = subprocess.run(
        [
            str(aws),
            "--endpoint-url",
            local_only.endpoint,
            "--region",
            local_only.region,
            "--output",
            "json",
            "sagemaker",
            "list-pipeline-execution-steps",
            "--pipeline-execution-arn",
            execution.arn,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [step] = json.loads(result.stdout)["PipelineExecutionSteps"]
    assert step["StepName"] == "WaitForJobs"
    assert step["StepStatus"] == "Succeeded"
    assert step["Metadata"]["Callback"]["OutputParameters"] == [
        {"Name": "job_status", "Value": "Completed"}
    ]


def test_a_hundred_executions_run_at_once(
    session: Any, queue: str, client: Callable[..., Any]
) -> None:
    sqs, sm = client("sqs"), client("sagemaker")
    pipeline = callback_pipeline(session, queue)
    pipeline.upsert(role_arn=ROLE)
    arns = {
        sm.start_pipeline_execution(
            PipelineName=pipeline.name, ClientRequestToken=uuid.uuid4().hex
        )["PipelineExecutionArn"]
        for _ in range(100)
    }
    answered: set[str] = set()
    deadline = time.monotonic() + 30
    while answered != arns and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for raw in got.get("Messages", []):
            message = parse_callback_message(raw["Body"])
            sm.send_pipeline_execution_step_success(CallbackToken=message.token)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=raw["ReceiptHandle"])
            answered.add(message.pipeline_execution_arn)
    assert answered == arns
    statuses = {
        s["PipelineExecutionStatus"]
        for s in sm.list_pipeline_executions(PipelineName=pipeline.name, MaxResults=100)[
            "PipelineExecutionSummaries"
        ]
    }
    assert statuses == {"Succeeded"}


def test_the_v3_sdk_builds_a_pipeline_that_runs(
    local_only: Any, queue: str, client: Callable[..., Any]
) -> None:
    try:
        from sagemaker.mlops.workflow.callback_step import CallbackStep as CallbackStepV3
        from sagemaker.mlops.workflow.pipeline import Pipeline as PipelineV3
    except ImportError:
        pytest.skip("sagemaker SDK v3 (sagemaker.mlops) is not installed; v2 is covered above")
    step = CallbackStepV3(
        "WaitForJobs", sqs_queue_url=queue, inputs={"job_ids": "job-a"}, outputs=[]
    )
    pipeline = PipelineV3(name=unique("v3"), steps=[step])
    sm = client("sagemaker")
    sm.create_pipeline(
        PipelineName=pipeline.name,
        PipelineDefinition=pipeline.definition(),
        RoleArn=ROLE,
        ClientRequestToken=uuid.uuid4().hex,
    )
    arn = sm.start_pipeline_execution(PipelineName=pipeline.name)["PipelineExecutionArn"]
    message, _ = receive(client("sqs"), queue)
    sm.send_pipeline_execution_step_success(CallbackToken=message.token)
    deadline = time.monotonic() + 10
    while (
        sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        != "Succeeded"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
