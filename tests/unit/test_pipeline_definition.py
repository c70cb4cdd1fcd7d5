"""The pipeline definition: SubmitJobs (Lambda) feeds WaitForJobs (Callback), built offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lambdas.contracts import (
    JOB_IDS_ARGUMENT,
    OUTPUT_JOB_COUNT,
    OUTPUT_JOB_STATUS,
    OUTPUT_SUCCEEDED_COUNT,
)
from pipeline import sdk as sdk_module
from pipeline.definition import SUBMIT_STEP, WAIT_STEP, build_pipeline

pytestmark = pytest.mark.filterwarnings("ignore:Lambda function won.t be updated")

ARN = "arn:aws:lambda:us-east-1:123456789012:function:bb-submitter"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/bb-callbacks"
REPO = Path(__file__).resolve().parents[2]


def _definition(**kwargs: Any) -> dict[str, Any]:
    pipeline = build_pipeline("bb", submitter_function_arn=ARN, callback_queue_url=QUEUE, **kwargs)
    return json.loads(pipeline.definition())


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step in definition["Steps"]}


def test_submit_step_runs_the_submitter_with_the_tutorial_inputs() -> None:
    definition = _definition()
    submit = _steps(definition)[SUBMIT_STEP]
    assert submit["Type"] == "Lambda"
    assert submit["FunctionArn"] == ARN
    assert submit["Arguments"] == {
        "input_uri": {"Get": "Parameters.InputUri"},
        "output_uri": {"Get": "Parameters.OutputUri"},
        "max_jobs": {"Get": "Parameters.MaxJobs"},
        "execution_id": {"Get": "Execution.PipelineExecutionId"},
    }
    assert [o["OutputName"] for o in submit["OutputParameters"]] == ["jobIds", "jobCount"]
    names = {p["Name"]: p["Type"] for p in definition["Parameters"]}
    assert names == {"InputUri": "String", "OutputUri": "String", "MaxJobs": "Integer"}


def test_wait_step_takes_job_ids_from_the_submit_steps_output() -> None:
    wait = _steps(_definition())[WAIT_STEP]
    assert wait["Type"] == "Callback"
    assert wait["SqsQueueUrl"] == QUEUE
    assert wait["Arguments"] == {
        JOB_IDS_ARGUMENT: {"Get": f"Steps.{SUBMIT_STEP}.OutputParameters['jobIds']"}
    }
    assert [o["OutputName"] for o in wait["OutputParameters"]] == [
        OUTPUT_JOB_STATUS,
        OUTPUT_JOB_COUNT,
        OUTPUT_SUCCEEDED_COUNT,
    ]


def test_job_queue_and_definition_become_parameters_only_when_given() -> None:
    definition = _definition(job_queue="my-queue", job_definition="my-def", array_size=10)
    submit = _steps(definition)[SUBMIT_STEP]
    assert submit["Arguments"]["job_queue"] == {"Get": "Parameters.JobQueue"}
    assert submit["Arguments"]["job_definition"] == {"Get": "Parameters.JobDefinition"}
    assert submit["Arguments"]["array_size"] == {"Get": "Parameters.ArraySize"}
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["JobQueue"] == "my-queue"
    assert defaults["ArraySize"] == 10


def test_unknown_default_is_refused() -> None:
    with pytest.raises(ValueError, match="InputUrl"):
        _definition(defaults={"InputUrl": "s3://x/y"})


def test_users_steps_run_before_and_after() -> None:
    sdk = sdk_module.load()
    session = sdk_module.offline_session(sdk)

    def user_step(name: str) -> Any:
        function = sdk.Lambda(function_arn=ARN.replace("submitter", name), session=session)
        return sdk.LambdaStep(name=name, lambda_func=function)

    before, after = user_step("Prepare"), user_step("Report")
    steps = _steps(_definition(steps_before=[before], steps_after=[after], session=session))
    assert list(steps) == ["Prepare", SUBMIT_STEP, WAIT_STEP, "Report"]
    assert steps[SUBMIT_STEP]["DependsOn"] == ["Prepare"]
    assert steps["Report"]["DependsOn"] == [WAIT_STEP]


def test_module_prints_the_definition_without_credentials_or_network(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") or k == "AWS_EC2_METADATA_DISABLED"
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        # Any proxy use would fail fast: there is no network to reach.
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--submitter-arn", ARN, "--queue-url", QUEUE],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    definition = json.loads(result.stdout)
    assert list(_steps(definition)) == [SUBMIT_STEP, WAIT_STEP]


def test_v3_sdk_builds_the_same_steps() -> None:
    try:
        sdk = sdk_module.load(3)
    except ImportError as exc:
        pytest.skip(f"sagemaker v3 is not installed here (pyproject pins v2): {exc}")
    steps = _steps(_definition(sdk=sdk))
    assert steps[WAIT_STEP]["Arguments"][JOB_IDS_ARGUMENT] == {
        "Get": f"Steps.{SUBMIT_STEP}.OutputParameters['jobIds']"
    }
