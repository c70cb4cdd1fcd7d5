"""``batchbridge deploy --target aws`` end to end, with moto intercepting every AWS call.

What this proves that the local tests cannot: the aws target uses no endpoint at all (moto's
in-process mock only sees calls boto3 sends to AWS), and an existing Batch setup is found and
wired into the submitter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts.deploy import main

REGION = "us-east-1"


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"batch": {"use_docker": False}, "lambda": {"use_docker": False}}):
        yield


def _existing_batch_setup() -> None:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="svc", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = boto3.client("batch", region_name=REGION)
    env = batch.create_compute_environment(
        computeEnvironmentName="their-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    batch.create_job_queue(
        jobQueueName="their-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName="their-copy",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )


def _deploy(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    argv = ["deploy", "--target", "aws", "--stack-name", "bbaws", "--output", "json", *extra]
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_aws_target_with_an_existing_batch_setup(
    mocked_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _existing_batch_setup()
    existing = ["--batch-resources", "existing", "--job-queue", "their-queue"]
    existing += ["--job-definition", "their-copy"]
    first = _deploy(capsys, *existing)
    assert first["endpoint"] is None
    outputs = first["stack"]["outputs"]
    assert (outputs["JobQueue"], outputs["JobDefinition"]) == ("their-queue", "their-copy")
    variables = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=outputs["SubmitterFunctionArn"]
    )["Environment"]["Variables"]
    assert variables["BATCHBRIDGE_JOB_QUEUE"] == "their-queue"
    assert "AWS_ENDPOINT_URL_BATCH" not in variables
    assert first["pipeline"]["status"] == "created"

    second = _deploy(capsys, *existing)
    assert (second["stack"]["status"], second["pipeline"]["status"]) == ("unchanged", "unchanged")

    assert main(["destroy", "--target", "aws", "--stack-name", "bbaws"]) == 0
    stacks = boto3.client("cloudformation", region_name=REGION).list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "bbaws"} == {"DELETE_COMPLETE"}


def test_aws_target_names_a_missing_job_queue(
    mocked_aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deploy", "--target", "aws", "--batch-resources", "existing"]
    argv += ["--job-queue", "nope", "--job-definition", "nope"]
    assert main(argv) == 1
    assert "job queue 'nope' does not exist in us-east-1" in capsys.readouterr().err
