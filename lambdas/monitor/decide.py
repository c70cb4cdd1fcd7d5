"""The monitor's decision: a pure function of what was observed, the clock and the settings.

The rules are DESIGN.md's decision table, first match wins:

    Stopping → STOP; no job ids → FAIL; a job failed → FAIL; an unknown job past the grace
    period → FAIL; every job succeeded → SUCCEED; past the deadline → FAIL; else WAIT.

Nothing here calls AWS or reads the clock; delays are data in the returned :class:`Decision`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from lambdas.contracts import (
    FAILED,
    JOB_IDS_ARGUMENT,
    OUTPUT_JOB_COUNT,
    OUTPUT_JOB_STATUS,
    OUTPUT_JOB_STATUS_COMPLETED,
    OUTPUT_SUCCEEDED_COUNT,
    SUCCEEDED,
    CallbackMessage,
)
from lambdas.monitor.model import JobSnapshot
from lambdas.settings import Settings, backoff_ceiling_for

#: SageMaker's limit on FailureReason.
MAX_REASON_CHARS: Final = 256
#: The count key for ids Batch does not know.
UNKNOWN: Final = "UNKNOWN"

#: ``uniform(a, b)``: the random source for jitter, injected so tests are deterministic.
Uniform = Callable[[float, float], float]


class DecisionKind(StrEnum):
    WAIT = "WAIT"
    SUCCEED = "SUCCEED"
    FAIL = "FAIL"
    STOP = "STOP"


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str = ""
    delay_seconds: int = 0
    jobs_to_terminate: tuple[str, ...] = ()
    output_parameters: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.reason) > MAX_REASON_CHARS:
            raise ValueError(f"reason is {len(self.reason)} chars; SageMaker allows 256")


def backoff_delay(attempt: int, settings: Settings, uniform: Uniform) -> int:
    """Equal jitter: uniform in [d/2, d] with d = min(ceiling, floor·2^(attempt-1)), ≥ floor."""
    ceiling = backoff_ceiling_for(
        attempt, settings.poll_floor_seconds, settings.poll_ceiling_seconds
    )
    delay = uniform(ceiling / 2, ceiling)
    return int(max(settings.poll_floor_seconds, min(ceiling, round(delay))))


def decide(
    message: CallbackMessage,
    jobs: Mapping[str, JobSnapshot],
    now: float,
    settings: Settings,
    *,
    sent_at: float,
    attempt: int,
    uniform: Uniform = random.uniform,
) -> Decision:
    """Decide what to do with one callback message.

    ``jobs`` maps each job id Batch knows to its snapshot; an id of the message that is
    missing from it is unknown to Batch. ``sent_at`` is when SageMaker sent the message (epoch
    seconds), ``attempt`` the 1-based receive count.
    """
    job_ids = message.job_ids
    known = [jobs[job_id] for job_id in job_ids if job_id in jobs]
    unknown = [job_id for job_id in job_ids if job_id not in jobs]
    counts = _counts(known, len(unknown))
    unfinished = tuple(job.job_id for job in known if job.unfinished)

    if message.stopping:
        return Decision(
            DecisionKind.STOP,
            _clip(
                f"pipeline execution is stopping: terminated {len(unfinished)} unfinished "
                f"of {len(job_ids)} jobs"
            ),
            jobs_to_terminate=unfinished,
            counts=counts,
        )

    if not job_ids:
        return Decision(
            DecisionKind.FAIL,
            f"the callback step has no '{JOB_IDS_ARGUMENT}' input; pass the submitter's "
            f"jobIds as {JOB_IDS_ARGUMENT}",
            counts=counts,
        )

    terminate = unfinished if settings.terminate_on_failure else ()
    failed = [job for job in known if job.outcome == FAILED]
    if failed:
        return Decision(
            DecisionKind.FAIL,
            _failure_reason(failed, len(job_ids)),
            jobs_to_terminate=terminate,
            counts=counts,
        )

    age = now - sent_at
    if unknown and age > settings.unknown_job_grace_seconds:
        return Decision(
            DecisionKind.FAIL,
            _clip(
                f"{len(unknown)} of {len(job_ids)} jobs unknown to AWS Batch "
                f"{int(age)} s after submission: " + ", ".join(unknown)
            ),
            jobs_to_terminate=terminate,
            counts=counts,
        )

    if not unknown and all(job.outcome == SUCCEEDED for job in known):
        return Decision(
            DecisionKind.SUCCEED,
            f"all {len(job_ids)} jobs succeeded",
            output_parameters={
                OUTPUT_JOB_STATUS: OUTPUT_JOB_STATUS_COMPLETED,
                OUTPUT_JOB_COUNT: str(len(job_ids)),
                OUTPUT_SUCCEEDED_COUNT: str(len(known)),
            },
            counts=counts,
        )

    if age >= settings.max_wait_seconds:
        return Decision(
            DecisionKind.FAIL,
            _clip(
                f"timed out after {int(age)} s (BATCHBRIDGE_MAX_WAIT_SECONDS="
                f"{settings.max_wait_seconds}) with {len(unfinished) + len(unknown)} of "
                f"{len(job_ids)} jobs unfinished: " + _summary(counts)
            ),
            jobs_to_terminate=terminate,
            counts=counts,
        )

    # Look again at the deadline rather than up to a whole poll ceiling past it.
    until_deadline = math.ceil(settings.max_wait_seconds - age)
    return Decision(
        DecisionKind.WAIT,
        f"{len(unfinished) + len(unknown)} of {len(job_ids)} jobs unfinished: " + _summary(counts),
        delay_seconds=max(1, min(backoff_delay(attempt, settings, uniform), until_deadline)),
        counts=counts,
    )


def _counts(known: list[JobSnapshot], unknown: int) -> dict[str, int]:
    counts = Counter(job.outcome for job in known)
    if unknown:
        counts[UNKNOWN] = unknown
    return dict(sorted(counts.items()))


def _summary(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def _describe_failure(job: JobSnapshot) -> str:
    """``copy-03 exit 1 (Essential container in task exited)``, or an array's child count."""
    parts = [job.name]
    if job.is_array_parent:
        parts.append(f"{job.failed_children} of {job.array_size} children failed")
    if job.exit_code is not None:
        parts.append(f"exit {job.exit_code}")
    why = ", ".join(r for r in dict.fromkeys([job.status_reason, job.container_reason]) if r)
    text = " ".join(parts)
    return f"{text} ({why})" if why else text


def _failure_reason(failed: list[JobSnapshot], total: int) -> str:
    head = f"{len(failed)} of {total} jobs failed: "
    return _clip(head + "; ".join(_describe_failure(job) for job in failed))


def _clip(text: str) -> str:
    if len(text) <= MAX_REASON_CHARS:
        return text
    # ASCII ellipsis: the limit is safe whether SageMaker counts characters or bytes.
    return text[: MAX_REASON_CHARS - 3] + "..."
