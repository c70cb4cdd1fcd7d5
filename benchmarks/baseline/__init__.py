"""The tutorial's design, deployed beside batchbridge in the same environment.

Its own queue (visibility timeout: the tutorial's 900 s, scaled), no dead-letter queue, an
event source mapping with the defaults the tutorial's ``create_event_source_mapping`` call
gets (batch size 10, no partial batch responses), and the two Lambdas of this folder. Its
pipeline is the same definition as batchbridge's, pointed at its submitter and queue.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from benchmarks.loop import Side, client, pipeline_variant
from services.environment import LocalEnvironment

HERE = Path(__file__).resolve().parent
#: The tutorial's queue visibility timeout, in AWS seconds.
TUTORIAL_VISIBILITY_SECONDS = 900


def _zip(module: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{module}.py", (HERE / f"{module}.py").read_text())
    return buffer.getvalue()


def deploy_baseline(
    env: LocalEnvironment, name: str, *, visibility: int, like: Side, source_pipeline: str
) -> Side:
    """Deploy the baseline; ``visibility`` is the scaled 900 s, in real seconds.

    ``like`` is the deployed batchbridge: the baseline submits to the same Batch job queue and
    definition, and its pipeline copies ``source_pipeline``'s definition."""
    iam, lam, sqs, sm = (client(env, s) for s in ("iam", "lambda", "sqs", "sagemaker"))
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))
    role_arn = role["Role"]["Arn"]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-callbacks", Attributes={"VisibilityTimeout": str(visibility)}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    job_definition = f"{like.job_queue.removesuffix('-jobs')}-copy"
    submitter = lam.create_function(
        FunctionName=f"{name}-submitter",
        Runtime="python3.11",
        Role=role_arn,
        Handler="submitter.handler",
        Code={"ZipFile": _zip("submitter")},
        # The tutorial submits one job at a time: 1,000 jobs need minutes on AWS.
        Timeout=900,
        Environment={"Variables": {"JOB_QUEUE": like.job_queue, "JOB_DEFINITION": job_definition}},
    )["FunctionArn"]
    lam.create_function(
        FunctionName=f"{name}-monitor",
        Runtime="python3.11",
        Role=role_arn,
        Handler="monitor.handler",
        Code={"ZipFile": _zip("monitor")},
        Timeout=max(3, min(60, visibility - 1)),
    )
    lam.create_event_source_mapping(FunctionName=f"{name}-monitor", EventSourceArn=queue_arn)
    pipeline = pipeline_variant(
        sm, source_pipeline, f"{name}-jobs", function_arn=submitter, queue_url=queue_url
    )
    return Side(
        label="baseline",
        pipeline=pipeline,
        array_pipeline=None,  # the tutorial's submitter has no array jobs
        queue_url=queue_url,
        dlq_url=None,
        monitor=f"{name}-monitor",
        submitter=f"{name}-submitter",
        job_queue=like.job_queue,
    )
