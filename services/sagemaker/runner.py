"""Pipeline executions: the state of each step, and the rules that move it on.

An execution is event driven, not a thread that sleeps: :meth:`Runner._advance` runs when
an execution starts, when a step's work returns, when a callback is answered and when a stop
is asked for. Under one lock it decides which steps start (or end the execution); the slow
work (a Lambda invoke, an SQS send) runs on a bounded thread pool through :class:`StepActions`,
so a hundred executions waiting on callbacks cost no threads at all.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from lambdas.contracts import (
    CALLBACK_STATUS_EXECUTING,
    CALLBACK_STATUS_STOPPING,
    CallbackMessage,
)
from services.sagemaker.definition import SUPPORTED_STEP_TYPES, Definition, StepSpec
from services.sagemaker.errors import ConflictException, ResourceNotFound
from services.sagemaker.expressions import (
    ExpressionError,
    Scope,
    evaluate,
    evaluate_conditions,
    to_text,
)

log = logging.getLogger("batchbridge.sagemaker")

# Execution statuses (botocore's PipelineExecutionStatus) and step statuses (StepStatus).
EXECUTING, STOPPING, STOPPED, FAILED, SUCCEEDED = (
    "Executing",
    "Stopping",
    "Stopped",
    "Failed",
    "Succeeded",
)
TERMINAL = frozenset({STOPPED, FAILED, SUCCEEDED})
#: Internal only: a step on a branch not taken, or after one. Never listed.
SKIPPED = "Skipped"

STEP_FAILURE_REASON_MAX = 1024  # botocore: FailureReason
EXECUTION_FAILURE_REASON_MAX = 1300  # botocore: PipelineExecutionFailureReason
TOKEN_ALPHABET = string.ascii_letters + string.digits


class StepFailed(Exception):
    """A step's work failed; the message becomes the step's FailureReason."""


class StepActions(Protocol):
    """The side effects of steps; the service wires these to boto3 clients at the endpoint."""

    def invoke_lambda(self, function_arn: str, payload: dict[str, Any]) -> Any:
        """The function's JSON result; raise StepFailed with its errorMessage on an error."""

    def send_callback(self, queue_url: str, body: str) -> None:
        """Put a callback message on the step's queue; raise StepFailed when that fails."""


def now() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(10))


@dataclass
class StepRun:
    spec: StepSpec
    status: str | None = None  # None: not started yet
    start_time: datetime | None = None
    end_time: datetime | None = None
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    # Callback steps
    token: str | None = None
    message_sent: bool = False
    stop_message_sent: bool = False
    answered_with: str | None = None  # the ClientRequestToken of the answer, for idempotency
    arguments: Any = None  # resolved when the step started; a stop message repeats them

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def listed(self) -> bool:
        return self.status is not None and self.status != SKIPPED


