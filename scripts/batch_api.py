"""``--batch-resources api``: the stack's Batch setup made through the Batch API.

For endpoints whose CloudFormation ignores ``AWS::Batch::*`` (LocalStack, under docker
compose), deploy makes the same three things the template would — a Fargate compute
environment, a job queue and the tutorial's copy job definition — plus the service role moto's
Batch insists on, then deploys the stack as for an existing Batch setup. Each is tagged with
the stack's name, so destroy removes exactly these. Every step is idempotent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

Say = Callable[[str], None]
TAG = "batchbridge:stack"
COPY_IMAGE = "public.ecr.aws/aws-cli/aws-cli"
COPY_COMMAND = ["s3", "cp", "Ref::s3Input", "Ref::s3Output"]
BATCH_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole"


class BatchSetupError(RuntimeError):
    """A Batch resource did not become usable; the message names it and Batch's reason."""


@dataclass(frozen=True)
class Names:
    compute_environment: str
    job_queue: str
    job_definition: str
    service_role: str

    @classmethod
    def for_stack(cls, stack_name: str) -> Names:
        # The names the template gives the same resources (CreateBatchResources=true).
        return cls(
            f"{stack_name}-fargate",
            f"{stack_name}-jobs",
            f"{stack_name}-copy",
            f"{stack_name}-batch-service",
        )


def ensure(
    batch: Any,
    iam: Any,
    stack_name: str,
    *,
    subnets: list[str],
    security_groups: list[str],
    max_vcpus: int,
    say: Say,
    timeout: float = 300,
) -> Names:
    names = Names.for_stack(stack_name)
    tags = {TAG: stack_name}
    role_arn = _ensure_service_role(iam, names.service_role, say)
    found = batch.describe_compute_environments(computeEnvironments=[names.compute_environment])
    if not found["computeEnvironments"]:
        batch.create_compute_environment(
            computeEnvironmentName=names.compute_environment,
            type="MANAGED",
            state="ENABLED",
            computeResources={
                "type": "FARGATE",
                "maxvCpus": max_vcpus,
                "subnets": subnets,
                "securityGroupIds": security_groups,
            },
            serviceRole=role_arn,
            tags=tags,
        )
        say(f"batch: created compute environment {names.compute_environment}")
    _wait_valid(
        lambda: batch.describe_compute_environments(
            computeEnvironments=[names.compute_environment]
        )["computeEnvironments"],
        names.compute_environment,
        timeout,
    )
    if not batch.describe_job_queues(jobQueues=[names.job_queue])["jobQueues"]:
        batch.create_job_queue(
            jobQueueName=names.job_queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": names.compute_environment}],
            tags=tags,
        )
        say(f"batch: created job queue {names.job_queue}")
    _wait_valid(
        lambda: batch.describe_job_queues(jobQueues=[names.job_queue])["jobQueues"],
        names.job_queue,
        timeout,
    )
    active = batch.describe_job_definitions(
        jobDefinitionName=names.job_definition, status="ACTIVE"
    )["jobDefinitions"]
    if not any(_is_copy_definition(d) for d in active):
        batch.register_job_definition(
            jobDefinitionName=names.job_definition,
            type="container",
            platformCapabilities=["FARGATE"],
            containerProperties={
                "image": COPY_IMAGE,
                "command": COPY_COMMAND,
                "resourceRequirements": [
                    {"type": "VCPU", "value": "0.25"},
                    {"type": "MEMORY", "value": "512"},
                ],
                "networkConfiguration": {"assignPublicIp": "ENABLED"},
            },
            retryStrategy={"attempts": 1},
            tags=tags,
        )
        say(f"batch: registered job definition {names.job_definition}")
    return names


def remove(batch: Any, iam: Any, stack_name: str, *, say: Say, timeout: float = 300) -> int:
    """Delete what :func:`ensure` made for this stack (only what carries its tag)."""
    names = Names.for_stack(stack_name)
    removed = 0
    for definition in batch.describe_job_definitions(
        jobDefinitionName=names.job_definition, status="ACTIVE"
    )["jobDefinitions"]:
        if definition.get("tags", {}).get(TAG) == stack_name:
            batch.deregister_job_definition(jobDefinition=definition["jobDefinitionArn"])
            removed += 1
    for queue in batch.describe_job_queues(jobQueues=[names.job_queue])["jobQueues"]:
        if queue.get("tags", {}).get(TAG) == stack_name:
            batch.update_job_queue(jobQueue=names.job_queue, state="DISABLED")
            batch.delete_job_queue(jobQueue=names.job_queue)
            _wait_gone(
                lambda: batch.describe_job_queues(jobQueues=[names.job_queue])["jobQueues"],
                timeout,
            )
            removed += 1
    for env in batch.describe_compute_environments(computeEnvironments=[names.compute_environment])[
        "computeEnvironments"
    ]:
        if env.get("tags", {}).get(TAG) == stack_name:
            batch.update_compute_environment(
                computeEnvironment=names.compute_environment, state="DISABLED"
            )
            batch.delete_compute_environment(computeEnvironment=names.compute_environment)
            _wait_gone(
                lambda: batch.describe_compute_environments(
                    computeEnvironments=[names.compute_environment]
                )["computeEnvironments"],
                timeout,
            )
            removed += 1
    if removed:
        _remove_service_role(iam, names.service_role)
        say(f"batch: removed {removed} Batch resource(s) made through the API")
    return removed


def _is_copy_definition(definition: dict[str, Any]) -> bool:
    container = definition.get("containerProperties", {})
    return container.get("image") == COPY_IMAGE and container.get("command") == COPY_COMMAND


def _ensure_service_role(iam: Any, name: str, say: Say) -> str:
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "batch.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        arn = str(role["Role"]["Arn"])
        say(f"iam: created Batch service role {name}")
    try:
        iam.attach_role_policy(RoleName=name, PolicyArn=BATCH_SERVICE_POLICY)
    except ClientError as exc:
        # moto (and so the local environment) does not load AWS-managed policies unless told
        # to; a local Batch plane only checks that the role exists, so the role serves as is.
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
    return arn


def _remove_service_role(iam: Any, name: str) -> None:
    for call in (
        lambda: iam.detach_role_policy(RoleName=name, PolicyArn=BATCH_SERVICE_POLICY),
        lambda: iam.delete_role(RoleName=name),
    ):
        try:
            call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise


def _wait_valid(describe: Callable[[], list[dict[str, Any]]], name: str, timeout: float) -> None:
    # Real Batch creates asynchronously (CREATING → VALID); a local plane is immediate.
    deadline = time.monotonic() + timeout
    while True:
        found = describe()
        status = found[0].get("status", "VALID") if found else "MISSING"
        if status == "VALID":
            return
        if status in ("INVALID", "MISSING") or time.monotonic() > deadline:
            reason = found[0].get("statusReason", "") if found else "it disappeared"
            raise BatchSetupError(f"Batch resource {name} is {status}: {reason}")
        time.sleep(1)


def _wait_gone(describe: Callable[[], list[dict[str, Any]]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while describe() and time.monotonic() < deadline:
        time.sleep(0.5)
