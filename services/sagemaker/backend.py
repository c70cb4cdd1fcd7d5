"""Pipelines and their executions, in memory: plain Python arguments, typed errors.

The protocol layer (``api.py``) turns requests into these calls; :class:`Runner` executes.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.sagemaker.definition import DefinitionError, parse_definition, resolve_parameters
from services.sagemaker.errors import ResourceNotFound, ValidationException
from services.sagemaker.runner import TERMINAL, Execution, Runner, now

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Pipeline:
    name: str
    arn: str
    definition: str
    role_arn: str
    display_name: str | None = None
    description: str | None = None
    version_id: int = 1
    creation_time: datetime = field(default_factory=now)
    last_modified_time: datetime = field(default_factory=now)
    last_run_time: datetime | None = None
    parallelism: dict[str, Any] | None = None
    tags: list[dict[str, str]] = field(default_factory=list)


class PipelinesBackend:
    def __init__(
        self,
        region: str,
        account_id: str,
        runner: Runner,
        s3_client: Callable[[], Any] | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.runner = runner
        #: Reads definitions the SDK uploaded to S3 (PipelineDefinitionS3Location).
        self.s3_client = s3_client or _no_s3
        self._lock = threading.RLock()
        self.pipelines: dict[str, Pipeline] = {}
        self.executions: dict[str, Execution] = {}
        self._start_tokens: dict[tuple[str, str], str] = {}

    # --- pipelines ---------------------------------------------------------------------------

    def pipeline_arn(self, name: str) -> str:
        # SageMaker lower-cases the name in the ARN.
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:pipeline/{name.lower()}"

    def get_pipeline(self, name_or_arn: str) -> Pipeline:
        with self._lock:
            if name_or_arn in self.pipelines:
                return self.pipelines[name_or_arn]
            for pipeline in self.pipelines.values():
                if pipeline.arn == name_or_arn:
                    return pipeline
        raise ResourceNotFound(f"Pipeline '{self.pipeline_arn(name_or_arn)}' does not exist.")

    def create_pipeline(
        self,
        name: str,
        definition: str,
        role_arn: str,
        display_name: str | None = None,
        description: str | None = None,
        parallelism: dict[str, Any] | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> Pipeline:
        _validate(definition)
        with self._lock:
            if name in self.pipelines:
                # The sagemaker SDK's upsert() looks for exactly this code and phrase.
                raise ValidationException(
                    f"Pipeline names must be unique within an AWS account and region. "
                    f"Pipeline with name ({name}) already exists."
                )
            pipeline = Pipeline(
                name=name,
                arn=self.pipeline_arn(name),
                definition=definition,
                role_arn=role_arn,
                display_name=display_name or name,
                description=description,
                parallelism=parallelism,
                tags=list(tags or []),
            )
            self.pipelines[name] = pipeline
            return pipeline

    def update_pipeline(
        self,
        name: str,
        definition: str | None = None,
        role_arn: str | None = None,
        display_name: str | None = None,
        description: str | None = None,
        parallelism: dict[str, Any] | None = None,
    ) -> Pipeline:
        if definition is not None:
            _validate(definition)
        with self._lock:
            pipeline = self.get_pipeline(name)
            if definition is not None:
                pipeline.definition = definition
            pipeline.role_arn = role_arn or pipeline.role_arn
            pipeline.display_name = display_name or pipeline.display_name
            pipeline.description = description if description is not None else pipeline.description
            pipeline.parallelism = parallelism or pipeline.parallelism
            pipeline.version_id += 1
            pipeline.last_modified_time = now()
            return pipeline

    def delete_pipeline(self, name: str) -> Pipeline:
        with self._lock:
            pipeline = self.get_pipeline(name)
            del self.pipelines[pipeline.name]
            return pipeline

    def list_pipelines(self, prefix: str | None = None) -> list[Pipeline]:
        with self._lock:
            return [p for p in self.pipelines.values() if not prefix or p.name.startswith(prefix)]

    # --- executions --------------------------------------------------------------------------

    def start_execution(
        self,
        pipeline_name: str,
        parameters: list[dict[str, Any]],
        client_request_token: str | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> Execution:
        with self._lock:
            pipeline = self.get_pipeline(pipeline_name)
            if client_request_token:
                earlier = self._start_tokens.get((pipeline.name, client_request_token))
                if earlier is not None:
                    return self.executions[earlier]  # a retried request starts nothing new
            definition = parse_definition(pipeline.definition)
            try:
                values = resolve_parameters(definition, parameters)
            except DefinitionError as exc:
                raise ValidationException(str(exc)) from exc
            execution_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
            execution = Execution(
                arn=f"{pipeline.arn}/execution/{execution_id}",
                pipeline_arn=pipeline.arn,
                pipeline_name=pipeline.name,
                definition_text=pipeline.definition,
                definition=definition,
                parameters=values,
                display_name=display_name or f"execution-{execution_id}",
                description=description,
                pipeline_version_id=pipeline.version_id,
            )
            self.executions[execution.arn] = execution
            if client_request_token:
                self._start_tokens[(pipeline.name, client_request_token)] = execution.arn
            pipeline.last_run_time = execution.creation_time
        self.runner.start(execution)
        return execution

    def get_execution(self, arn: str) -> Execution:
        with self._lock:
            execution = self.executions.get(arn)
        if execution is None:
            raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
        return execution

    def list_executions(self, pipeline_name: str) -> list[Execution]:
        pipeline = self.get_pipeline(pipeline_name)
        with self._lock:
            return [e for e in self.executions.values() if e.pipeline_arn == pipeline.arn]

    def stop_execution(self, arn: str) -> Execution:
        execution = self.get_execution(arn)
        self.runner.stop(execution)
        return execution

    def send_step_success(
        self, token: str, outputs: list[dict[str, Any]], client_request_token: str | None
    ) -> str:
        _check_token(token)
        if len(outputs) > 50:
            raise ValidationException("OutputParameters has at most 50 members.")
        values = {str(o["Name"]): str(o["Value"]) for o in outputs}
        return self.runner.answer(
            token, True, outputs=values, client_request_token=client_request_token
        )

    def send_step_failure(
        self, token: str, reason: str | None, client_request_token: str | None
    ) -> str:
        _check_token(token)
        if reason is not None and len(reason) > 256:
            raise ValidationException(
                f"FailureReason is {len(reason)} characters long; SageMaker accepts at most 256."
            )
        return self.runner.answer(
            token, False, reason=reason, client_request_token=client_request_token
        )

    def running(self) -> int:
        with self._lock:
            return sum(1 for e in self.executions.values() if e.status not in TERMINAL)


def _no_s3() -> Any:
    raise ValidationException("PipelineDefinitionS3Location is not available here")


def _validate(definition: str) -> None:
    try:
        parse_definition(definition)
    except DefinitionError as exc:
        raise ValidationException(f"Invalid PipelineDefinition: {exc}") from exc


def _check_token(token: str) -> None:
    if len(token) != 10 or not token.isalnum():
        raise ValidationException(
            f"1 validation error detected: Value '{token}' at 'callbackToken' failed to satisfy "
            "constraint: a callback token is 10 letters and digits."
        )
