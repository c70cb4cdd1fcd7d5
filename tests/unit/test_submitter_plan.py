"""plan_submission(): what the submitter will submit, decided before any AWS call."""

from __future__ import annotations

import re

import pytest

from lambdas.settings import Settings
from lambdas.submitter.plan import SubmitterInputError, plan_submission

SETTINGS = Settings(job_queue="q", job_definition="d")
TUTORIAL = {"input_uri": "s3://bucket/in/", "output_uri": "s3://bucket/out", "max_jobs": 3}
BATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def test_tutorial_inputs_without_execution_id() -> None:
    plan = plan_submission(TUTORIAL, SETTINGS)
    assert [job.name for job in plan.jobs] == [
        "batchbridge-0001",
        "batchbridge-0002",
        "batchbridge-0003",
    ]
    # Numbered from 1, as the tutorial's files are: job 0003 copies file_03.
    assert dict(plan.jobs[2].parameters) == {
        "s3Input": "s3://bucket/in/file_03.json",
        "s3Output": "s3://bucket/out/output_03.json",
    }
    assert plan.lookup_pattern is None  # nothing identifies an earlier run
    assert (plan.job_queue, plan.job_definition, plan.array_size) == ("q", "d", None)


def test_execution_id_makes_names_deterministic_and_searchable() -> None:
    event = {**TUTORIAL, "execution_id": "ab-cd:ef0123456789xyz", "job_name_prefix": "copy"}
    plan = plan_submission(event, SETTINGS)
    assert plan.jobs[0].name == "copy-abcdef012345-0001"
    assert plan.lookup_pattern == "copy-abcdef012345-*"
    assert plan_submission(event, SETTINGS) == plan


def test_longest_prefix_still_makes_valid_batch_names() -> None:
    event = {**TUTORIAL, "max_jobs": 10_000, "execution_id": "x" * 40, "job_name_prefix": "p" * 109}
    plan = plan_submission(event, SETTINGS)
    assert all(BATCH_NAME.match(job.name) for job in (plan.jobs[0], plan.jobs[-1]))
    assert len(plan.jobs[-1].name) == 128


def test_numbers_as_strings_and_blank_inputs_are_accepted() -> None:
    # Pipeline parameters often arrive as strings, and unused ones as "" or null.
    event = {**TUTORIAL, "max_jobs": "2", "array_size": "", "parameters": None, "job_queue": ""}
    plan = plan_submission(event, SETTINGS)
    assert len(plan.jobs) == 2 and plan.job_queue == "q"


def test_inputs_override_the_environment_defaults() -> None:
    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/other"
    plan = plan_submission({**TUTORIAL, "job_queue": arn, "job_definition": "d:7"}, SETTINGS)
    assert (plan.job_queue, plan.job_definition) == (arn, "d:7")


def test_array_job_plan() -> None:
    event = {**TUTORIAL, "max_jobs": None, "array_size": 500, "execution_id": "e1"}
    plan = plan_submission(event, SETTINGS)
    assert plan.array_size == 500 and len(plan.jobs) == 1
    assert plan.jobs[0].name == "batchbridge-e1" and plan.lookup_pattern == "batchbridge-e1"
    assert dict(plan.jobs[0].parameters) == {
        "s3Input": "s3://bucket/in",
        "s3Output": "s3://bucket/out",
    }


def test_the_cap_comes_from_the_settings() -> None:
    with pytest.raises(SubmitterInputError, match="between 1 and 2"):
        plan_submission(TUTORIAL, Settings(job_queue="q", job_definition="d", max_jobs=2))
    with pytest.raises(SubmitterInputError, match="at most 2 jobs"):
        plan_submission(
            {"parameters": [{"a": "1"}] * 3},
            Settings(job_queue="q", job_definition="d", max_jobs=2),
        )


def test_event_must_be_an_object() -> None:
    with pytest.raises(SubmitterInputError, match="JSON object"):
        plan_submission(["max_jobs", 3], SETTINGS)


def test_error_is_a_value_error_for_callers_that_catch_those() -> None:
    assert issubclass(SubmitterInputError, ValueError)
