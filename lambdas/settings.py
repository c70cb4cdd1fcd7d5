"""The Lambdas' settings, read once from environment variables, with defaults that work.

Both Lambdas read the same variables; each uses the ones it needs. A bad value raises a
:class:`SettingsError` naming the variable and the value, so a misconfigured deployment fails
its first invocation loudly instead of polling with nonsense.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

ENV_POLL_FLOOR: Final = "BATCHBRIDGE_POLL_FLOOR_SECONDS"
ENV_POLL_CEILING: Final = "BATCHBRIDGE_POLL_CEILING_SECONDS"
ENV_MAX_WAIT: Final = "BATCHBRIDGE_MAX_WAIT_SECONDS"
ENV_TERMINATE_ON_FAILURE: Final = "BATCHBRIDGE_TERMINATE_ON_FAILURE"
ENV_UNKNOWN_JOB_GRACE: Final = "BATCHBRIDGE_UNKNOWN_JOB_GRACE_SECONDS"
ENV_DLQ_URL: Final = "BATCHBRIDGE_DLQ_URL"
ENV_MODE: Final = "BATCHBRIDGE_MODE"
ENV_JOB_QUEUE: Final = "BATCHBRIDGE_JOB_QUEUE"
ENV_JOB_DEFINITION: Final = "BATCHBRIDGE_JOB_DEFINITION"
ENV_MAX_JOBS: Final = "BATCHBRIDGE_MAX_JOBS"
ENV_SUBMIT_CONCURRENCY: Final = "BATCHBRIDGE_SUBMIT_CONCURRENCY"

MODE_MONITOR: Final = "monitor"
MODE_REAPER: Final = "reaper"

#: SQS refuses a visibility timeout above 12 hours.
SQS_MAX_VISIBILITY_SECONDS: Final = 43_200
#: SQS counts that 12-hour limit from the ReceiveMessage (it rejects a change with "Total
#: VisibilityTimeout for the message is beyond the limit [43200 seconds]"). The event source
#: mapping received the message up to a batching window (≤ 300 s) plus the function's run
#: (≤ 900 s) before the monitor asks, so the monitor asks for at most this.
SQS_MAX_CHANGED_VISIBILITY_SECONDS: Final = SQS_MAX_VISIBILITY_SECONDS - 300 - 900
#: SQS keeps a message at most 14 days; a wait longer than that would lose the message.
SQS_MAX_RETENTION_SECONDS: Final = 14 * 24 * 3600
#: Batch's hard limit on the children of one array job.
BATCH_MAX_ARRAY_SIZE: Final = 10_000

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds a value the Lambdas cannot use."""


