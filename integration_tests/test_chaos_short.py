"""The chaos suite, short: 30 randomised runs of the whole loop with faults injected.

Each run checks the invariants of ``integration_tests/chaos/invariants.py``; ``make chaos``
runs at least 500. The runs need the control path and a tap in the gateway's process, so they
use the session's embedded environment and skip for any other BATCHBRIDGE_TEST_TARGET (a second
environment in one process would share moto's backends with the first).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from benchmarks.tap import Answer
from integration_tests.chaos.campaign import run_campaign
from integration_tests.chaos.invariants import check_run
from integration_tests.chaos.plan import JobFate, Plan, Timing
from integration_tests.chaos.runner import RunRecord


@pytest.mark.timeout(150)
def test_thirty_runs_with_faults_keep_every_invariant(target: Any) -> None:
    if target.env is None:
        pytest.skip("the chaos runs need the embedded environment (BATCHBRIDGE_TEST_TARGET)")
    report = run_campaign(list(range(1, 31)), concurrency=15, stack="chaosci", env=target.env)
    summary = "\n".join(report.lines())
    print(summary)
    assert len(report.records) == 30
    # The faults really happened: API errors reached the Lambdas, and some runs were stopped.
    assert sum(report.injected.values()) > 0, summary
    assert report.outcomes["Stopped"] > 0 and report.outcomes["Failed"] > 0, summary
    assert report.outcomes["Succeeded"] > 0, summary
    assert not report.violations, summary


# --- the checks themselves can fail: fabricated observations, no environment -----------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _record(**changes: object) -> RunRecord:
    plan = Plan(7, (JobFate(1.0, 0),))
    token = "AbCdE12345"
    record = RunRecord(
        plan,
        arn="arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/x",
        started=T0.timestamp(),
        terminal_seen=["Succeeded", "Succeeded"],
        ended=T0.timestamp() + 3,
        job_ids=["j1"],
        steps={
            "SubmitJobs": {"StepStatus": "Succeeded"},
            "WaitForJobs": {
                "StepStatus": "Succeeded",
                "StartTime": T0 + timedelta(seconds=1),
                "EndTime": T0 + timedelta(seconds=2.5),
                "Metadata": {"Callback": {"CallbackToken": token}},
            },
        },
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


ACCEPTED = {
    "AbCdE12345": [
        Answer("AbCdE12345", "SendPipelineExecutionStepSuccess", 200, T0.timestamp() + 2.5)
    ]
}
DONE_JOBS = {"j1": {"jobName": "chaos7x-0001", "status": "SUCCEEDED"}}


def _rules(record: RunRecord, accepted: dict = ACCEPTED, jobs: dict = DONE_JOBS) -> set[str]:
    violations, _ = check_run(record, Timing(), accepted, jobs)
    return {v.rule for v in violations}


def test_a_clean_run_passes_every_check() -> None:
    assert _rules(_record()) == set()


def test_each_broken_promise_is_reported() -> None:
    assert _rules(_record(terminal_seen=[])) == {"ends"}
    assert _rules(_record(terminal_seen=["Succeeded", "Failed"])) == {"ends once"}
    failing = Plan(7, (JobFate(1.0, 1),))
    assert "outcome" in _rules(_record(plan=failing))
    both = {"AbCdE12345": [*ACCEPTED["AbCdE12345"]]}
    failed_step = _record()
    failed_step.steps["WaitForJobs"]["StepStatus"] = "Failed"
    assert "resolved once" in _rules(failed_step, both)
    late = _record()
    late.steps["WaitForJobs"]["EndTime"] = T0 + timedelta(seconds=60)
    assert "deadline" in _rules(late)
    running = {"j1": {"jobName": "chaos7x-0001", "status": "RUNNING"}}
    assert "jobs left running" in _rules(_record(), jobs=running)
    assert "ends" in _rules(_record(ended=T0.timestamp() + 30))
