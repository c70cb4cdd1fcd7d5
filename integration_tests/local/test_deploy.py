"""``batchbridge deploy`` against the local environment: create, no-op redeploy, destroy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from scripts.deploy import main

pytestmark = pytest.mark.timeout(180)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_deploy_twice_then_destroy(
    local_only: Any, client: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_name = f"bbdeploy{uuid.uuid4().hex[:6]}"
    common = [
        "--target",
        "local",
        "--endpoint-url",
        local_only.endpoint,
        "--region",
        local_only.region,
        "--stack-name",
        stack_name,
        "--output",
        "json",
    ]
    try:
        first = _run(capsys, "deploy", *common)
        outputs = first["stack"]["outputs"]
        assert first["stack"]["status"] == "created"
        assert first["pipeline"]["status"] == "created"

        # What the outputs name exists, and the submitter defaults to the created Batch setup.
        queues = client("batch").describe_job_queues(jobQueues=[outputs["JobQueue"]])
        assert [q["jobQueueName"] for q in queues["jobQueues"]] == [f"{stack_name}-jobs"]
        definitions = client("batch").describe_job_definitions(
            jobDefinitionName=outputs["JobDefinition"], status="ACTIVE"
        )["jobDefinitions"]
        assert definitions[0]["containerProperties"]["command"] == [
            "s3",
            "cp",
            "Ref::s3Input",
            "Ref::s3Output",
        ]
        submitter = client("lambda").get_function_configuration(
            FunctionName=outputs["SubmitterFunctionArn"]
        )
        variables = submitter["Environment"]["Variables"]
        assert variables["BATCHBRIDGE_JOB_QUEUE"] == outputs["JobQueue"]
        assert variables["BATCHBRIDGE_JOB_DEFINITION"] == outputs["JobDefinition"]
        queue_url = client("sqs").get_queue_url(QueueName=f"{stack_name}-callbacks")["QueueUrl"]
        redrive = json.loads(
            client("sqs").get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
            )["Attributes"]["RedrivePolicy"]
        )
        assert redrive["deadLetterTargetArn"].endswith(f"{stack_name}-callbacks-dlq")
        described = client("sagemaker").describe_pipeline(PipelineName=stack_name)
        assert described["RoleArn"] == outputs["PipelineRoleArn"]
        steps = {s["Name"]: s for s in json.loads(described["PipelineDefinition"])["Steps"]}
        assert steps["SubmitJobs"]["FunctionArn"] == outputs["SubmitterFunctionArn"]
        assert steps["WaitForJobs"]["SqsQueueUrl"] == outputs["CallbackQueueUrl"]

        second = _run(capsys, "deploy", *common)
        assert second["stack"]["status"] == "unchanged"
        assert second["pipeline"]["status"] == "unchanged"
        assert second["stack"]["outputs"] == outputs
    finally:
        gone = _run(capsys, "destroy", *common)
    assert gone["stack"]["deleted"] and gone["pipeline"]["deleted"]
    with pytest.raises(ClientError):
        client("lambda").get_function_configuration(FunctionName=f"{stack_name}-submitter")
    with pytest.raises(ClientError):
        client("cloudformation").describe_stacks(StackName=stack_name)


def test_missing_network_or_batch_resources_fail_before_anything_is_made(
    local_only: Any, client: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_name = f"bbrefused{uuid.uuid4().hex[:6]}"
    common = ["--target", "local", "--endpoint-url", local_only.endpoint, "--region"]
    common += [local_only.region, "--stack-name", stack_name]

    assert (
        main(
            ["deploy", *common, "--subnets", "subnet-0000beef", "--security-groups", "sg-0000beef"]
        )
        == 1
    )
    assert "subnet-0000beef" in capsys.readouterr().err

    existing = ["--batch-resources", "existing", "--job-queue", "no-such-queue"]
    assert main(["deploy", *common, *existing, "--job-definition", "no-such-def"]) == 1
    assert "job queue 'no-such-queue' does not exist" in capsys.readouterr().err

    with pytest.raises(ClientError, match="does not exist"):
        client("cloudformation").describe_stacks(StackName=stack_name)


def test_batch_resources_through_the_api_for_endpoints_whose_cfn_ignores_batch(
    local_only: Any, client: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # docker compose: LocalStack's CloudFormation ignores AWS::Batch::*, so deploy makes them.
    stack_name = f"bbapi{uuid.uuid4().hex[:6]}"
    common = ["--target", "local", "--endpoint-url", local_only.endpoint, "--region"]
    common += [local_only.region, "--stack-name", stack_name, "--output", "json"]
    try:
        first = _run(capsys, "deploy", *common, "--batch-resources", "api")
        outputs = first["stack"]["outputs"]
        assert outputs["JobQueue"] == f"{stack_name}-jobs"
        queue = client("batch").describe_job_queues(jobQueues=[outputs["JobQueue"]])
        assert queue["jobQueues"][0]["state"] == "ENABLED"
        submitter = client("lambda").get_function_configuration(
            FunctionName=outputs["SubmitterFunctionArn"]
        )
        assert (
            submitter["Environment"]["Variables"]["BATCHBRIDGE_JOB_QUEUE"] == f"{stack_name}-jobs"
        )
        again = _run(capsys, "deploy", *common, "--batch-resources", "api")
        assert again["stack"]["status"] == "unchanged"
    finally:
        _run(capsys, "destroy", *common)
    batch = client("batch")
    assert batch.describe_job_queues(jobQueues=[f"{stack_name}-jobs"])["jobQueues"] == []
    assert (
        batch.describe_compute_environments(computeEnvironments=[f"{stack_name}-fargate"])[
            "computeEnvironments"
        ]
        == []
    )
    with pytest.raises(ClientError):
        client("iam").get_role(RoleName=f"{stack_name}-batch-service")
