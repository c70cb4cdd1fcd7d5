"""What steps do outside the service: invoke a Lambda, send an SQS message.

Both go through boto3 clients at the environment's endpoint, so they reach batchbridge's
Lambda runtime and moto's SQS in the embedded environment, and LocalStack's in compose
proxy mode, the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.sagemaker.runner import StepFailed

#: A Lambda may run up to 15 minutes; botocore's default 60 s read timeout would cut it off.
LAMBDA_READ_TIMEOUT = 900


class EndpointActions:
    def __init__(self, env: Any) -> None:
        self.endpoint: str = env.endpoint
        self._lambda = env.client(
            "lambda",
            config=Config(
                read_timeout=LAMBDA_READ_TIMEOUT, retries={"max_attempts": 2, "mode": "standard"}
            ),
        )
        self._sqs = env.client("sqs")

    def invoke_lambda(self, function_arn: str, payload: dict[str, Any]) -> Any:
        with _fails_step(f"Lambda {function_arn} could not be invoked"):
            response = self._lambda.invoke(FunctionName=function_arn, Payload=json.dumps(payload))
            raw = response["Payload"].read()
        try:
            result = json.loads(raw) if raw else None
        except ValueError:
            result = raw.decode("utf-8", "replace")
        if response.get("FunctionError"):
            message = result.get("errorMessage") if isinstance(result, dict) else None
            raise StepFailed(str(message or result or response["FunctionError"]))
        return result

    def send_callback(self, queue_url: str, body: str) -> None:
        url = self.local_queue_url(queue_url)
        with _fails_step(f"could not send the callback message to {queue_url}"):
            self._sqs.send_message(QueueUrl=url, MessageBody=body)

    def local_queue_url(self, queue_url: str) -> str:
        """``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`` (a definition written for AWS)
        → the same queue, by account and name, on the local endpoint."""
        path = urlparse(queue_url).path.strip("/").split("/")
        if len(path) < 2:
            raise StepFailed(f"SqsQueueUrl {queue_url!r} is not a queue URL (…/ACCOUNT/NAME)")
        account, name = path[-2], path[-1]
        return f"{self.endpoint.rstrip('/')}/{account}/{name}"


@contextmanager
def _fails_step(what: str) -> Iterator[None]:
    """An AWS call whose failure fails the step, with the error's code and message."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StepFailed(f"{what}: {error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:
        raise StepFailed(f"{what}: {exc}") from exc
