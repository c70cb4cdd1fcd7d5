"""What the monitor observed about one Batch job, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdas.contracts import FAILED, SUCCEEDED, is_terminal


@dataclass(frozen=True)
class JobSnapshot:
    """One job as DescribeJobs reported it. An array parent carries its children's summary."""

    job_id: str
    name: str
    status: str
    status_reason: str = ""
    exit_code: int | None = None
    container_reason: str = ""
    array_size: int = 0
    #: Child counts by status for an array parent (``arrayProperties.statusSummary``).
    array_summary: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_array_parent(self) -> bool:
        return self.array_size > 0

    @property
    def failed_children(self) -> int:
        return int(self.array_summary.get(FAILED, 0))

    @property
    def outcome(self) -> str:
        """The job's status as the decision sees it.

        An array parent stays RUNNING in Batch until every child is done, but one failed child
        already dooms the step, so a parent with a failed child counts as FAILED.
        """
        if self.is_array_parent:
            if self.status == FAILED or self.failed_children > 0:
                return FAILED
            if self.status == SUCCEEDED or self.array_summary.get(SUCCEEDED, 0) >= self.array_size:
                return SUCCEEDED
        return self.status

    @property
    def unfinished(self) -> bool:
        """Batch still runs (or will run) it: terminating it saves money."""
        return not is_terminal(self.status)

    @classmethod
    def from_description(cls, job: Mapping[str, Any]) -> JobSnapshot:
        """Build from one ``jobs[]`` item of DescribeJobs (botocore's JobDetail shape)."""
        container = job.get("container") or {}
        attempts = job.get("attempts") or []
        last_container = (attempts[-1].get("container") or {}) if attempts else {}
        exit_code = container.get("exitCode", last_container.get("exitCode"))
        array = job.get("arrayProperties") or {}
        # A child has arrayProperties.index and no size; only a parent has size.
        size = int(array.get("size") or 0)
        return cls(
            job_id=str(job["jobId"]),
            name=str(job.get("jobName", job["jobId"])),
            status=str(job.get("status", "")),
            status_reason=str(job.get("statusReason") or ""),
            exit_code=int(exit_code) if isinstance(exit_code, int) else None,
            container_reason=str(container.get("reason") or last_container.get("reason") or ""),
            array_size=size,
            array_summary=dict(array.get("statusSummary") or {}) if size else {},
        )
