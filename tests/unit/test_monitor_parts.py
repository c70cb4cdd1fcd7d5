"""The monitor's small parts: job snapshots, retries, idempotency tokens, JSON logs."""

from __future__ import annotations

import json
import logging
import re

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lambdas.contracts import CallbackMessage
from lambdas.logs import JsonFormatter
from lambdas.monitor.act import (
    CALLBACK_REFUSED_CODES,
    CallbackRefused,
    client_request_token,
    queue_url,
    send_failure,
)
from lambdas.monitor.model import JobSnapshot
from lambdas.retry import NO_WAIT_RETRY, is_transient


def error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


def test_snapshot_reads_exit_code_and_reasons_from_a_batch_job_detail() -> None:
    detail = {
        "jobId": "id-1",
        "jobName": "copy-03",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "container": {"exitCode": 1, "reason": "OutOfMemoryError: Container killed"},
    }
    snapshot = JobSnapshot.from_description(detail)
    assert (snapshot.name, snapshot.exit_code) == ("copy-03", 1)
    assert snapshot.container_reason == "OutOfMemoryError: Container killed"
    assert snapshot.outcome == "FAILED" and not snapshot.unfinished


def test_snapshot_falls_back_to_the_last_attempt() -> None:
    detail = {
        "jobId": "id-1",
        "jobName": "n",
        "status": "FAILED",
        "attempts": [{"container": {"exitCode": 2}}, {"container": {"exitCode": 137}}],
    }
    assert JobSnapshot.from_description(detail).exit_code == 137


def test_array_parent_is_judged_by_its_status_summary() -> None:
    def parent(status: str, **summary: int) -> JobSnapshot:
        return JobSnapshot.from_description(
            {
                "jobId": "p",
                "jobName": "n",
                "status": status,
                "arrayProperties": {"size": 4, "statusSummary": summary},
            }
        )

    assert parent("PENDING", RUNNING=2, SUCCEEDED=2).outcome == "PENDING"
    assert parent("PENDING", RUNNING=2, SUCCEEDED=1, FAILED=1).outcome == "FAILED"
    assert parent("PENDING", SUCCEEDED=4).outcome == "SUCCEEDED"
    assert parent("PENDING", SUCCEEDED=4).unfinished  # Batch has not closed the parent yet


def test_array_child_is_not_mistaken_for_a_parent() -> None:
    child = JobSnapshot.from_description(
        {"jobId": "p:3", "jobName": "n", "status": "RUNNING", "arrayProperties": {"index": 3}}
    )
    assert not child.is_array_parent


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (error("ThrottlingException", 400), True),
        (error("TooManyRequestsException", 429), True),
        (error("InternalFailure", 500), True),
        (error("Whatever", 503), True),
        (error("ClientException", 400), False),
        (error("ValidationException", 400), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ValueError("bug"), False),
    ],
)
def test_what_counts_as_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_retry_is_bounded_and_reraises_the_last_error() -> None:
    calls = []

    def always_throttled() -> None:
        calls.append(1)
        raise error("ThrottlingException", 400)

    with pytest.raises(ClientError):
        NO_WAIT_RETRY.call(always_throttled)
    assert len(calls) == NO_WAIT_RETRY.attempts == 5


def test_retry_does_not_repeat_a_permanent_error() -> None:
    calls = []

    def bad_request() -> None:
        calls.append(1)
        raise error("ClientException", 400)

    with pytest.raises(ClientError):
        NO_WAIT_RETRY.call(bad_request)
    assert len(calls) == 1


def test_client_request_token_is_stable_per_callback_and_fits_sagemaker() -> None:
    token = client_request_token("Zx8Jq2Lm0P")
    assert token == client_request_token("Zx8Jq2Lm0P")
    assert token != client_request_token("Zx8Jq2Lm0Q")
    assert 32 <= len(token) <= 128


@pytest.mark.parametrize(
    "operation", ["SendPipelineExecutionStepSuccess", "SendPipelineExecutionStepFailure"]
)
@pytest.mark.parametrize("callback_token", ["Zx8Jq2Lm0P", "0000000000", "zzzzzzzzzz"])
def test_client_request_token_meets_botocores_sagemaker_model(
    operation: str, callback_token: str
) -> None:
    # botocore checks only a string's minimum length client-side; SageMaker enforces the
    # rest, so check every constraint the model declares here.
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape.members["ClientRequestToken"]
    token = client_request_token(callback_token)
    assert shape.metadata["min"] <= len(token) <= shape.metadata["max"]
    if "pattern" in shape.metadata:
        assert re.fullmatch(shape.metadata["pattern"], token)


def test_refusals_include_sagemakers_documented_errors() -> None:
    assert {"ResourceNotFound", "ConflictException"} <= CALLBACK_REFUSED_CODES


def test_json_formatter_puts_extra_fields_on_one_line() -> None:
    record = logging.makeLogRecord(
        {"name": "batchbridge.monitor", "levelname": "INFO", "msg": "decision", "decision": "WAIT"}
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["decision"] == "WAIT"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (
            "https://sqs.eu-west-1.amazonaws.com",
            "https://sqs.eu-west-1.amazonaws.com/111122223333/cb",
        ),
        ("http://127.0.0.1:4566", "http://127.0.0.1:4566/111122223333/cb"),
    ],
)
def test_queue_url_is_built_from_the_arn_on_the_clients_endpoint(endpoint: str, url: str) -> None:
    sqs = boto3.client(
        "sqs",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert queue_url(sqs, "arn:aws:sqs:eu-west-1:111122223333:cb") == url


def test_a_callback_botocore_rejects_before_sending_is_refused_not_retried() -> None:
    # SageMaker's tokens are 10 characters; botocore checks the minimum length client-side
    # and raises ParamValidationError, which no retry can fix. (The endpoint is never reached.)
    sagemaker = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    message = CallbackMessage(token="short", pipeline_execution_arn="arn")
    with pytest.raises(CallbackRefused):
        send_failure(sagemaker, message, "reason", NO_WAIT_RETRY)
