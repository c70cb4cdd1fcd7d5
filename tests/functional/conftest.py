"""Fixtures for the functional tests (see aws_world.py for the fakes)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_world import REGION, FakeSageMaker, Recorder, World
from moto import mock_aws

from lambdas.aws import CLIENT_CONFIG
from lambdas.monitor import act


@functools.cache
def _client(service: str) -> Any:
    # boto3 clients are slow to build (~0.1 s each) and moto intercepts any client made after
    # it was imported, so one client per service serves every test; mock_aws resets the state.
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CLIENT_CONFIG,
    )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    act._dlq_urls.clear()
    act._is_dlq.clear()
    with mock_aws(config={"batch": {"use_docker": False}, "lambda": {"use_docker": False}}):
        iam = _client("iam")
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        batch = _client("batch")
        env = batch.create_compute_environment(
            computeEnvironmentName="batchbridge-ce",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role,
        )
        batch.create_job_queue(
            jobQueueName="batchbridge-queue",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[
                {"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}
            ],
        )
        batch.register_job_definition(
            jobDefinitionName="batchbridge-job",
            type="container",
            containerProperties={
                "image": "busybox",
                "vcpus": 1,
                "memory": 128,
                "command": ["true"],
            },
        )
        sqs = _client("sqs")
        dlq_url = sqs.create_queue(QueueName="batchbridge-callbacks-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="batchbridge-callbacks",
            Attributes={
                "VisibilityTimeout": "60",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "50"}
                ),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        yield World(
            batch=Recorder(batch),
            sqs=Recorder(sqs),
            sagemaker=FakeSageMaker(),
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            dlq_arn=dlq_arn,
        )
