"""The SageMaker Pipeline that runs AWS Batch jobs: SubmitJobs (Lambda) → WaitForJobs (Callback).

    pipeline = build_pipeline(
        "my-pipeline",
        submitter_function_arn=outputs["SubmitterFunctionArn"],
        callback_queue_url=outputs["CallbackQueueUrl"],
    )
    pipeline.upsert(role_arn=outputs["PipelineRoleArn"])

The user's own steps go in ``steps_before`` (SubmitJobs waits for them) and ``steps_after``
(they wait for WaitForJobs and can read its outputs via ``wait_step(pipeline)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.contracts import (
    JOB_IDS_ARGUMENT,
    OUTPUT_JOB_COUNT,
    OUTPUT_JOB_STATUS,
    OUTPUT_SUCCEEDED_COUNT,
)
from pipeline.sdk import Sdk, load, offline_session

SUBMIT_STEP = "SubmitJobs"
WAIT_STEP = "WaitForJobs"

#: The submitter's output keys (see lambdas.contracts.SubmitterResult).
SUBMITTER_JOB_IDS = "jobIds"
SUBMITTER_JOB_COUNT = "jobCount"

#: Pipeline parameter name → (submitter input, default). The tutorial's three inputs; the
#: job queue and definition default to the ones the deployed submitter was configured with.
TUTORIAL_PARAMETERS: dict[str, tuple[str, Any]] = {
    "InputUri": ("input_uri", "s3://batchbridge-demo/input"),
    "OutputUri": ("output_uri", "s3://batchbridge-demo/output"),
    "MaxJobs": ("max_jobs", 1),
}


def build_pipeline(
    name: str,
    *,
    submitter_function_arn: str,
    callback_queue_url: str,
    session: Any = None,
    steps_before: Sequence[Any] = (),
    steps_after: Sequence[Any] = (),
    job_queue: str | None = None,
    job_definition: str | None = None,
    array_size: int | None = None,
    defaults: Mapping[str, Any] | None = None,
    extra_inputs: Mapping[str, Any] | None = None,
    sdk: Sdk | None = None,
) -> Any:
    """Build (not create) the pipeline; nothing here calls AWS.

    ``job_queue``/``job_definition``/``array_size``, when given, become pipeline parameters
    (JobQueue, JobDefinition, ArraySize) with that default; otherwise the submitter uses the
    defaults the stack configured it with. ``defaults`` overrides the default values of
    InputUri, OutputUri and MaxJobs. ``extra_inputs`` are passed to the submitter as they are.
    """
    sdk = sdk or load()
    session = session or offline_session(sdk)
    parameters, inputs = _parameters(sdk, job_queue, job_definition, array_size, defaults)
    inputs["execution_id"] = sdk.ExecutionVariables.PIPELINE_EXECUTION_ID
    inputs.update(extra_inputs or {})

    submit = sdk.LambdaStep(
        name=SUBMIT_STEP,
        lambda_func=sdk.Lambda(function_arn=submitter_function_arn, session=session),
        inputs=inputs,
        outputs=[
            sdk.LambdaOutput(output_name=SUBMITTER_JOB_IDS, output_type=_string(sdk, "Lambda")),
            sdk.LambdaOutput(output_name=SUBMITTER_JOB_COUNT, output_type=_string(sdk, "Lambda")),
        ],
        depends_on=list(steps_before) or None,
    )
    wait = sdk.CallbackStep(
        name=WAIT_STEP,
        sqs_queue_url=callback_queue_url,
        inputs={JOB_IDS_ARGUMENT: submit.properties.Outputs[SUBMITTER_JOB_IDS]},
        outputs=[
            sdk.CallbackOutput(output_name=name, output_type=_string(sdk, "Callback"))
            for name in (OUTPUT_JOB_STATUS, OUTPUT_JOB_COUNT, OUTPUT_SUCCEEDED_COUNT)
        ],
    )
    for step in steps_after:
        step.add_depends_on([wait])
    return sdk.Pipeline(
        name=name,
        parameters=parameters,
        steps=[*steps_before, submit, wait, *steps_after],
        sagemaker_session=session,
        # No SageMaker Experiments tracking: batchbridge's steps produce no trials worth
        # recording, and the pipeline role then needs no sagemaker:CreateExperiment/Trial.
        pipeline_experiment_config=None,
    )


def _string(sdk: Sdk, kind: str) -> Any:
    return getattr(sdk, f"{kind}OutputTypeEnum").String


def _parameters(
    sdk: Sdk,
    job_queue: str | None,
    job_definition: str | None,
    array_size: int | None,
    defaults: Mapping[str, Any] | None,
) -> tuple[list[Any], dict[str, Any]]:
    chosen = {name: default for name, (_, default) in TUTORIAL_PARAMETERS.items()}
    unknown = set(defaults or {}) - set(chosen)
    if unknown:
        raise ValueError(
            f"unknown pipeline parameter(s) {sorted(unknown)}; defaults can be given for "
            f"{sorted(chosen)}"
        )
    chosen.update(defaults or {})
    parameters: list[Any] = []
    inputs: dict[str, Any] = {}
    optional = {
        "JobQueue": ("job_queue", job_queue),
        "JobDefinition": ("job_definition", job_definition),
        "ArraySize": ("array_size", array_size),
    }
    specs = [(n, TUTORIAL_PARAMETERS[n][0], chosen[n]) for n in TUTORIAL_PARAMETERS]
    specs += [(n, key, value) for n, (key, value) in optional.items() if value is not None]
    for param_name, input_name, default in specs:
        kind = sdk.ParameterInteger if isinstance(default, int) else sdk.ParameterString
        parameter = kind(name=param_name, default_value=default)
        parameters.append(parameter)
        inputs[input_name] = parameter
    return parameters, inputs


def wait_step(pipeline: Any) -> Any:
    """The WaitForJobs step of a built pipeline (to read ``properties.Outputs[...]``)."""
    return next(step for step in pipeline.steps if step.name == WAIT_STEP)
