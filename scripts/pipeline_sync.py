"""Create, update or delete the deployed SageMaker pipeline (the stack's outputs wire it)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from pipeline.definition import build_pipeline
from pipeline.sdk import client_session, load

DESCRIPTION = "batchbridge: AWS Batch jobs as SageMaker Pipeline steps"


def upsert_pipeline(
    boto_session: Any,
    sagemaker_client: Any,
    *,
    name: str,
    outputs: dict[str, str],
    telemetry: bool = True,
) -> dict[str, Any]:
    """Upsert with the SDK, unless the deployed definition and role are already these.

    Skipping the unchanged case keeps a second deploy from adding a pipeline version."""
    sdk = load()
    session = client_session(sdk, boto_session, sagemaker_client, telemetry=telemetry)
    pipeline = build_pipeline(
        name,
        submitter_function_arn=outputs["SubmitterFunctionArn"],
        callback_queue_url=outputs["CallbackQueueUrl"],
        session=session,
        sdk=sdk,
    )
    role = outputs["PipelineRoleArn"]
    with _quiet_sdk():
        wanted = json.loads(pipeline.definition())
    current = _describe(sagemaker_client, name)
    if current is not None:
        same_definition = json.loads(current.get("PipelineDefinition") or "{}") == wanted
        if same_definition and current.get("RoleArn") == role:
            return {"name": name, "arn": current["PipelineArn"], "status": "unchanged"}
    with _quiet_sdk():
        response = pipeline.upsert(role_arn=role, description=DESCRIPTION)
    arn = response.get("PipelineArn") or (_describe(sagemaker_client, name) or {}).get(
        "PipelineArn", ""
    )
    return {"name": name, "arn": arn, "status": "created" if current is None else "updated"}


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    # The SDK warns on every definition() that a Lambda given by ARN "won't be updated":
    # exactly what batchbridge wants (CloudFormation owns the function).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Lambda function won't be updated")
        yield


def delete_pipeline(sagemaker_client: Any, name: str) -> bool:
    if _describe(sagemaker_client, name) is None:
        return False
    sagemaker_client.delete_pipeline(PipelineName=name)
    return True


def _describe(sagemaker_client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(sagemaker_client.describe_pipeline(PipelineName=name))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        # AWS answers ResourceNotFound; moto a ValidationException "Could not find pipeline".
        if code in ("ResourceNotFound", "ResourceNotFoundException") or (
            code == "ValidationException"
            and ("does not exist" in message or "Could not find" in message)
        ):
            return None
        raise
