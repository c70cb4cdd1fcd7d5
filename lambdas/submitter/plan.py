"""Validate the submitter's inputs into a plan, before a single job is submitted.

Every check that can fail runs here, so a bad input fails the LambdaStep with a message that
names the input, its value and the fix, and nothing reaches AWS Batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from lambdas.settings import BATCH_MAX_ARRAY_SIZE, ENV_JOB_DEFINITION, ENV_JOB_QUEUE, Settings

DEFAULT_PREFIX: Final = "batchbridge"
#: Batch job names: up to 128 letters, digits, hyphens and underscores, alphanumeric first.
JOB_NAME_MAX: Final = 128
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_BATCH_ARN = re.compile(r"^arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:[a-z-]+/\S+$")
_JOB_DEFINITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}(:[1-9]\d*)?$")
# Bucket names: 3-63 lowercase letters, digits, dots and hyphens; the key part is free-form.
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")
#: The suffix the prefix must leave room for: "-" + 12 execution chars + "-" + 4 digits.
_SUFFIX_CHARS: Final = 1 + 12 + 1 + 5  # "-" key "-" index (up to 10000)
KNOWN_INPUTS: Final = frozenset(
    {
        "input_uri",
        "output_uri",
        "max_jobs",
        "job_queue",
        "job_definition",
        "job_name_prefix",
        "parameters",
        "array_size",
        "execution_id",
    }
)


class SubmitterInputError(ValueError):
    """A submitter input that cannot work; the message names the input, its value and the fix."""


@dataclass(frozen=True)
class JobRequest:
    name: str
    parameters: Mapping[str, str]


@dataclass(frozen=True)
class SubmitPlan:
    job_queue: str
    job_definition: str
    jobs: tuple[JobRequest, ...]
    #: Set for one array job of this many children (then ``jobs`` holds exactly one request).
    array_size: int | None = None
    #: The ``JOB_NAME`` filter that finds this execution's earlier submissions, when known.
    lookup_pattern: str | None = None


def _given(event: Mapping[str, Any], name: str) -> bool:
    # Pipelines pass unused parameters as "" or null; those count as not given.
    return event.get(name) not in (None, "")


def _count(event: Mapping[str, Any], name: str, low: int, high: int, why: str) -> int:
    value = event[name]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise SubmitterInputError(
            f"input '{name}' must be a whole number, got {value!r} ({type(value).__name__})"
        )
    if not low <= value <= high:
        raise SubmitterInputError(
            f"input '{name}' is {value}; it must be between {low} and {high} ({why})"
        )
    return value


def _s3_uri(event: Mapping[str, Any], name: str) -> str:
    if not _given(event, name):
        raise SubmitterInputError(
            f"input '{name}' is missing; pass an S3 URI such as s3://my-bucket/prefix"
        )
    value = event[name]
    if not isinstance(value, str) or not _S3_URI.match(value.strip()):
        raise SubmitterInputError(
            f"input '{name}' is {value!r}; it must be an S3 URI such as s3://my-bucket/prefix "
            "(lowercase bucket name, no spaces)"
        )
    return value.strip().rstrip("/")


def _batch_resource(
    event: Mapping[str, Any], name: str, default: str | None, env: str, pattern: re.Pattern[str]
) -> str:
    value = event.get(name) if _given(event, name) else default
    if value is None:
        raise SubmitterInputError(
            f"input '{name}' is missing and {env} is not set; pass '{name}' or set {env} "
            "on the submitter Lambda"
        )
    if not isinstance(value, str) or not (pattern.match(value) or _BATCH_ARN.match(value)):
        raise SubmitterInputError(
            f"input '{name}' is {value!r}; it must be a Batch {name.replace('_', ' ')} name "
            "(letters, digits, - and _, up to 128) or its ARN"
        )
    return value


def _prefix(event: Mapping[str, Any]) -> str:
    value = event.get("job_name_prefix") if _given(event, "job_name_prefix") else DEFAULT_PREFIX
    limit = JOB_NAME_MAX - _SUFFIX_CHARS
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > limit:
        raise SubmitterInputError(
            f"input 'job_name_prefix' is {value!r}; Batch job names allow letters, digits, "
            f"- and _ and must start with a letter or digit; keep the prefix to {limit} chars"
        )
    return value


def _execution_key(event: Mapping[str, Any]) -> str | None:
    if not _given(event, "execution_id"):
        return None
    value = event["execution_id"]
    key = "".join(c for c in value if c.isalnum())[:12] if isinstance(value, str) else ""
    if not key:
        raise SubmitterInputError(
            f"input 'execution_id' is {value!r}; pass the pipeline execution id "
            "(ExecutionVariables.PIPELINE_EXECUTION_ID), or leave it out"
        )
    return key


def _parameters(event: Mapping[str, Any], cap: int) -> list[dict[str, str]]:
    value = event["parameters"]
    if not isinstance(value, list) or not value:
        raise SubmitterInputError(
            f"input 'parameters' must be a non-empty list of objects, one per job, got {value!r}"
        )
    if len(value) > cap:
        raise SubmitterInputError(
            f"input 'parameters' has {len(value)} entries; at most {cap} jobs are allowed "
            "(BATCHBRIDGE_MAX_JOBS)"
        )
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in item.items()
        ):
            raise SubmitterInputError(
                f"input 'parameters'[{index}] is {item!r}; each entry must be an object of "
                "string names to string values (Batch parameters are strings)"
            )
    return value


def plan_submission(event: Any, settings: Settings) -> SubmitPlan:
    """Check every input and return what to submit, or raise :class:`SubmitterInputError`."""
    if not isinstance(event, dict):
        raise SubmitterInputError(
            f"the submitter's event must be a JSON object of inputs, got {type(event).__name__}"
        )
    job_queue = _batch_resource(event, "job_queue", settings.job_queue, ENV_JOB_QUEUE, _NAME)
    job_definition = _batch_resource(
        event, "job_definition", settings.job_definition, ENV_JOB_DEFINITION, _JOB_DEFINITION
    )
    prefix = _prefix(event)
    key = _execution_key(event)
    stem = f"{prefix}-{key}" if key else prefix
    cap = settings.max_jobs
    cap_why = "BATCHBRIDGE_MAX_JOBS"

    if _given(event, "array_size"):
        size = _count(event, "array_size", 2, min(cap, BATCH_MAX_ARRAY_SIZE), f"Batch, {cap_why}")
        if _given(event, "parameters"):
            raise SubmitterInputError(
                "inputs 'array_size' and 'parameters' conflict: an array job's children share "
                "one set of parameters; drop 'parameters' or 'array_size'"
            )
        if _given(event, "max_jobs") and _count(event, "max_jobs", 1, cap, cap_why) != size:
            raise SubmitterInputError(
                f"inputs 'array_size' ({size}) and 'max_jobs' ({event['max_jobs']!r}) disagree; "
                "drop 'max_jobs' or make them equal"
            )
        params = {
            "s3Input": _s3_uri(event, "input_uri"),
            "s3Output": _s3_uri(event, "output_uri"),
        }
        return SubmitPlan(
            job_queue,
            job_definition,
            (JobRequest(stem, params),),
            array_size=size,
            lookup_pattern=stem if key else None,
        )

    if _given(event, "parameters"):
        for conflicting in ("input_uri", "output_uri"):
            if _given(event, conflicting):
                raise SubmitterInputError(
                    f"inputs 'parameters' and '{conflicting}' conflict: explicit parameters "
                    f"replace the generated s3Input/s3Output; drop one of them"
                )
        explicit = _parameters(event, cap)
        if _given(event, "max_jobs"):
            wanted = _count(event, "max_jobs", 1, cap, cap_why)
            if wanted != len(explicit):
                raise SubmitterInputError(
                    f"input 'max_jobs' is {wanted} but 'parameters' has {len(explicit)} entries; "
                    "drop 'max_jobs' or make them equal"
                )
        per_job = explicit
    else:
        if not _given(event, "max_jobs"):
            raise SubmitterInputError(
                "input 'max_jobs' is missing; pass the number of jobs (with input_uri and "
                "output_uri), or 'parameters' (a list, one per job), or 'array_size'"
            )
        count = _count(event, "max_jobs", 1, cap, cap_why)
        input_uri = _s3_uri(event, "input_uri")
        output_uri = _s3_uri(event, "output_uri")
        per_job = [
            {
                "s3Input": f"{input_uri}/file_{i:02d}.json",
                "s3Output": f"{output_uri}/output_{i:02d}.json",
            }
            # Numbered from 1 as in the tutorial: file_01 … file_NN.
            for i in range(1, count + 1)
        ]
    # Job i handles file_i, so a job's name says which input it copies.
    jobs = tuple(JobRequest(f"{stem}-{i:04d}", p) for i, p in enumerate(per_job, start=1))
    return SubmitPlan(job_queue, job_definition, jobs, lookup_pattern=f"{stem}-*" if key else None)