@dataclass(frozen=True)
class Settings:
    poll_floor_seconds: int = 30
    poll_ceiling_seconds: int = 900
    max_wait_seconds: int = 3 * 24 * 3600
    terminate_on_failure: bool = True
    unknown_job_grace_seconds: int = 60
    dlq_url: str | None = None
    mode: str = MODE_MONITOR
    job_queue: str | None = None
    job_definition: str | None = None
    max_jobs: int = 10_000
    submit_concurrency: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.poll_floor_seconds <= SQS_MAX_VISIBILITY_SECONDS:
            raise SettingsError(
                f"{ENV_POLL_FLOOR}={self.poll_floor_seconds} must be between 1 and "
                f"{SQS_MAX_VISIBILITY_SECONDS} seconds (SQS's maximum visibility timeout)"
            )
        if not self.poll_floor_seconds <= self.poll_ceiling_seconds <= SQS_MAX_VISIBILITY_SECONDS:
            raise SettingsError(
                f"{ENV_POLL_CEILING}={self.poll_ceiling_seconds} must be between the poll floor "
                f"({self.poll_floor_seconds}) and {SQS_MAX_VISIBILITY_SECONDS} seconds"
            )
        if not self.poll_floor_seconds <= self.max_wait_seconds < SQS_MAX_RETENTION_SECONDS:
            raise SettingsError(
                f"{ENV_MAX_WAIT}={self.max_wait_seconds} must be at least the poll floor and "
                f"under SQS's 14-day retention ({SQS_MAX_RETENTION_SECONDS} seconds); set the "
                "queue's MessageRetentionPeriod above it too"
            )
        if self.unknown_job_grace_seconds < 0:
            raise SettingsError(
                f"{ENV_UNKNOWN_JOB_GRACE}={self.unknown_job_grace_seconds} must not be negative"
            )
        if self.mode not in (MODE_MONITOR, MODE_REAPER):
            raise SettingsError(
                f"{ENV_MODE}={self.mode!r} must be {MODE_MONITOR!r} or {MODE_REAPER!r}"
            )
        if not 1 <= self.max_jobs <= BATCH_MAX_ARRAY_SIZE:
            raise SettingsError(
                f"{ENV_MAX_JOBS}={self.max_jobs} must be between 1 and {BATCH_MAX_ARRAY_SIZE}"
            )
        if not 1 <= self.submit_concurrency <= 64:
            raise SettingsError(
                f"{ENV_SUBMIT_CONCURRENCY}={self.submit_concurrency} must be between 1 and 64"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            poll_floor_seconds=_int(env, ENV_POLL_FLOOR, defaults.poll_floor_seconds),
            poll_ceiling_seconds=_int(env, ENV_POLL_CEILING, defaults.poll_ceiling_seconds),
            max_wait_seconds=_int(env, ENV_MAX_WAIT, defaults.max_wait_seconds),
            terminate_on_failure=_bool(
                env, ENV_TERMINATE_ON_FAILURE, defaults.terminate_on_failure
            ),
            unknown_job_grace_seconds=_int(
                env, ENV_UNKNOWN_JOB_GRACE, defaults.unknown_job_grace_seconds
            ),
            dlq_url=_str(env, ENV_DLQ_URL),
            mode=(_str(env, ENV_MODE) or defaults.mode).lower(),
            job_queue=_str(env, ENV_JOB_QUEUE),
            job_definition=_str(env, ENV_JOB_DEFINITION),
            max_jobs=_int(env, ENV_MAX_JOBS, defaults.max_jobs),
            submit_concurrency=_int(env, ENV_SUBMIT_CONCURRENCY, defaults.submit_concurrency),
        )


def _str(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _str(env, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number (unset it for {default})"
        ) from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _str(env, name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


def backoff_ceiling_for(attempt: int, floor: int, ceiling: int) -> float:
    """The un-jittered delay for receive number ``attempt`` (1-based): floor·2^(attempt-1)."""
    exponent = max(0, attempt - 1)
    # Cap the exponent so 2**exponent cannot overflow a float on absurd receive counts.
    return float(min(ceiling, floor * 2 ** min(exponent, 60)))


def backoff_lower_bound(attempt: int, floor: int, ceiling: int) -> float:
    """The shortest delay equal jitter can pick for ``attempt``: half the un-jittered delay
    (no more than the monitor may ask SQS for)."""
    shortest = max(float(floor), backoff_ceiling_for(attempt, floor, ceiling) / 2)
    return min(shortest, float(SQS_MAX_CHANGED_VISIBILITY_SECONDS))


def receives_needed(max_wait_seconds: int, floor: int, ceiling: int) -> int:
    """The most receives a message can take before its deadline passes.

    Each WAIT hides the message for at least :func:`backoff_lower_bound` of its attempt, so
    summing those lower bounds until they reach ``max_wait_seconds`` bounds the receive count.
    One more receive sees the deadline passed and fails the step. The deploy helper sets the
    DLQ's maxReceiveCount above this (plus a margin), so the redrive only catches a monitor that
    is broken, never a slow job.
    """
    if floor <= 0:
        raise ValueError(f"poll floor must be positive, got {floor}")
    elapsed = 0.0
    attempt = 0
    while elapsed < max_wait_seconds:
        attempt += 1
        elapsed += backoff_lower_bound(attempt, floor, ceiling)
    # +1: the receive that finds the deadline passed and sends the failure.
    return attempt + 1