@dataclass
class Execution:
    arn: str
    pipeline_arn: str
    pipeline_name: str
    definition_text: str
    definition: Definition
    parameters: dict[str, Any]
    display_name: str | None = None
    description: str | None = None
    pipeline_version_id: int = 1
    status: str = EXECUTING
    failure_reason: str | None = None
    creation_time: datetime = field(default_factory=now)
    last_modified_time: datetime = field(default_factory=now)
    steps: dict[str, StepRun] = field(default_factory=dict)
    #: Set when the execution ends; tests and the CLI can wait on it.
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    def scope(self) -> Scope:
        return Scope(
            parameters=self.parameters,
            execution={
                "PipelineExecutionId": self.execution_id,
                "PipelineExecutionArn": self.arn,
                "PipelineName": self.pipeline_name,
                "PipelineArn": self.pipeline_arn,
                "StartDateTime": _iso(self.creation_time),
                "CurrentDateTime": _iso(now()),
            },
            step_outputs={s.name: s.outputs for s in self.steps.values() if s.status == SUCCEEDED},
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


Work = Callable[[], None]


class Runner:
    """Runs executions; thread safe."""

    def __init__(self, actions: StepActions, max_workers: int = 64) -> None:
        self.actions = actions
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sm-step")
        self._tokens: dict[str, tuple[Execution, str]] = {}

    @property
    def lock(self) -> threading.RLock:
        """Held while execution state changes; hold it to read a consistent snapshot."""
        return self._lock

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- entry points ----------------------------------------------------------------------

    def start(self, execution: Execution) -> None:
        with self._lock:
            for spec in execution.definition.steps.values():
                execution.steps[spec.name] = StepRun(spec)
            unsupported = execution.definition.unsupported_steps()
            if unsupported:
                # Fail before anything runs: nothing could ever answer such a step locally.
                step = execution.steps[unsupported[0].name]
                reason = (
                    f"Step type {step.spec.type} (step {step.name!r}) is not supported by "
                    f"batchbridge's local SageMaker; it runs {', '.join(SUPPORTED_STEP_TYPES)} "
                    "steps. Run this pipeline on AWS, or replace the step."
                )
                self._finish_step(step, FAILED, reason)
                self._end(execution, FAILED, reason)
                return
            work = self._advance(execution)
        self._submit(work)

    def stop(self, execution: Execution) -> None:
        with self._lock:
            if execution.status in TERMINAL:
                raise ConflictException(
                    f"Pipeline execution {execution.arn} is already {execution.status}; "
                    "only an Executing execution can be stopped."
                )
            if execution.status == STOPPING:
                return
            execution.status = STOPPING
            execution.last_modified_time = now()
            work: list[Work] = []
            for step in execution.steps.values():
                if step.spec.type == "Callback" and step.status == EXECUTING:
                    step.status = STOPPING
                    if step.message_sent:
                        work.append(self._stop_message_work(execution, step))
            work += self._advance(execution)
        self._submit(work)

    def answer(
        self,
        token: str,
        succeeded: bool,
        outputs: dict[str, str] | None = None,
        reason: str | None = None,
        client_request_token: str | None = None,
    ) -> str:
        """SendPipelineExecutionStepSuccess/Failure; returns the execution ARN."""
        with self._lock:
            found = self._tokens.get(token)
            if found is None:
                raise ResourceNotFound(
                    f"Callback token {token!r} does not belong to any pipeline execution step."
                )
            execution, name = found
            step = execution.steps[name]
            if step.status not in (EXECUTING, STOPPING):
                if client_request_token and client_request_token == step.answered_with:
                    return execution.arn  # the same request again: idempotent
                raise ConflictException(
                    f"Step {name!r} of pipeline execution {execution.arn} is already "
                    f"{step.status}; its callback token {token!r} was already answered."
                )
            step.answered_with = client_request_token
            if step.status == STOPPING:
                self._finish_step(step, STOPPED, reason if not succeeded else None)
            elif succeeded:
                step.outputs = dict(outputs or {})
                step.metadata["Callback"]["OutputParameters"] = _output_list(step.outputs)
                self._finish_step(step, SUCCEEDED)
            else:
                self._finish_step(step, FAILED, reason or "The callback reported a failure.")
            work = self._advance(execution)
        self._submit(work)
        return execution.arn

    # --- the rules ---------------------------------------------------------------------------

    def _advance(self, execution: Execution) -> list[Work]:
        """Start what can start, skip what never will, end the execution when nothing runs.
        Called with the lock held; returns the slow work to run outside it."""
        if execution.status in TERMINAL:
            return []
        work: list[Work] = []
        progressed = True
        while progressed:  # a Condition or Fail step ends at once and may unblock others
            progressed = False
            for step in execution.steps.values():
                if step.status is not None:
                    continue
                readiness = self._readiness(execution, step)
                if readiness == "skip":
                    step.status = SKIPPED
                    progressed = True
                elif readiness == "ready" and self._may_start(execution):
                    work += self._begin(execution, step)
                    progressed = True
        # Everything that could start has started (or ended at once); with nothing running,
        # the steps still waiting never will (a failure, a stop or a skipped dependency).
        if not any(s.status in (EXECUTING, STOPPING) for s in execution.steps.values()):
            self._conclude(execution)
        return work

    def _may_start(self, execution: Execution) -> bool:
        # After a failure or a stop, SageMaker lets running steps finish but starts no more.
        no_failure = not any(s.status == FAILED for s in execution.steps.values())
        return execution.status == EXECUTING and no_failure

    def _readiness(self, execution: Execution, step: StepRun) -> str:
        branch = step.spec.branch
        if branch is not None:
            condition = execution.steps[branch.condition]
            if condition.status == SUCCEEDED:
                outcome = condition.metadata["Condition"]["Outcome"] == "True"
                if outcome != branch.outcome:
                    return "skip"
        deps = [execution.steps[d] for d in step.spec.depends_on]
        if any(d.status == SKIPPED for d in deps):
            return "skip"
        if all(d.status == SUCCEEDED for d in deps):
            return "ready"
        return "wait"

    def _conclude(self, execution: Execution) -> None:
        failed = [s for s in execution.steps.values() if s.status == FAILED]
        if execution.status == STOPPING:
            self._end(execution, STOPPED, None)
        elif failed:
            details = "; ".join(f"{s.name}: {s.failure_reason}" for s in failed)
            self._end(execution, FAILED, f"Step failure: One or multiple steps failed. {details}")
        else:
            self._end(execution, SUCCEEDED, None)

    def _end(self, execution: Execution, status: str, reason: str | None) -> None:
        execution.status = status
        execution.failure_reason = reason[:EXECUTION_FAILURE_REASON_MAX] if reason else None
        execution.last_modified_time = now()
        execution.done.set()
        log.info("pipeline execution %s ended %s %s", execution.arn, status, reason or "")

    def _finish_step(self, step: StepRun, status: str, reason: str | None = None) -> None:
        step.status = status
        step.start_time = step.start_time or now()
        step.end_time = now()
        if reason:
            step.failure_reason = reason[:STEP_FAILURE_REASON_MAX]

    # --- steps -------------------------------------------------------------------------------

    def _begin(self, execution: Execution, step: StepRun) -> list[Work]:
        step.status = EXECUTING
        step.start_time = now()
        spec = step.spec.spec
        kind = step.spec.type
        try:
            if kind == "Condition":
                holds = evaluate_conditions(
                    spec.get("Arguments", {}).get("Conditions", []), execution.scope()
                )
                step.metadata["Condition"] = {"Outcome": "True" if holds else "False"}
                self._finish_step(step, SUCCEEDED)
                return []
            if kind == "Fail":
                message = to_text(
                    evaluate(spec.get("Arguments", {}).get("ErrorMessage", ""), execution.scope())
                )
                step.metadata["Fail"] = {"ErrorMessage": message}
                self._finish_step(step, FAILED, message or "Fail step reached.")
                return []
            arguments = evaluate(spec.get("Arguments", {}), execution.scope())
        except ExpressionError as exc:
            self._finish_step(step, FAILED, str(exc))
            return []
        if kind == "Lambda":
            return [self._lambda_work(execution, step, arguments)]
        return [self._callback_work(execution, step, arguments)]

    def _lambda_work(self, execution: Execution, step: StepRun, arguments: Any) -> Work:
        arn = str(step.spec.spec.get("FunctionArn", ""))
        step.metadata["Lambda"] = {"Arn": arn}
        declared = [o.get("OutputName") for o in step.spec.spec.get("OutputParameters", [])]

        def run() -> None:
            try:
                result = self.actions.invoke_lambda(arn, arguments)
                error = None
            except StepFailed as exc:
                result, error = None, str(exc)
            with self._lock:
                if error is not None:
                    self._finish_step(step, FAILED, error)
                else:
                    if isinstance(result, dict):
                        step.outputs = {str(k): to_text(result[k]) for k in declared if k in result}
                    step.metadata["Lambda"]["OutputParameters"] = _output_list(step.outputs)
                    self._finish_step(step, SUCCEEDED)
                work = self._advance(execution)
            self._submit(work)

        return run

    def _callback_work(self, execution: Execution, step: StepRun, arguments: Any) -> Work:
        queue_url = str(step.spec.spec.get("SqsQueueUrl", ""))
        step.token = new_token()
        self._tokens[step.token] = (execution, step.name)
        step.metadata["Callback"] = {"CallbackToken": step.token, "SqsQueueUrl": queue_url}
        step.arguments = arguments
        body = callback_message(step.token, execution.arn, arguments, CALLBACK_STATUS_EXECUTING)

        def run() -> None:
            try:
                self.actions.send_callback(queue_url, body)
                error = None
            except StepFailed as exc:
                error = str(exc)
            with self._lock:
                work: list[Work] = []
                if error is not None:
                    if step.status in (EXECUTING, STOPPING):
                        self._finish_step(step, FAILED, error)
                    work = self._advance(execution)
                else:
                    step.message_sent = True
                    if step.status == STOPPING:  # stopped while the first message was in flight
                        work = [self._stop_message_work(execution, step)]
            self._submit(work)

        return run

    def _stop_message_work(self, execution: Execution, step: StepRun) -> Work:
        step.stop_message_sent = True
        assert step.token is not None
        body = callback_message(step.token, execution.arn, step.arguments, CALLBACK_STATUS_STOPPING)
        queue_url = step.metadata["Callback"]["SqsQueueUrl"]

        def run() -> None:
            try:
                self.actions.send_callback(queue_url, body)
            except StepFailed as exc:
                # Nothing could answer this step any more: end it rather than hang the stop.
                with self._lock:
                    if step.status == STOPPING:
                        self._finish_step(step, STOPPED, f"could not send the stop message: {exc}")
                    work = self._advance(execution)
                self._submit(work)

        return run

    def _submit(self, work: list[Work]) -> None:
        for item in work:
            self._pool.submit(_logged, item)


def _logged(work: Work) -> None:
    try:
        work()
    except Exception:  # a bug here must not vanish inside the pool
        log.exception("pipeline step work failed")


def _output_list(outputs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in outputs.items()]


def callback_message(token: str, execution_arn: str, arguments: Any, status: str) -> str:
    """The body SageMaker puts on a Callback step's queue (lambdas.contracts owns the shape)."""
    return CallbackMessage(
        token=token,
        pipeline_execution_arn=execution_arn,
        arguments=arguments if isinstance(arguments, dict) else {},
        status=status,
    ).to_json()
