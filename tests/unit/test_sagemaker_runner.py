"""The execution state machine with fake step actions: ordering, failure, stop and callbacks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from services.sagemaker.backend import PipelinesBackend
from services.sagemaker.errors import ConflictException, ResourceNotFound
from services.sagemaker.runner import Execution, Runner, StepFailed

pytestmark = pytest.mark.timeout(10)


class FakeActions:
    """Records calls; a Lambda named ``…:gate`` blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.invoked: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.results: dict[str, Any] = {}

    def invoke_lambda(self, function_arn: str, payload: dict[str, Any]) -> Any:
        self.invoked.append((function_arn, payload))
        if function_arn.endswith(":gate"):
            assert self.gate.wait(5)
        result = self.results.get(function_arn, {"jobIds": "j1 j2", "count": 2})
        if isinstance(result, Exception):
            raise result
        return result

    def send_callback(self, queue_url: str, body: str) -> None:
        self.sent.append({"queue": queue_url, **json.loads(body)})


@pytest.fixture
def world() -> Iterator[tuple[PipelinesBackend, FakeActions]]:
    actions = FakeActions()
    runner = Runner(actions, max_workers=4)
    yield PipelinesBackend("us-east-1", "123456789012", runner), actions
    runner.shutdown()


def lam(name: str, arn: str = "arn:fn", **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Lambda",
        "FunctionArn": arn,
        "Arguments": extra.pop("Arguments", {}),
        "OutputParameters": [{"OutputName": "jobIds"}, {"OutputName": "count"}],
        **extra,
    }


def callback(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Callback",
        "SqsQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "Arguments": extra.pop("Arguments", {}),
        **extra,
    }


def run(backend: PipelinesBackend, *steps: dict[str, Any]) -> Execution:
    name = f"p{len(backend.pipelines)}"
    backend.create_pipeline(name, json.dumps({"Steps": list(steps)}), "arn:role")
    return backend.start_execution(name, [])


def finished(execution: Execution) -> str:
    assert execution.done.wait(5), f"still {execution.status}"
    return execution.status


def wait_sent(actions: FakeActions, count: int) -> None:
    for _ in range(500):
        if len(actions.sent) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"only {len(actions.sent)} callback messages were sent")


def test_outputs_flow_to_the_next_step_and_numbers_become_strings(world: Any) -> None:
    backend, actions = world
    execution = run(
        backend,
        lam("Submit"),
        lam("Report", Arguments={"n": {"Get": "Steps.Submit.OutputParameters['count']"}}),
    )
    assert finished(execution) == "Succeeded"
    assert actions.invoked[1][1] == {"n": "2"}
    assert execution.steps["Submit"].outputs == {"jobIds": "j1 j2", "count": "2"}


def test_after_a_failure_running_steps_finish_but_no_new_step_starts(world: Any) -> None:
    backend, actions = world
    actions.results["arn:bad"] = StepFailed("boom")
    execution = run(
        backend,
        lam("Slow", arn="arn:gate"),
        lam("Bad", arn="arn:bad"),
        lam("AfterBad", DependsOn=["Bad"]),
        lam("AfterSlow", DependsOn=["Slow"]),
    )
    for _ in range(500):
        if execution.steps["Bad"].status == "Failed":
            break
        time.sleep(0.01)
    assert execution.status == "Executing"  # Slow is still running
    actions.gate.set()
    assert finished(execution) == "Failed"
    assert execution.steps["Slow"].status == "Succeeded"
    assert execution.steps["AfterSlow"].status is None
    assert execution.steps["AfterBad"].status is None
    assert "Bad: boom" in (execution.failure_reason or "")


def test_stop_while_a_lambda_runs_ends_stopped_after_it_returns(world: Any) -> None:
    backend, actions = world
    execution = run(backend, lam("Slow", arn="arn:gate"), lam("Next", DependsOn=["Slow"]))
    backend.stop_execution(execution.arn)
    assert execution.status == "Stopping"
    actions.gate.set()
    assert finished(execution) == "Stopped"
    assert execution.steps["Next"].status is None
    with pytest.raises(ConflictException):
        backend.stop_execution(execution.arn)


def test_a_callback_message_carries_resolved_arguments_and_a_fresh_token(world: Any) -> None:
    backend, actions = world
    step = callback("Wait", Arguments={"job_ids": {"Get": "Execution.PipelineExecutionId"}})
    first = run(backend, step)
    second = backend.start_execution("p0", [])
    wait_sent(actions, 2)
    tokens = {m["token"] for m in actions.sent}
    assert len(tokens) == 2
    assert all(len(t) == 10 and t.isalnum() for t in tokens)
    by_execution = {m["pipelineExecutionArn"]: m for m in actions.sent}
    assert by_execution[first.arn]["arguments"] == {"job_ids": first.execution_id}
    assert by_execution[second.arn]["status"] == "Executing"
    assert by_execution[first.arn]["queue"].endswith("/123456789012/q")


def test_answers_to_unknown_or_finished_tokens_are_refused(world: Any) -> None:
    backend, actions = world
    execution = run(backend, callback("Wait"))
    wait_sent(actions, 1)
    token = actions.sent[0]["token"]
    with pytest.raises(ResourceNotFound):
        backend.send_step_success("ZZZZZZZZZZ", [], None)
    backend.send_step_success(token, [{"Name": "job_status", "Value": "Completed"}], "req-1")
    assert finished(execution) == "Succeeded"
    assert backend.send_step_success(token, [], "req-1") == execution.arn
    with pytest.raises(ConflictException):
        backend.send_step_failure(token, "late", "req-2")


def test_an_unresolvable_reference_fails_only_its_step_with_a_reason(world: Any) -> None:
    backend, _ = world
    execution = run(
        backend,
        lam("Submit"),
        callback("Wait", Arguments={"x": {"Get": "Steps.Submit.OutputParameters['missing']"}}),
    )
    assert finished(execution) == "Failed"
    assert execution.steps["Submit"].status == "Succeeded"
    assert "has no output 'missing'" in (execution.steps["Wait"].failure_reason or "")


def test_steps_after_the_branch_not_taken_are_skipped(world: Any) -> None:
    backend, actions = world
    condition = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 2}],
            "IfSteps": [lam("Yes")],
            "ElseSteps": [lam("No")],
        },
    }
    execution = run(backend, condition, lam("AfterYes", DependsOn=["Yes"]))
    assert finished(execution) == "Succeeded"
    assert {s.name for s in execution.steps.values() if s.listed} == {"Check", "No"}
    assert [arn for arn, _ in actions.invoked] == ["arn:fn"]
