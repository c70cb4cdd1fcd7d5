"""Act: the monitor's side effects on SQS, SageMaker and Batch, each retried when transient."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError, ParamValidationError

from lambdas.contracts import CallbackMessage, queue_url_from_arn
from lambdas.retry import RetryPolicy, is_transient
from lambdas.settings import SQS_MAX_CHANGED_VISIBILITY_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sqs import SQSClient

#: How SageMaker refuses a callback whose step is already finished or whose token it does not
#: know. The API reference lists ResourceNotFound and ConflictException; a finished step has
#: been seen answering ValidationException. None of them can succeed on a retry.
CALLBACK_REFUSED_CODES: Final[frozenset[str]] = frozenset(
    {"ValidationException", "ResourceNotFound", "ConflictException"}
)


class CallbackRefused(Exception):
    """SageMaker will never accept this callback: the message is finished with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def client_request_token(callback_token: str) -> str:
    """Idempotency token derived from the callback token: one resolution per step, however
    many times SQS delivers the message (SageMaker wants 32-128 characters)."""
    return hashlib.sha256(f"batchbridge/{callback_token}".encode()).hexdigest()


def _refusal(exc: ClientError) -> CallbackRefused | None:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    if code in CALLBACK_REFUSED_CODES:
        return CallbackRefused(code, error.get("Message", ""))
    return None


def send_success(
    sagemaker: SageMakerClient,
    message: CallbackMessage,
    outputs: Mapping[str, str],
    retry: RetryPolicy,
) -> None:
    _answer(
        retry,
        sagemaker.send_pipeline_execution_step_success,
        message,
        OutputParameters=[{"Name": k, "Value": v} for k, v in outputs.items()],
    )


def send_failure(
    sagemaker: SageMakerClient, message: CallbackMessage, reason: str, retry: RetryPolicy
) -> None:
    _answer(retry, sagemaker.send_pipeline_execution_step_failure, message, FailureReason=reason)


def _answer(
    retry: RetryPolicy, call: Callable[..., object], message: CallbackMessage, **fields: Any
) -> None:
    """Answer the callback once: the ClientRequestToken derives from the callback token, so a
    duplicate delivery's second answer is the same request; a refusal becomes final."""
    try:
        retry.call(
            call,
            CallbackToken=message.token,
            ClientRequestToken=client_request_token(message.token),
            **fields,
        )
    except ClientError as exc:
        refused = _refusal(exc)
        if refused is None:
            raise
        raise refused from exc
    except ParamValidationError as exc:
        # botocore refuses before sending, e.g. a token shorter than SageMaker's 10 characters
        # (a message SageMaker never sent): no retry can fix it, so it must not loop.
        raise CallbackRefused("ParamValidationError", str(exc)) from exc


class OutOfTime(Exception):
    """The invocation is about to time out; the record comes back to finish the work."""


def terminate_jobs(
    batch: BatchClient,
    job_ids: tuple[str, ...],
    reason: str,
    retry: RetryPolicy,
    *,
    out_of_time: Callable[[], bool] = lambda: False,
) -> dict[str, str]:
    """TerminateJob each id; terminating an array parent terminates its children too.

    Returns ``{job_id: error code}`` for the jobs Batch refused to terminate (AccessDenied, a
    ClientException): asking again cannot help, and the step's answer must not wait on them.
    A transient error that outlasts the retries is raised, so the record comes back to finish.
    One call per job at Batch's 50 requests a second means thousands of jobs can outlast the
    invocation: when ``out_of_time()`` says so, :class:`OutOfTime` is raised; the jobs
    terminated so far are no longer unfinished on the next receive, which does the rest.
    """
    refused: dict[str, str] = {}
    for done, job_id in enumerate(job_ids):
        if out_of_time():
            raise OutOfTime(f"terminated {done} of {len(job_ids)} jobs before the Lambda timeout")
        try:
            retry.call(batch.terminate_job, jobId=job_id, reason=reason)
        except ClientError as exc:
            if is_transient(exc):
                raise
            refused[job_id] = exc.response.get("Error", {}).get("Code", "") or "ClientError"
    return refused


def change_visibility(
    sqs: SQSClient, url: str, receipt_handle: str, seconds: int, retry: RetryPolicy
) -> int:
    """Hide the message for ``seconds``, capped below SQS's 12-hour total (see
    :data:`SQS_MAX_CHANGED_VISIBILITY_SECONDS`); returns the seconds asked for."""
    seconds = min(seconds, SQS_MAX_CHANGED_VISIBILITY_SECONDS)
    retry.call(
        sqs.change_message_visibility,
        QueueUrl=url,
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=seconds,
    )
    return seconds


def send_to_dlq(sqs: SQSClient, dlq_url: str, body: str, why: str, retry: RetryPolicy) -> None:
    retry.call(
        sqs.send_message,
        QueueUrl=dlq_url,
        MessageBody=body or "(empty body)",
        MessageAttributes={
            "batchbridge-poison-reason": {"DataType": "String", "StringValue": why[:1024]}
        },
    )


# --- queue discovery (cached per container: queue URLs and redrive policies do not move) ----

_dlq_urls: dict[tuple[str, str], str | None] = {}
_is_dlq: dict[tuple[str, str], bool] = {}


def queue_url(sqs: SQSClient, queue_arn: str) -> str:
    """The URL of the queue ``arn:aws:sqs:REGION:ACCOUNT:NAME`` on this client's endpoint.

    Built from the ARN rather than asked with GetQueueUrl: the URL's form is fixed
    (``{endpoint}/{account}/{name}``, for AWS, LocalStack and moto alike) and the Lambda
    then needs no sqs:GetQueueUrl permission.
    """
    return queue_url_from_arn(queue_arn, sqs.meta.endpoint_url)


def dead_letter_queue_arn(sqs: SQSClient, source_url: str, retry: RetryPolicy) -> str | None:
    """The DLQ ARN from the source queue's RedrivePolicy, or None when it has none."""
    response = retry.call(
        sqs.get_queue_attributes, QueueUrl=source_url, AttributeNames=["RedrivePolicy"]
    )
    policy = response.get("Attributes", {}).get("RedrivePolicy")
    if not policy:
        return None
    target = json.loads(policy).get("deadLetterTargetArn")
    return str(target) if target else None


def dead_letter_queue_url(
    sqs: SQSClient, source_arn: str, configured: str | None, retry: RetryPolicy
) -> str | None:
    """BATCHBRIDGE_DLQ_URL if set, else discovered from the source queue's RedrivePolicy."""
    if configured:
        return configured
    key = (sqs.meta.endpoint_url, source_arn)
    if key not in _dlq_urls:
        target = dead_letter_queue_arn(sqs, queue_url(sqs, source_arn), retry)
        _dlq_urls[key] = queue_url(sqs, target) if target else None
    return _dlq_urls[key]


def is_dead_letter_queue(sqs: SQSClient, queue_arn: str, retry: RetryPolicy) -> bool:
    """True when some queue names this one as its DLQ (ListDeadLetterSourceQueues).

    This lets one function, subscribed to both queues, tell a DLQ record from a live one
    without configuration.
    """
    key = (sqs.meta.endpoint_url, queue_arn)
    if key not in _is_dlq:
        url = queue_url(sqs, queue_arn)
        response = retry.call(sqs.list_dead_letter_source_queues, QueueUrl=url, MaxResults=1)
        _is_dlq[key] = bool(response.get("queueUrls"))
    return _is_dlq[key]
