"""SubmitJob: a request and moto's queue and job definition become a :class:`Job`.

Pure apart from reading moto's Batch backend (the control plane users created through the
API or CloudFormation).
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

from services.batch.listing import client_error
from services.batch.model import Job, now_ms

_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_REF = re.compile(r"^Ref::(.+)$")


def substitute(command: list[str], parameters: dict[str, str]) -> list[str]:
    """Replace each argument that is exactly ``Ref::name`` by that parameter, as AWS does; an
    argument naming no known parameter is passed through unchanged."""
    out = []
    for arg in command:
        match = _REF.match(arg)
        out.append(parameters[match.group(1)] if match and match.group(1) in parameters else arg)
    return out


def resolve(backend: Any, region: str, queue_ref: str, definition_ref: str) -> tuple[Any, Any]:
    """The job queue and job definition a SubmitJob names, or a ClientException naming them."""
    queue = backend.get_job_queue(queue_ref)
    if queue is None:
        raise client_error(
            f"Job queue {queue_ref} does not exist in {region}. Create it first "
            "(CreateJobQueue or AWS::Batch::JobQueue)."
        )
    if queue.state != "ENABLED":
        raise client_error(f"Job queue {queue_ref} is {queue.state}, not ENABLED")
    try:
        definition = backend.get_job_definition(definition_ref)
    except ValueError:  # "name:notanumber"
        definition = None
    if definition is None or definition.status != "ACTIVE":
        raise client_error(
            f"Job definition {definition_ref} does not exist or is not ACTIVE in {region}. "
            "Use its name, name:revision or ARN (RegisterJobDefinition or "
            "AWS::Batch::JobDefinition)."
        )
    if definition.container_properties is None:
        raise client_error(
            f"Job definition {definition_ref} has no containerProperties; batchbridge's "
            "local Batch runs container jobs only (not multi-node or EKS)."
        )
    return queue, definition


def array_size(request: dict[str, Any]) -> int | None:
    size = (request.get("arrayProperties") or {}).get("size")
    if size is None:
        return None
    if not 2 <= int(size) <= 10_000:
        raise client_error(f"arrayProperties.size must be between 2 and 10,000, not {size}")
    return int(size)


def build_job(request: dict[str, Any], region: str, account_id: str, backend: Any) -> Job:
    name = str(request.get("jobName") or "")
    if not _JOB_NAME.match(name):
        raise client_error(
            f"jobName {name!r} is invalid: up to 128 letters, numbers, hyphens and "
            "underscores, starting with a letter or number"
        )
    queue, definition = resolve(backend, region, request["jobQueue"], request["jobDefinition"])
    array_size(request)  # validated before anything is created
    props: dict[str, Any] = dict(definition.container_properties)
    overrides = request.get("containerOverrides") or {}
    parameters = {**(definition.parameters or {}), **(request.get("parameters") or {})}
    command = substitute(list(overrides.get("command") or props.get("command") or []), parameters)
    environment = {e["name"]: e.get("value", "") for e in props.get("environment") or []}
    environment.update({e["name"]: e.get("value", "") for e in overrides.get("environment") or []})
    for key in ("vcpus", "memory", "instanceType", "resourceRequirements"):
        if overrides.get(key) is not None:
            props[key] = overrides[key]
    # SubmitJob's retryStrategy and timeout replace the job definition's.
    retry = request.get("retryStrategy") or definition.retry_strategy or {}
    timeout = request.get("timeout") or definition.timeout or None
    job_id = str(uuid.uuid4())
    compute_environments = getattr(queue, "environments", None) or []
    return Job(
        job_id=job_id,
        job_arn=f"arn:aws:batch:{region}:{account_id}:job/{job_id}",
        name=name,
        queue_arn=queue.arn,
        queue_name=queue.name,
        compute_environment=compute_environments[0].name if compute_environments else "",
        definition_arn=definition.arn,
        definition_name=definition.name,
        image=str(props.get("image", "")),
        command=command,
        environment=[{"name": k, "value": v} for k, v in environment.items()],
        parameters=parameters,
        container_properties=props,
        retry_strategy=dict(retry),
        timeout=dict(timeout) if timeout else None,
        tags=dict(request.get("tags") or {}),
        depends_on=list(request.get("dependsOn") or []),
        created_at=now_ms(),
    )


def job_environment(job: Job, attempt: int, endpoint: str, region: str) -> dict[str, str]:
    """What an attempt's container sees: the job's variables, then AWS Batch's own, then the
    local endpoint with fake credentials."""
    env = {e["name"]: e["value"] for e in job.environment}
    env.update(
        {
            "AWS_BATCH_JOB_ID": job.job_id,
            "AWS_BATCH_JQ_NAME": job.queue_name,
            "AWS_BATCH_CE_NAME": job.compute_environment,
            "AWS_BATCH_JOB_ATTEMPT": str(attempt),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            # Keep a host's ~/.aws config (profiles, real endpoints) out of local jobs.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    if job.array_index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_index)
    return env
