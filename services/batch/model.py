"""Batch jobs as data: the job record, its attempts, the status transition table, and the
JobDetail / JobSummary shapes of botocore's batch model.

Nothing here has side effects; the engine owns the locking and the clock.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdas.contracts import (
    JOB_STATUSES,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    SUBMITTED,
    TERMINAL_STATUSES,
)

#: The steps the scheduler takes on its own, one step delay apart. RUNNING → SUCCEEDED | FAILED
#: is decided by the job's outcome (executor, script, timeout, TerminateJob), not by time.
#: Blocking executors (process, docker) take RUNNABLE → STARTING → RUNNING themselves when a
#: worker is free, so a job waits in RUNNABLE for capacity as it does on AWS.
TRANSITIONS: dict[str, str] = {
    SUBMITTED: PENDING,
    PENDING: RUNNABLE,
    RUNNABLE: STARTING,
    STARTING: RUNNING,
}

#: CancelJob only acts on these (AWS: a job that reached STARTING or RUNNING is not cancelled).
CANCELLABLE: frozenset[str] = frozenset({SUBMITTED, PENDING, RUNNABLE})

#: The statusReason AWS Batch reports when the container exited by itself.
CONTAINER_EXITED = "Essential container in task exited"
TIMED_OUT = "Job attempt duration exceeded timeout"
ARRAY_CHILD_FAILED = "Array Child Job failed"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Attempt:
    number: int
    task_id: str
    log_stream_name: str
    started_at: int
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    #: Stops the running container or process; set by the executor once it has one.
    kill: Callable[[], None] | None = None

    def detail(self) -> dict[str, Any]:
        container: dict[str, Any] = {
            "taskArn": f"arn:aws:ecs:local:000000000000:task/batchbridge/{self.task_id}",
            "logStreamName": self.log_stream_name,
            "networkInterfaces": [],
        }
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.reason:
            container["reason"] = self.reason
        out: dict[str, Any] = {"container": container, "startedAt": self.started_at}
        if self.stopped_at is not None:
            out["stoppedAt"] = self.stopped_at
        if self.status_reason:
            out["statusReason"] = self.status_reason
        return out


@dataclass(slots=True, eq=False)
class Job:
    """One job: a plain job, an array parent, or an array child ``<parent>:<index>``."""

    job_id: str
    job_arn: str
    name: str
    queue_arn: str
    queue_name: str
    compute_environment: str
    definition_arn: str
    definition_name: str
    image: str
    command: list[str]
    environment: list[dict[str, str]]
    parameters: dict[str, str]
    container_properties: dict[str, Any]
    retry_strategy: dict[str, Any]
    timeout: dict[str, Any] | None
    tags: dict[str, str]
    depends_on: list[dict[str, str]]
    created_at: int
    status: str = SUBMITTED
    status_reason: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    current: Attempt | None = None
    #: Bumped each time the job enters RUNNABLE; a queued worker or event with an older value
    #: is stale (the job was cancelled, terminated or retried meanwhile) and does nothing.
    dispatches: int = 0
    is_cancelled: bool = False
    is_terminated: bool = False
    # Arrays: a parent has a size and counts its children; a child has an index and a parent.
    array_size: int | None = None
    array_index: int | None = None
    parent: Job | None = None
    status_summary: Counter[str] | None = None
    summary_updated_at: int | None = None
    children_done: int = 0
    children_failed: int = 0

    @property
    def is_array_parent(self) -> bool:
        return self.array_size is not None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def max_attempts(self) -> int:
        return max(1, min(10, int(self.retry_strategy.get("attempts") or 1)))

    @property
    def last_attempt(self) -> Attempt | None:
        return self.current or (self.attempts[-1] if self.attempts else None)

    def _array_properties(self) -> dict[str, Any] | None:
        if self.array_size is not None:
            assert self.status_summary is not None
            props: dict[str, Any] = {
                "size": self.array_size,
                "statusSummary": {s: self.status_summary.get(s, 0) for s in JOB_STATUSES},
            }
            if self.summary_updated_at is not None:
                props["statusSummaryLastUpdatedAt"] = self.summary_updated_at
            return props
        if self.array_index is not None:
            return {"index": self.array_index}
        return None

    def _container_result(self) -> dict[str, Any]:
        attempt = self.last_attempt
        out: dict[str, Any] = {}
        if attempt is None:
            return out
        if attempt.exit_code is not None:
            out["exitCode"] = attempt.exit_code
        if attempt.reason:
            out["reason"] = attempt.reason
        return out

    def detail(self) -> dict[str, Any]:
        """The JobDetail shape of DescribeJobs."""
        container = {
            **{
                k: v
                for k, v in self.container_properties.items()
                if k not in ("command", "environment", "image")
            },
            "image": self.image,
            "command": self.command,
            "environment": self.environment,
            "networkInterfaces": [],
            **self._container_result(),
        }
        attempt = self.last_attempt
        if attempt is not None and not self.is_array_parent:
            container["logStreamName"] = attempt.log_stream_name
            container["taskArn"] = attempt.detail()["container"]["taskArn"]
        out: dict[str, Any] = {
            "jobArn": self.job_arn,
            "jobName": self.name,
            "jobId": self.job_id,
            "jobQueue": self.queue_arn,
            "status": self.status,
            "attempts": [a.detail() for a in self.attempts],
            "createdAt": self.created_at,
            "retryStrategy": self.retry_strategy,
            "dependsOn": self.depends_on,
            "jobDefinition": self.definition_arn,
            "parameters": self.parameters,
            "container": container,
            "tags": self.tags,
            "propagateTags": False,
            "platformCapabilities": [],
            "isCancelled": self.is_cancelled,
            "isTerminated": self.is_terminated,
        }
        if self.timeout:
            out["timeout"] = self.timeout
        return self._with_progress(out)

    def summary(self) -> dict[str, Any]:
        """The JobSummary shape of ListJobs."""
        out: dict[str, Any] = {
            "jobArn": self.job_arn,
            "jobId": self.job_id,
            "jobName": self.name,
            "createdAt": self.created_at,
            "status": self.status,
            "jobDefinition": self.definition_arn,
            "container": self._container_result(),
            "isCancelled": self.is_cancelled,
            "isTerminated": self.is_terminated,
        }
        return self._with_progress(out)

    def _with_progress(self, out: dict[str, Any]) -> dict[str, Any]:
        """The optional members JobDetail and JobSummary share: absent until they apply."""
        if self.status_reason:
            out["statusReason"] = self.status_reason
        if self.started_at is not None:
            out["startedAt"] = self.started_at
        if self.stopped_at is not None:
            out["stoppedAt"] = self.stopped_at
        array = self._array_properties()
        if array is not None:
            out["arrayProperties"] = array
        return out
