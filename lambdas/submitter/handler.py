"""The submitter Lambda (a SageMaker LambdaStep): submit the Batch jobs, return their ids.

Inputs are validated first (:mod:`lambdas.submitter.plan`). With an ``execution_id`` the job
names are deterministic, and the jobs an earlier run of this step already submitted for the
same execution are found with ListJobs and reused: Batch's SubmitJob has no idempotency token,
so the name is the only handle a retried step has on its own earlier work.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from lambdas.aws import CLIENT_CONFIG
from lambdas.contracts import SubmitterResult, join_job_ids
from lambdas.logs import get_logger
from lambdas.retry import DEFAULT_RETRY, RetryPolicy
from lambdas.settings import Settings
from lambdas.submitter.plan import (
    KNOWN_INPUTS,
    JobRequest,
    SubmitPlan,
    SubmitterInputError,
    plan_submission,
)

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

__all__ = ["SubmitterInputError", "handler"]

log = get_logger("batchbridge.submitter")


class SubmitError(RuntimeError):
    """Some SubmitJob calls failed after retries; running the step again resumes."""


@cache
def _default_batch() -> BatchClient:
    return boto3.client("batch", config=CLIENT_CONFIG)


def handler(
    event: Any,
    context: object,
    *,
    batch: BatchClient | None = None,
    settings: Settings | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> SubmitterResult:
    """Lambda entry point; the keyword arguments are for tests."""
    settings = settings or Settings.from_env()
    plan = plan_submission(event, settings)
    unknown = sorted(set(event) - KNOWN_INPUTS) if isinstance(event, dict) else []
    batch = batch or _default_batch()

    existing = _already_submitted(batch, plan, retry)
    to_submit = [job for job in plan.jobs if job.name not in existing]
    submitted = _submit_all(batch, plan, to_submit, settings.submit_concurrency, retry)
    ids = [existing.get(job.name) or submitted[job.name] for job in plan.jobs]
    log.info(
        "submitted",
        extra={
            "job_queue": plan.job_queue,
            "job_definition": plan.job_definition,
            "jobs": len(ids),
            "array_size": plan.array_size,
            "submitted": len(submitted),
            "reused": len(plan.jobs) - len(submitted),
            "ignored_inputs": unknown,
        },
    )
    return {"statusCode": 200, "jobIds": join_job_ids(ids), "jobCount": str(len(ids))}


def _already_submitted(batch: BatchClient, plan: SubmitPlan, retry: RetryPolicy) -> dict[str, str]:
    """Job name → id of this execution's jobs already in the queue (the newest per name)."""
    if plan.lookup_pattern is None:
        return {}
    wanted = {job.name for job in plan.jobs}
    newest: dict[str, tuple[int, str]] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "jobQueue": plan.job_queue,
            "filters": [{"name": "JOB_NAME", "values": [plan.lookup_pattern]}],
        }
        if token:
            kwargs["nextToken"] = token
        try:
            page = retry.call(batch.list_jobs, **kwargs)
        except ClientError as exc:
            if not exc.response.get("Error", {}).get("Code", "").startswith("AccessDenied"):
                raise
            raise SubmitError(
                "the submitter may not call batch:ListJobs, which it needs to find the jobs an "
                "earlier run of this step submitted; grant batch:ListJobs (Resource '*') to its "
                "role, or drop the 'execution_id' input to submit without that check"
            ) from exc
        for summary in page.get("jobSummaryList", []):
            name, job_id = summary["jobName"], summary["jobId"]
            # Array children share the parent's name; their ids are "<parent>:<index>".
            if name not in wanted or ":" in job_id:
                continue
            created = int(summary.get("createdAt", 0))
            if name not in newest or created > newest[name][0]:
                newest[name] = (created, job_id)
        token = page.get("nextToken")
        if not token:
            break
    return {name: job_id for name, (_, job_id) in newest.items()}


def _submit_all(
    batch: BatchClient,
    plan: SubmitPlan,
    jobs: list[JobRequest],
    concurrency: int,
    retry: RetryPolicy,
) -> dict[str, str]:
    if not jobs:
        return {}

    def submit(job: JobRequest) -> str:
        kwargs: dict[str, Any] = {
            "jobName": job.name,
            "jobQueue": plan.job_queue,
            "jobDefinition": plan.job_definition,
            "parameters": dict(job.parameters),
        }
        if plan.array_size is not None:
            kwargs["arrayProperties"] = {"size": plan.array_size}
        return retry.call(batch.submit_job, **kwargs)["jobId"]

    results: dict[str, str] = {}
    errors: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs))) as pool:
        futures = {job.name: pool.submit(submit, job) for job in jobs}
        for name, future in futures.items():
            exc = future.exception()
            if exc is None:
                results[name] = future.result()
            else:
                errors.append((name, exc))
    if errors:
        name, first = errors[0]
        raise SubmitError(
            f"{len(errors)} of {len(jobs)} SubmitJob calls failed (first: {name}: {first}); "
            f"{len(results)} were submitted. Retry the step: with 'execution_id' set it reuses "
            "the submitted jobs and submits only the rest"
        ) from first
    return results
