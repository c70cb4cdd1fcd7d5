"""batchbridge's local SageMaker Pipelines service: it executes pipeline definitions.

Layers: ``api`` (operation → backend call → JSON), ``backend`` (pipelines and executions),
``runner`` (the step state machine), ``definition`` and ``expressions`` (pure interpretation
of the definition JSON), ``actions`` (Lambda invokes and SQS sends through the endpoint).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from services.protocol import AwsError, json_body, json_response, unknown_operation
from services.sagemaker.api import OPERATIONS
from services.sagemaker.backend import PipelinesBackend
from services.sagemaker.runner import Runner

SERVICE = "sagemaker"


class SageMakerService:
    name = SERVICE

    def __init__(self, env: Any) -> None:
        self.env = env
        self.backend: PipelinesBackend | None = None

    def start(self) -> None:
        from services.sagemaker.actions import EndpointActions

        # The clients point at the endpoint, which is bound before services start.
        runner = Runner(EndpointActions(self.env))
        self.backend = PipelinesBackend(
            self.env.region, self.env.account_id, runner, s3_client=lambda: self.env.client("s3")
        )

    def stop(self) -> None:
        if self.backend is not None:
            self.backend.runner.shutdown()

    def handle(self, request: Request, operation: str | None) -> Response | None:
        handler = OPERATIONS.get(operation or "")
        try:
            if handler is None:
                raise unknown_operation(SERVICE, operation)
            if self.backend is None:
                raise AwsError("ServiceUnavailable", "the SageMaker service is starting", 503)
            return json_response(handler(self.backend, json_body(request)), service=SERVICE)
        except AwsError as err:
            return err.to_response(SERVICE)

    def control(self, request: Request, subpath: str) -> Response | None:
        return None

    def health(self) -> dict[str, Any]:
        if self.backend is None:
            return {"ready": False}
        return {
            "ready": True,
            "pipelines": len(self.backend.pipelines),
            "running_executions": self.backend.running(),
        }


def create(env: Any) -> SageMakerService:
    return SageMakerService(env)
