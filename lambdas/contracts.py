"""The wire contracts batchbridge's pieces share, declared once.

Everything here is plain data: the callback message SageMaker puts on the queue, the Batch
job status vocabulary, the submitter's output and the SQS event shapes. ``pipeline/``,
``services/`` and the tests import these names instead of spelling the strings again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, NotRequired, TypedDict

# --- Batch job status vocabulary -------------------------------------------------------------

SUBMITTED: Final = "SUBMITTED"
PENDING: Final = "PENDING"
RUNNABLE: Final = "RUNNABLE"
STARTING: Final = "STARTING"
RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"

#: The order AWS Batch moves a job through; a status not listed is treated as in progress.
JOB_STATUSES: Final[tuple[str, ...]] = (
    SUBMITTED,
    PENDING,
    RUNNABLE,
    STARTING,
    RUNNING,
    SUCCEEDED,
    FAILED,
)
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({SUCCEEDED, FAILED})


def is_terminal(status: str) -> bool:
    """True for SUCCEEDED and FAILED; any other status, even one never seen, is in progress."""
    return status in TERMINAL_STATUSES


# --- The callback message (what a SageMaker CallbackStep puts on its SQS queue) -------------

#: ``status`` values SageMaker sends. A stop of the execution sends a second message
#: with ``Stopping`` for the same token.
CALLBACK_STATUS_EXECUTING: Final = "Executing"
CALLBACK_STATUS_STOPPING: Final = "Stopping"

#: The CallbackStep input that carries the submitted job ids, space separated.
JOB_IDS_ARGUMENT: Final = "job_ids"

#: Output parameters the monitor sends on success (values are strings, as SageMaker requires).
OUTPUT_JOB_STATUS: Final = "job_status"
OUTPUT_JOB_STATUS_COMPLETED: Final = "Completed"
OUTPUT_JOB_COUNT: Final = "job_count"
OUTPUT_SUCCEEDED_COUNT: Final = "succeeded_count"


class MessageParseError(ValueError):
    """A callback message that cannot be understood; it can never succeed, so it is poison."""


@dataclass(frozen=True)
class CallbackMessage:
    """A parsed, validated callback message."""

    token: str
    pipeline_execution_arn: str
    arguments: dict[str, str] = field(default_factory=dict)
    status: str = CALLBACK_STATUS_EXECUTING

    @property
    def job_ids(self) -> tuple[str, ...]:
        """The job ids to watch, in order, duplicates removed."""
        return split_job_ids(self.arguments.get(JOB_IDS_ARGUMENT, ""))

    @property
    def stopping(self) -> bool:
        return self.status.lower() == CALLBACK_STATUS_STOPPING.lower()

    def to_json(self) -> str:
        return json.dumps(
            {
                "token": self.token,
                "pipelineExecutionArn": self.pipeline_execution_arn,
                "arguments": self.arguments,
                "status": self.status,
            }
        )


def split_job_ids(value: str) -> tuple[str, ...]:
    """Split the space-separated ``job_ids`` string, dropping blanks and repeats."""
    return tuple(dict.fromkeys(part for part in value.split() if part))


def join_job_ids(job_ids: list[str] | tuple[str, ...]) -> str:
    return " ".join(job_ids)


def parse_callback_message(body: str) -> CallbackMessage:
    """Parse an SQS body into a :class:`CallbackMessage` or raise :class:`MessageParseError`."""
    try:
        data: Any = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MessageParseError(f"body is not JSON ({exc}); first 80 chars: {body[:80]!r}") from exc
    if not isinstance(data, dict):
        raise MessageParseError(f"body is JSON {type(data).__name__}, expected an object")
    token = data.get("token")
    if not isinstance(token, str) or not token.strip():
        raise MessageParseError("body has no 'token': it is not a SageMaker callback message")
    arn = data.get("pipelineExecutionArn", "")
    if not isinstance(arn, str):
        raise MessageParseError("'pipelineExecutionArn' must be a string")
    raw_args = data.get("arguments", {})
    if raw_args is None:
        raw_args = {}
    if not isinstance(raw_args, dict):
        raise MessageParseError(f"'arguments' must be an object, got {type(raw_args).__name__}")
    arguments = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw_args.items()}
    # The CallbackStep guide's example spells "status"; StopPipelineExecution's API reference
    # says the stop message has a "Status" field. Read either, so a stop is never missed.
    status = data.get("status") or data.get("Status") or CALLBACK_STATUS_EXECUTING
    if not isinstance(status, str):
        raise MessageParseError("'status' must be a string")
    return CallbackMessage(
        token=token.strip(), pipeline_execution_arn=arn, arguments=arguments, status=status
    )


# --- Submitter output --------------------------------------------------------------------


class SubmitterResult(TypedDict):
    statusCode: int
    jobIds: str
    jobCount: str


# --- SQS event and partial batch response (as AWS Lambda delivers and expects them) -------


class SQSRecordAttributes(TypedDict, total=False):
    ApproximateReceiveCount: str
    SentTimestamp: str
    SenderId: str
    ApproximateFirstReceiveTimestamp: str


class SQSRecord(TypedDict):
    messageId: str
    receiptHandle: str
    body: str
    attributes: SQSRecordAttributes
    messageAttributes: dict[str, Any]
    md5OfBody: str
    eventSource: str
    eventSourceARN: str
    awsRegion: str


class SQSEvent(TypedDict):
    Records: list[SQSRecord]


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]
    # Not part of AWS's contract; ignored by the event source mapping.
    decisions: NotRequired[list[dict[str, Any]]]


def queue_url_from_arn(arn: str, endpoint_url: str | None = None) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` → the queue URL (the local endpoint's if given)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    _, partition, _, region, account, name = parts
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{account}/{name}"
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"
