"""The SageMaker Pipelines API: request JSON → backend call → response JSON.

Shapes follow botocore's sagemaker model; anything not listed in ``OPERATIONS`` is answered
as unsupported, by name (moto's own SageMaker would report every execution Succeeded at once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from services.sagemaker.backend import Pipeline, PipelinesBackend
from services.sagemaker.errors import ValidationException
from services.sagemaker.runner import Execution, StepRun

Handler = Callable[[PipelinesBackend, dict[str, Any]], dict[str, Any]]
T = TypeVar("T")


def _required(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise ValidationException(
            f"1 validation error detected: Value null at '{name[0].lower()}{name[1:]}' failed "
            "to satisfy constraint: Member must not be null"
        )
    return value


def _page(items: Sequence[T], body: dict[str, Any]) -> tuple[list[T], dict[str, Any]]:
    """NextToken is the offset of the next item, as text; MaxResults defaults to 50 (AWS)."""
    try:
        start = int(body.get("NextToken") or 0)
    except ValueError as exc:
        raise ValidationException(f"NextToken {body.get('NextToken')!r} is not valid") from exc
    size = int(body.get("MaxResults") or 50)
    page = list(items[start : start + size])
    more = {"NextToken": str(start + size)} if start + size < len(items) else {}
    return page, more


def _pipeline_definition(body: dict[str, Any], backend: PipelinesBackend) -> str | None:
    if body.get("PipelineDefinition"):
        return str(body["PipelineDefinition"])
    location = body.get("PipelineDefinitionS3Location")
    if location:
        # The sagemaker SDK uploads definitions over 100 KB to S3 and passes the location.
        s3 = backend.s3_client()
        kwargs = {"Bucket": location["Bucket"], "Key": location["ObjectKey"]}
        if location.get("VersionId"):
            kwargs["VersionId"] = location["VersionId"]
        return str(s3.get_object(**kwargs)["Body"].read().decode("utf-8"))
    return None


# --- pipelines -----------------------------------------------------------------------------


def create_pipeline(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    name = _required(body, "PipelineName")
    _required(body, "RoleArn")
    definition = _pipeline_definition(body, backend)
    if definition is None:
        raise ValidationException("Either PipelineDefinition or PipelineDefinitionS3Location.")
    pipeline = backend.create_pipeline(
        name,
        definition,
        body["RoleArn"],
        display_name=body.get("PipelineDisplayName"),
        description=body.get("PipelineDescription"),
        parallelism=body.get("ParallelismConfiguration"),
        tags=body.get("Tags"),
    )
    return {"PipelineArn": pipeline.arn}


def update_pipeline(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    pipeline = backend.update_pipeline(
        _required(body, "PipelineName"),
        definition=_pipeline_definition(body, backend),
        role_arn=body.get("RoleArn"),
        display_name=body.get("PipelineDisplayName"),
        description=body.get("PipelineDescription"),
        parallelism=body.get("ParallelismConfiguration"),
    )
    return {"PipelineArn": pipeline.arn, "PipelineVersionId": pipeline.version_id}


def describe_pipeline(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    p = backend.get_pipeline(_required(body, "PipelineName"))
    return _trim(
        {
            "PipelineArn": p.arn,
            "PipelineName": p.name,
            "PipelineDisplayName": p.display_name,
            "PipelineDefinition": p.definition,
            "PipelineDescription": p.description,
            "RoleArn": p.role_arn,
            "PipelineStatus": "Active",
            "CreationTime": p.creation_time,
            "LastModifiedTime": p.last_modified_time,
            "LastRunTime": p.last_run_time,
            "ParallelismConfiguration": p.parallelism,
        }
    )


def delete_pipeline(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    return {"PipelineArn": backend.delete_pipeline(_required(body, "PipelineName")).arn}


def list_pipelines(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    pipelines = backend.list_pipelines(body.get("PipelineNamePrefix"))
    if body.get("SortBy") == "Name":
        pipelines.sort(key=lambda p: p.name)
    else:
        pipelines.sort(key=lambda p: p.creation_time)
    if body.get("SortOrder", "Descending") == "Descending":
        pipelines.reverse()
    page, more = _page(pipelines, body)
    return {"PipelineSummaries": [_pipeline_summary(p) for p in page], **more}


def _pipeline_summary(p: Pipeline) -> dict[str, Any]:
    return _trim(
        {
            "PipelineArn": p.arn,
            "PipelineName": p.name,
            "PipelineDisplayName": p.display_name,
            "PipelineDescription": p.description,
            "RoleArn": p.role_arn,
            "CreationTime": p.creation_time,
            "LastModifiedTime": p.last_modified_time,
            "LastExecutionTime": p.last_run_time,
        }
    )


# --- executions ----------------------------------------------------------------------------


def start_pipeline_execution(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    execution = backend.start_execution(
        _required(body, "PipelineName"),
        body.get("PipelineParameters") or [],
        client_request_token=body.get("ClientRequestToken"),
        display_name=body.get("PipelineExecutionDisplayName"),
        description=body.get("PipelineExecutionDescription"),
    )
    return {"PipelineExecutionArn": execution.arn}


def describe_pipeline_execution(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    e = backend.get_execution(_required(body, "PipelineExecutionArn"))
    return _trim(
        {
            "PipelineArn": e.pipeline_arn,
            "PipelineExecutionArn": e.arn,
            "PipelineExecutionDisplayName": e.display_name,
            "PipelineExecutionStatus": e.status,
            "PipelineExecutionDescription": e.description,
            "PipelineExperimentConfig": {
                "ExperimentName": e.pipeline_name,
                "TrialName": e.execution_id,
            },
            "FailureReason": e.failure_reason,
            "CreationTime": e.creation_time,
            "LastModifiedTime": e.last_modified_time,
            "PipelineVersionId": e.pipeline_version_id,
        }
    )


def list_pipeline_executions(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    executions = sorted(
        backend.list_executions(_required(body, "PipelineName")),
        key=lambda e: (
            (e.creation_time, e.arn)
            if body.get("SortBy", "CreationTime") == "CreationTime"
            else (e.arn,)
        ),
        reverse=body.get("SortOrder", "Descending") == "Descending",
    )
    page, more = _page(executions, body)
    return {"PipelineExecutionSummaries": [_execution_summary(e) for e in page], **more}


def _execution_summary(e: Execution) -> dict[str, Any]:
    return _trim(
        {
            "PipelineExecutionArn": e.arn,
            "StartTime": e.creation_time,
            "PipelineExecutionStatus": e.status,
            "PipelineExecutionDescription": e.description,
            "PipelineExecutionDisplayName": e.display_name,
            "PipelineExecutionFailureReason": e.failure_reason,
        }
    )


def list_pipeline_execution_steps(
    backend: PipelinesBackend, body: dict[str, Any]
) -> dict[str, Any]:
    execution = backend.get_execution(_required(body, "PipelineExecutionArn"))
    with backend.runner.lock:  # a consistent snapshot while steps move on
        steps = [_step_summary(s) for s in execution.steps.values() if s.listed]
    # Newest first unless asked otherwise, as SageMaker lists them.
    steps.sort(
        key=lambda s: s["StartTime"], reverse=body.get("SortOrder", "Descending") == "Descending"
    )
    page, more = _page(steps, body)
    return {"PipelineExecutionSteps": page, **more}


def _step_summary(step: StepRun) -> dict[str, Any]:
    return _trim(
        {
            "StepName": step.name,
            "StepDisplayName": step.spec.display_name,
            "StepDescription": step.spec.description,
            "StartTime": step.start_time,
            "EndTime": step.end_time,
            "StepStatus": step.status,
            "FailureReason": step.failure_reason,
            "Metadata": {kind: dict(value) for kind, value in step.metadata.items()},
            "AttemptCount": 1,
        }
    )


def stop_pipeline_execution(backend: PipelinesBackend, body: dict[str, Any]) -> dict[str, Any]:
    execution = backend.stop_execution(_required(body, "PipelineExecutionArn"))
    return {"PipelineExecutionArn": execution.arn}


def describe_pipeline_definition_for_execution(
    backend: PipelinesBackend, body: dict[str, Any]
) -> dict[str, Any]:
    e = backend.get_execution(_required(body, "PipelineExecutionArn"))
    return {"PipelineDefinition": e.definition_text, "CreationTime": e.creation_time}


def send_pipeline_execution_step_success(
    backend: PipelinesBackend, body: dict[str, Any]
) -> dict[str, Any]:
    arn = backend.send_step_success(
        str(_required(body, "CallbackToken")),
        body.get("OutputParameters") or [],
        body.get("ClientRequestToken"),
    )
    return {"PipelineExecutionArn": arn}


def send_pipeline_execution_step_failure(
    backend: PipelinesBackend, body: dict[str, Any]
) -> dict[str, Any]:
    arn = backend.send_step_failure(
        str(_required(body, "CallbackToken")),
        body.get("FailureReason"),
        body.get("ClientRequestToken"),
    )
    return {"PipelineExecutionArn": arn}


def _trim(data: dict[str, Any]) -> dict[str, Any]:
    """Drop the members that have no value: AWS leaves them out rather than sending null."""
    return {k: v for k, v in data.items() if v is not None and v != {}}


OPERATIONS: dict[str, Handler] = {
    "CreatePipeline": create_pipeline,
    "UpdatePipeline": update_pipeline,
    "DescribePipeline": describe_pipeline,
    "DeletePipeline": delete_pipeline,
    "ListPipelines": list_pipelines,
    "StartPipelineExecution": start_pipeline_execution,
    "DescribePipelineExecution": describe_pipeline_execution,
    "ListPipelineExecutions": list_pipeline_executions,
    "ListPipelineExecutionSteps": list_pipeline_execution_steps,
    "StopPipelineExecution": stop_pipeline_execution,
    "DescribePipelineDefinitionForExecution": describe_pipeline_definition_for_execution,
    "SendPipelineExecutionStepSuccess": send_pipeline_execution_step_success,
    "SendPipelineExecutionStepFailure": send_pipeline_execution_step_failure,
}
