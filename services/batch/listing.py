"""ListJobs' selection rules: filters and page tokens, as pure functions of a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.batch.model import Job
from services.protocol import AwsError


def client_error(message: str) -> AwsError:
    return AwsError("ClientException", message, 400)


def page_offset(token: Any) -> int:
    if not token:
        return 0
    try:
        return max(0, int(str(token).removeprefix("bb:")))
    except ValueError as exc:
        raise client_error(f"nextToken {token!r} is not one this service returned") from exc


def _name_glob(pattern: str) -> Callable[[str], bool]:
    """ListJobs filter values: case-insensitive, with an optional trailing ``*``."""
    lowered = pattern.lower()
    if lowered.endswith("*"):
        return lambda value: value.lower().startswith(lowered[:-1])
    return lambda value: value.lower() == lowered


def filter_predicate(spec: dict[str, Any]) -> Callable[[Job], bool]:
    name = spec.get("name")
    values = spec.get("values") or []
    if not values:
        raise client_error(f"ListJobs filter {name!r} needs one value")
    value = str(values[0])
    if name == "JOB_NAME":
        match = _name_glob(value)
        return lambda job: match(job.name)
    if name == "JOB_DEFINITION":
        match = _name_glob(value)
        return lambda job: any(
            match(v)
            for v in (
                job.definition_arn,
                job.definition_name,
                job.definition_arn.rsplit("/", 1)[-1],
            )
        )
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        try:
            limit = int(value)
        except ValueError as exc:
            raise client_error(f"{name} takes epoch milliseconds, not {value!r}") from exc
        if name == "BEFORE_CREATED_AT":
            return lambda job: job.created_at < limit
        return lambda job: job.created_at > limit
    raise client_error(
        f"ListJobs filter name {name!r} is not one of JOB_NAME, JOB_DEFINITION, "
        "BEFORE_CREATED_AT, AFTER_CREATED_AT"
    )
