"""Helpers for the functional tests: the handlers in-process against moto's ``mock_aws``.

moto serves Batch and SQS. It has no SendPipelineExecutionStep{Success,Failure}, so SageMaker
is a recording fake that validates each call against botocore's model. Batch jobs in moto
(without Docker) go straight to SUCCEEDED; :meth:`World.set_job` moves a job to any state.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto.batch.models import batch_backends
from moto.core import DEFAULT_ACCOUNT_ID

from lambdas.aws import Clients
from lambdas.monitor.handler import Runtime
from lambdas.retry import NO_WAIT_RETRY
from lambdas.settings import Settings

REGION = "us-east-1"
EVENTS = Path(__file__).parent / "events"
TOKEN = "Zx8Jq2Lm0P"
EXECUTION_ARN = (
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/batchbridge-demo/execution/4q9w8e7r6t5y"
)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class Recorder:
    """Wraps a boto3 client: records every call and can fail the next N calls of an operation."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, list[ClientError]] = {}
        self._lock = threading.Lock()

    def fail_next(
        self, method: str, count: int, code: str = "ThrottlingException", status: int = 400
    ) -> None:
        self.faults.setdefault(method, []).extend(
            client_error(code, status, method) for _ in range(count)
        )

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target) or name.startswith("_") or name in ("meta", "exceptions"):
            return target

        def call(**kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((name, kwargs))
                pending = self.faults.get(name)
                fault = pending.pop(0) if pending else None
            if fault is not None:
                raise fault
            return target(**kwargs)

        return call


class FakeSageMaker:
    """The two callback operations, checked against botocore's SageMaker model."""

    def __init__(self) -> None:
        model = botocore.session.get_session().get_service_model("sagemaker")
        self._shapes = {
            op: model.operation_model(op).input_shape
            for op in ("SendPipelineExecutionStepSuccess", "SendPipelineExecutionStepFailure")
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[ClientError] = []
        #: Tokens whose step is finished; a callback for them is refused as SageMaker does.
        self.finished: set[str] = set()

    def _call(self, op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        report = ParamValidator().validate(kwargs, self._shapes[op])
        assert not report.has_errors(), report.generate_report()
        self.calls.append((op, kwargs))
        if self.faults:
            raise self.faults.pop(0)
        if kwargs["CallbackToken"] in self.finished:
            raise client_error("ValidationException", 400, op)
        self.finished.add(kwargs["CallbackToken"])
        return {"PipelineExecutionArn": EXECUTION_ARN}

    def send_pipeline_execution_step_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendPipelineExecutionStepSuccess", kwargs)

    def send_pipeline_execution_step_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendPipelineExecutionStepFailure", kwargs)

    @property
    def successes(self) -> list[dict[str, Any]]:
        return [k for op, k in self.calls if op == "SendPipelineExecutionStepSuccess"]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [k for op, k in self.calls if op == "SendPipelineExecutionStepFailure"]


@dataclass
class World:
    batch: Recorder
    sqs: Recorder
    sagemaker: FakeSageMaker
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    job_queue: str = "batchbridge-queue"
    job_definition: str = "batchbridge-job"
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] | None = None

    def runtime(self, **overrides: Any) -> Runtime:
        kwargs: dict[str, Any] = {
            "clients": Clients(batch=self.batch, sqs=self.sqs, sagemaker=self.sagemaker),  # type: ignore[arg-type]
            "settings": self.settings,
            "uniform": lambda low, high: high,
            "retry": NO_WAIT_RETRY,
        }
        if self.clock is not None:
            kwargs["clock"] = self.clock
        kwargs.update(overrides)
        return Runtime(**kwargs)

    def submit(self, count: int, *, name: str = "job", array_size: int | None = None) -> list[str]:
        ids = []
        for i in range(count):
            kwargs: dict[str, Any] = {
                "jobName": f"{name}-{i:02d}",
                "jobQueue": self.job_queue,
                "jobDefinition": self.job_definition,
            }
            if array_size:
                kwargs["arrayProperties"] = {"size": array_size}
            ids.append(self.batch._inner.submit_job(**kwargs)["jobId"])
        return ids

    def set_job(
        self, job_id: str, status: str, *, exit_code: int | None = None, reason: str | None = None
    ) -> None:
        """Put a moto job in ``status``; a stopped job gets an exit code and a reason."""
        job = batch_backends[DEFAULT_ACCOUNT_ID][REGION]._jobs[job_id]
        job.status = status
        job.job_stopped = status in ("SUCCEEDED", "FAILED")
        job.exit_code = exit_code
        job.job_stopped_reason = reason
        if exit_code is not None:
            # moto's DescribeJobs drops container.exitCode; AWS also reports it per attempt.
            job.attempts = [{"container": {"exitCode": exit_code}}]

    def terminated(self, job_id: str) -> bool:
        return bool(batch_backends[DEFAULT_ACCOUNT_ID][REGION]._jobs[job_id].stop)

    def send_callback(
        self, job_ids: list[str], *, status: str = "Executing", token: str = TOKEN
    ) -> None:
        body = {
            "token": token,
            "pipelineExecutionArn": EXECUTION_ARN,
            "arguments": {"job_ids": " ".join(job_ids)},
            "status": status,
        }
        self.sqs._inner.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def send_raw(self, body: str) -> None:
        self.sqs._inner.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def receive_event(self, *, queue: str = "source", expect: int = 1) -> dict[str, Any]:
        """Receive like the event source mapping does and shape the records as Lambda gets them."""
        url, arn = (
            (self.queue_url, self.queue_arn) if queue == "source" else (self.dlq_url, self.dlq_arn)
        )
        template = load_event("sqs_callback.json")["Records"][0]
        records = []
        while len(records) < expect:
            response = self.sqs._inner.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = response.get("Messages", [])
            assert got, f"expected {expect} messages on the {queue} queue, got {len(records)}"
            for message in got:
                record = copy.deepcopy(template)
                record.update(
                    messageId=message["MessageId"],
                    receiptHandle=message["ReceiptHandle"],
                    body=message["Body"],
                    md5OfBody=message["MD5OfBody"],
                    eventSourceARN=arn,
                    attributes={
                        k: message["Attributes"][k]
                        for k in (
                            "ApproximateReceiveCount",
                            "SentTimestamp",
                            "SenderId",
                            "ApproximateFirstReceiveTimestamp",
                        )
                    },
                )
                records.append(record)
        return {"Records": records}

    def visible_messages(self, queue: str = "source") -> int:
        url = self.queue_url if queue == "source" else self.dlq_url
        response = self.sqs._inner.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        return len(response.get("Messages", []))
