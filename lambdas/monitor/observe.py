"""Observe: what AWS Batch says about the jobs of one callback message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from lambdas.monitor.model import JobSnapshot
from lambdas.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

#: DescribeJobs refuses more than 100 ids in one call.
DESCRIBE_JOBS_LIMIT: Final = 100


def chunks(items: tuple[str, ...], size: int) -> Iterable[tuple[str, ...]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def observe(
    batch: BatchClient, job_ids: tuple[str, ...], retry: RetryPolicy
) -> dict[str, JobSnapshot]:
    """Snapshots of the jobs Batch knows, by id; an id Batch does not know is left out.

    An array job is described by its parent only: the parent's statusSummary counts its
    children, so 10,000 children cost one id, not 100 calls.
    """
    wanted = set(job_ids)
    found: dict[str, JobSnapshot] = {}
    for chunk in chunks(job_ids, DESCRIBE_JOBS_LIMIT):
        response = retry.call(batch.describe_jobs, jobs=list(chunk))
        for job in response.get("jobs", []):
            snapshot = JobSnapshot.from_description(job)
            # Some emulators answer with more than was asked; keep only what we asked for.
            if snapshot.job_id in wanted:
                found[snapshot.job_id] = snapshot
    return found
