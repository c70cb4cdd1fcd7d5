"""decide(): every row of DESIGN.md's decision table, and its edges."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.contracts import CallbackMessage
from lambdas.monitor.decide import (
    MAX_REASON_CHARS,
    Decision,
    DecisionKind,
    backoff_delay,
    decide,
)
from lambdas.monitor.model import JobSnapshot
from lambdas.settings import Settings

SENT = 1_000_000.0
SETTINGS = Settings()
WAIT, SUCCEED, FAIL, STOP = (
    DecisionKind.WAIT,
    DecisionKind.SUCCEED,
    DecisionKind.FAIL,
    DecisionKind.STOP,
)


def job(job_id: str, status: str, **kwargs: Any) -> JobSnapshot:
    return JobSnapshot(job_id=job_id, name=f"name-{job_id}", status=status, **kwargs)


def array(job_id: str, status: str, size: int, **summary: int) -> JobSnapshot:
    return job(job_id, status, array_size=size, array_summary=summary)


def run(
    job_ids: str,
    jobs: list[JobSnapshot],
    *,
    age: float = 10.0,
    attempt: int = 1,
    status: str = "Executing",
    settings: Settings = SETTINGS,
) -> Decision:
    message = CallbackMessage("Tok0000001", "arn:x", {"job_ids": job_ids}, status)
    return decide(
        message,
        {j.job_id: j for j in jobs},
        SENT + age,
        settings,
        sent_at=SENT,
        attempt=attempt,
        uniform=lambda low, high: high,
    )


# (case, job_ids, observed jobs, extra kwargs, expected kind, expected terminate)
TABLE: list[tuple[str, str, list[JobSnapshot], dict[str, Any], DecisionKind, tuple[str, ...]]] = [
    # row: Stopping → STOP, terminating only the unfinished
    (
        "stopping",
        "a b c",
        [job("a", "RUNNING"), job("b", "SUCCEEDED"), job("c", "RUNNABLE")],
        {"status": "Stopping"},
        STOP,
        ("a", "c"),
    ),
    (
        "stopping beats a failure",
        "a b",
        [job("a", "FAILED"), job("b", "RUNNING")],
        {"status": "Stopping"},
        STOP,
        ("b",),
    ),
    ("stopping with no ids", "", [], {"status": "Stopping"}, STOP, ()),
    # edge: no ids
    ("no ids", "", [], {}, FAIL, ()),
    ("only blanks", "   ", [], {}, FAIL, ()),
    # row: a job failed → FAIL, terminating the rest
    ("one failed", "a b", [job("a", "FAILED"), job("b", "RUNNING")], {}, FAIL, ("b",)),
    ("failed beats the deadline", "a", [job("a", "FAILED")], {"age": 10**7}, FAIL, ()),
    ("failed beats unknown", "a ghost", [job("a", "FAILED")], {"age": 3600}, FAIL, ()),
    (
        "array with a failed child",
        "p",
        [array("p", "RUNNING", 10, SUCCEEDED=5, FAILED=1, RUNNING=4)],
        {},
        FAIL,
        ("p",),
    ),
    ("array parent FAILED", "p", [array("p", "FAILED", 3, SUCCEEDED=2, FAILED=1)], {}, FAIL, ()),
    # row: unknown past grace → FAIL
    ("unknown past grace", "a ghost", [job("a", "RUNNING")], {"age": 61}, FAIL, ("a",)),
    ("unknown within grace waits", "ghost", [], {"age": 59}, WAIT, ()),
    ("unknown at exactly grace waits", "ghost", [], {"age": 60}, WAIT, ()),
    # row: all succeeded → SUCCEED
    ("all succeeded", "a b", [job("a", "SUCCEEDED"), job("b", "SUCCEEDED")], {}, SUCCEED, ()),
    ("duplicate ids count once", "a a a", [job("a", "SUCCEEDED")], {}, SUCCEED, ()),
    ("array all children done", "p", [array("p", "RUNNING", 3, SUCCEEDED=3)], {}, SUCCEED, ()),
    (
        "succeeded past the deadline still succeeds",
        "a",
        [job("a", "SUCCEEDED")],
        {"age": 10**7},
        SUCCEED,
        (),
    ),
    # row: past the deadline → FAIL, terminating the rest
    (
        "deadline",
        "a b",
        [job("a", "RUNNING"), job("b", "SUCCEEDED")],
        {"age": SETTINGS.max_wait_seconds},
        FAIL,
        ("a",),
    ),
    # row: otherwise → WAIT
    ("running", "a", [job("a", "RUNNING")], {}, WAIT, ()),
    ("submitted", "a", [job("a", "SUBMITTED")], {}, WAIT, ()),
    ("status never seen", "a", [job("a", "HIBERNATING")], {}, WAIT, ()),
    (
        "array mixing states",
        "p",
        [array("p", "RUNNING", 10, SUCCEEDED=5, RUNNING=3, RUNNABLE=2)],
        {},
        WAIT,
        (),
    ),
    (
        "one just before the deadline",
        "a",
        [job("a", "RUNNING")],
        {"age": SETTINGS.max_wait_seconds - 1},
        WAIT,
        (),
    ),
]


@pytest.mark.parametrize(
    ("case", "job_ids", "jobs", "kwargs", "kind", "terminate"), TABLE, ids=[r[0] for r in TABLE]
)
def test_decision_table(
    case: str,
    job_ids: str,
    jobs: list[JobSnapshot],
    kwargs: dict[str, Any],
    kind: DecisionKind,
    terminate: tuple[str, ...],
) -> None:
    decision = run(job_ids, jobs, **kwargs)
    assert decision.kind is kind, decision.reason
    assert decision.jobs_to_terminate == terminate
    assert 0 < len(decision.reason) <= MAX_REASON_CHARS


def test_terminate_on_failure_off_terminates_nothing() -> None:
    settings = Settings(terminate_on_failure=False)
    failed = run("a b", [job("a", "FAILED"), job("b", "RUNNING")], settings=settings)
    late = run("a", [job("a", "RUNNING")], age=10**6, settings=settings)
    assert failed.jobs_to_terminate == () and late.jobs_to_terminate == ()
    # a stop always terminates: the pipeline is going away
    stop = run("b", [job("b", "RUNNING")], status="Stopping", settings=settings)
    assert stop.jobs_to_terminate == ("b",)


def test_failure_reason_names_job_exit_code_and_reasons() -> None:
    jobs = [
        job("a", "FAILED", exit_code=1, status_reason="Essential container in task exited"),
        job("b", "FAILED", status_reason="Job attempt duration exceeded timeout"),
        job("c", "SUCCEEDED"),
    ]
    decision = run("a b c", jobs)
    assert decision.reason == (
        "2 of 3 jobs failed: name-a exit 1 (Essential container in task exited); "
        "name-b (Job attempt duration exceeded timeout)"
    )


def test_failure_reason_is_clipped_to_256_characters() -> None:
    jobs = [
        job(f"j{i}", "FAILED", exit_code=137, status_reason="OutOfMemoryError") for i in range(40)
    ]
    decision = run(" ".join(j.job_id for j in jobs), jobs)
    assert len(decision.reason) == MAX_REASON_CHARS
    assert decision.reason.startswith("40 of 40 jobs failed: name-j0 exit 137")
    assert decision.reason.endswith("...")


def test_success_outputs_and_counts() -> None:
    decision = run("a b", [job("a", "SUCCEEDED"), job("b", "SUCCEEDED")])
    assert dict(decision.output_parameters) == {
        "job_status": "Completed",
        "job_count": "2",
        "succeeded_count": "2",
    }
    assert dict(decision.counts) == {"SUCCEEDED": 2}


def test_counts_include_unknown_and_array_outcomes() -> None:
    decision = run("a p ghost", [job("a", "RUNNING"), array("p", "RUNNING", 2, SUCCEEDED=2)])
    assert dict(decision.counts) == {"RUNNING": 1, "SUCCEEDED": 1, "UNKNOWN": 1}


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        (1, 30, 30),
        (2, 30, 60),
        (3, 60, 120),
        (4, 120, 240),
        (5, 240, 480),
        (6, 450, 900),
        (7, 450, 900),
        (50, 450, 900),
        (10_000, 450, 900),
    ],
)
def test_backoff_is_equal_jitter_between_floor_and_ceiling(
    attempt: int, low: int, high: int
) -> None:
    picks: list[tuple[float, float]] = []

    def record(a: float, b: float) -> float:
        picks.append((a, b))
        return a

    assert backoff_delay(attempt, SETTINGS, lambda a, b: a) == low
    assert backoff_delay(attempt, SETTINGS, lambda a, b: b) == high
    backoff_delay(attempt, SETTINGS, record)
    assert picks == [(high / 2, high)]


def test_wait_delay_uses_the_receive_count() -> None:
    assert run("a", [job("a", "RUNNING")], attempt=1).delay_seconds == 30
    assert run("a", [job("a", "RUNNING")], attempt=3).delay_seconds == 120
    assert run("a", [job("a", "RUNNING")], attempt=99).delay_seconds == 900


def test_decision_refuses_a_reason_sagemaker_would_reject() -> None:
    with pytest.raises(ValueError, match="256"):
        Decision(FAIL, "x" * 257)


def test_the_last_wait_ends_at_the_deadline_not_a_ceiling_past_it() -> None:
    near = SETTINGS.max_wait_seconds - 45.5  # 45.5 s left, the backoff would say 900
    assert run("a", [job("a", "RUNNING")], age=near, attempt=99).delay_seconds == 46
    almost = SETTINGS.max_wait_seconds - 0.2
    assert run("a", [job("a", "RUNNING")], age=almost, attempt=99).delay_seconds == 1
