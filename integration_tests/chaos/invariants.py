"""The promises every chaos run must keep, checked from what the runner observed.

For each run: it ended exactly once (Succeeded, Failed or Stopped) with the outcome the jobs'
fate calls for; its callback step was resolved at most once; it did not wait past the deadline
plus one poll ceiling (plus a stated slack); no job it waited for is left running. For the
campaign: nothing is left on the callback queue or its dead-letter queue once things settle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.tap import Answer
from integration_tests.chaos.plan import FAILED, STOPPED, SUCCEEDED, Timing
from integration_tests.chaos.runner import RunRecord

#: How soon an execution must end once its last step is resolved (the runner polls 4x a second).
CONCLUDE_SECONDS = 3.0
RUNNING_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


@dataclass(frozen=True)
class Violation:
    seed: int | None  # None: the campaign as a whole
    rule: str
    detail: str

    def __str__(self) -> str:
        who = f"seed {self.seed}" if self.seed is not None else "campaign"
        return f"{who}: {self.rule}: {self.detail}"


def _epoch(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") else None


def check_run(
    record: RunRecord,
    timing: Timing,
    accepted: dict[str, list[Answer]],
    jobs: dict[str, dict[str, Any]],
) -> tuple[list[Violation], list[str]]:
    """Violations of one run, and notes (things worth knowing that break no promise)."""
    seed = record.plan.seed
    out: list[Violation] = []
    notes: list[str] = []

    def bad(rule: str, detail: str) -> None:
        out.append(Violation(seed, rule, detail))

    if record.error:
        bad("harness", record.error)
        return out, notes
    seen = set(record.terminal_seen)
    if not record.terminal_seen or not seen <= {SUCCEEDED, FAILED, STOPPED}:
        bad("ends", f"did not end (statuses seen: {record.terminal_seen})")
        return out, notes
    if len(seen) > 1:
        bad("ends once", f"the status changed after it ended: {record.terminal_seen}")

    final = record.terminal_seen[0]
    submit = record.steps.get("SubmitJobs", {})
    wait = record.steps.get("WaitForJobs", {})
    natural = record.plan.natural_outcome(timing)
    wait_end = _epoch(wait.get("EndTime"))
    if submit.get("StepStatus") == FAILED:
        bad("submit", f"SubmitJobs failed: {submit.get('FailureReason', '')[:200]}")
    elif record.stop_acked is not None:
        stopped_in_time = wait_end is not None and wait_end <= record.stop_acked
        if final != STOPPED and not (final == natural and stopped_in_time):
            bad(
                "outcome",
                f"stop accepted {record.stop_acked - record.started:.2f}s after start, but the "
                f"execution ended {final} (jobs' fate: {natural}; WaitForJobs "
                f"{wait.get('StepStatus')} {wait.get('FailureReason', '')[:120]!r})",
            )
    elif final != natural:
        bad(
            "outcome",
            f"ended {final}, the jobs' fate calls for {natural} (WaitForJobs "
            f"{wait.get('StepStatus')}: {wait.get('FailureReason', '')[:160]!r})",
        )

    token = wait.get("Metadata", {}).get("Callback", {}).get("CallbackToken", "")
    answers = sorted(accepted.get(token, []) if token else [], key=lambda a: a.at)
    step_status = wait.get("StepStatus")
    if answers:
        # The first accepted answer resolves the step; the monitor sends every answer with the
        # same ClientRequestToken, so later ones are idempotent repeats that change nothing.
        first = answers[0].operation
        allowed = (
            (SUCCEEDED, STOPPED)
            if first == "SendPipelineExecutionStepSuccess"
            else (FAILED, STOPPED)
        )
        if step_status not in allowed:
            bad("resolved once", f"first accepted answer {first}, but the step is {step_status}")
        if step_status == STOPPED and record.stop_acked is None:
            bad("resolved once", "the step is Stopped but no stop was accepted")
        stopped_first = record.stop_acked is not None and record.stop_acked < answers[0].at
        if record.ended is not None and not stopped_first:
            lag = record.ended - answers[0].at
            if lag > CONCLUDE_SECONDS:
                bad("ends", f"the execution ended {lag:.1f}s after its last step was resolved")
        later = {a.operation for a in answers[1:]} - {first}
        if later:
            notes.append(
                f"{first} resolved the step; a later {', '.join(sorted(later))} with the same "
                "ClientRequestToken was answered 200 and changed nothing"
            )
    elif step_status in (SUCCEEDED, FAILED):
        bad("resolved once", f"the step is {step_status} without any accepted answer")

    wait_start = _epoch(wait.get("StartTime"))
    if wait_start is not None and wait_end is not None:
        allowed = timing.max_wait + timing.poll_ceiling + timing.slack
        if wait_end - wait_start > allowed:
            bad(
                "deadline",
                f"WaitForJobs waited {wait_end - wait_start:.1f}s; deadline + ceiling + slack "
                f"is {allowed:.1f}s",
            )

    running = [
        f"{jobs[i]['jobName']}={jobs[i]['status']}"
        for i in record.job_ids
        if i in jobs and jobs[i]["status"] in RUNNING_STATUSES
    ]
    if running and wait_start is not None:
        bad("jobs left running", ", ".join(running))
    elif running:
        notes.append(
            f"stopped before WaitForJobs started: {len(running)} submitted jobs were never "
            "waited for and run on"
        )
    missing = [i for i in record.job_ids if i not in jobs]
    if missing:
        bad("jobs", f"Batch does not know {missing}")
    return out, notes


def check_campaign(
    records: list[RunRecord], settled: dict[str, Any], timing: Timing, accepted: dict[str, Any]
) -> tuple[list[Violation], list[str]]:
    violations: list[Violation] = []
    notes: list[str] = []
    for record in records:
        found, more = check_run(record, timing, accepted, settled["jobs"])
        violations += found
        notes += [f"seed {record.plan.seed}: {n}" for n in more]
    depth = {url.rsplit("/", 1)[-1]: n for url, n in settled["queue_depth"].items() if n}
    if depth:
        owners = []
        for message in settled["leftovers"]:
            body = message["body"]
            seed = next((r.plan.seed for r in records if r.arn and r.arn in body), None)
            owners.append(f"seed {seed}: {body[:160]}")
        violations.append(
            Violation(None, "queue drained", f"messages left {depth}; visible ones: {owners}")
        )
    return violations, notes
