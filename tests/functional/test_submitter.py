"""The submitter handler against moto's Batch."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from aws_world import World, client_error, load_event

from lambdas.retry import NO_WAIT_RETRY
from lambdas.settings import Settings
from lambdas.submitter.handler import SubmitError, handler
from lambdas.submitter.plan import SubmitterInputError

pytestmark = pytest.mark.timeout(60)


def submit(world: World, event: dict[str, Any], **settings: Any) -> Any:
    return handler(
        event,
        None,
        batch=world.batch,  # type: ignore[arg-type]
        settings=replace(world.settings, **settings),
        retry=NO_WAIT_RETRY,
    )


def jobs_in_queue(world: World) -> list[dict[str, Any]]:
    pages = world.batch._inner.get_paginator("list_jobs").paginate(
        jobQueue=world.job_queue, filters=[{"name": "JOB_NAME", "values": ["*"]}]
    )
    return [job for page in pages for job in page["jobSummaryList"] if ":" not in job["jobId"]]


def test_tutorial_inputs_submit_max_jobs_with_s3_parameters(world: World) -> None:
    event = load_event("submitter_tutorial.json")

    result = submit(world, event, job_queue=world.job_queue, job_definition=world.job_definition)

    ids = result["jobIds"].split()
    assert result["statusCode"] == 200 and result["jobCount"] == "3" and len(ids) == 3
    described = world.batch._inner.describe_jobs(jobs=ids)["jobs"]
    params = {job["jobId"]: job["parameters"] for job in described}
    assert params[ids[0]] == {
        "s3Input": "s3://batchbridge-demo/input/file_01.json",
        "s3Output": "s3://batchbridge-demo/output/output_01.json",
    }


def test_second_run_for_the_same_execution_submits_nothing_new(world: World) -> None:
    event = load_event("submitter_execution.json")

    first = submit(world, event)
    calls_after_first = len(world.batch.calls_to("submit_job"))
    second = submit(world, event)

    assert calls_after_first == 4
    assert len(world.batch.calls_to("submit_job")) == 4  # none in the second run
    assert second["jobIds"] == first["jobIds"]
    names = sorted(job["jobName"] for job in jobs_in_queue(world))
    assert names == [f"copy-4q9w8e7r6t5y-{i:04d}" for i in range(1, 5)]


def test_a_rerun_after_a_partial_submission_submits_only_the_rest(world: World) -> None:
    event = load_event("submitter_execution.json")
    real_submit = world.batch._inner.submit_job

    def submit_unless_job_2(**kwargs: Any) -> Any:
        if kwargs["jobName"].endswith("-0002"):
            raise client_error("InternalError", 500, "SubmitJob")
        return real_submit(**kwargs)

    world.batch._inner.submit_job = submit_unless_job_2

    with pytest.raises(SubmitError, match="1 of 4 SubmitJob calls failed"):
        submit(world, event)
    assert len(jobs_in_queue(world)) == 3
    world.batch._inner.submit_job = real_submit
    result = submit(world, event)

    assert len(jobs_in_queue(world)) == 4
    assert [c["jobName"] for c in world.batch.calls_to("submit_job")][-1].endswith("-0002")
    assert result["jobCount"] == "4"
    assert len(set(result["jobIds"].split())) == 4


def test_a_different_execution_gets_its_own_jobs(world: World) -> None:
    event = load_event("submitter_execution.json")
    submit(world, event)
    submit(world, {**event, "execution_id": "zzzzzzzzzzzz9"})
    assert len(jobs_in_queue(world)) == 8


def test_array_size_submits_one_array_job(world: World) -> None:
    event = {**load_event("submitter_execution.json"), "array_size": 50, "max_jobs": ""}

    result = submit(world, event)

    (call,) = world.batch.calls_to("submit_job")
    assert call["arrayProperties"] == {"size": 50}
    assert call["parameters"] == {
        "s3Input": "s3://batchbridge-demo/input",
        "s3Output": "s3://batchbridge-demo/output",
    }
    assert result["jobCount"] == "1" and ":" not in result["jobIds"]
    submit(world, event)  # the rerun finds the parent, not its children
    assert len(world.batch.calls_to("submit_job")) == 1


def test_explicit_parameters_one_job_each(world: World) -> None:
    event = {
        "job_queue": world.job_queue,
        "job_definition": world.job_definition,
        "parameters": [{"day": "2026-11-01"}, {"day": "2026-11-02"}],
    }

    result = submit(world, event)

    assert result["jobCount"] == "2"
    assert [c["parameters"] for c in world.batch.calls_to("submit_job")] == event["parameters"]


def test_throttled_submits_are_retried(world: World) -> None:
    world.batch.fail_next("submit_job", 3)
    result = submit(world, load_event("submitter_execution.json"))
    assert result["jobCount"] == "4" and len(jobs_in_queue(world)) == 4


def test_large_fan_out_submits_concurrently_within_the_bound(world: World) -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    real_submit = world.batch._inner.submit_job

    def slow_submit(**kwargs: Any) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.01)
        try:
            return real_submit(**kwargs)
        finally:
            with lock:
                in_flight -= 1

    world.batch._inner.submit_job = slow_submit
    event = {**load_event("submitter_execution.json"), "max_jobs": 60}

    result = submit(world, event, submit_concurrency=8)

    assert result["jobCount"] == "60"
    assert 1 < peak <= 8


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("max_jobs zero", {"max_jobs": 0}, "'max_jobs' is 0"),
    ("max_jobs above cap", {"max_jobs": 11}, "between 1 and 10"),
    ("max_jobs a float", {"max_jobs": 2.5}, "'max_jobs' must be a whole number"),
    ("max_jobs a bool", {"max_jobs": True}, "'max_jobs' must be a whole number"),
    ("max_jobs missing", {"max_jobs": None}, "'max_jobs' is missing"),
    ("input_uri not s3", {"input_uri": "https://bucket/x"}, "'input_uri' is 'https://bucket/x'"),
    ("output_uri bad bucket", {"output_uri": "s3://My_Bucket/x"}, "'output_uri'"),
    ("input_uri missing", {"input_uri": None}, "'input_uri' is missing"),
    ("prefix with space", {"job_name_prefix": "my job"}, "'job_name_prefix'"),
    ("prefix too long", {"job_name_prefix": "a" * 111}, "'job_name_prefix'"),
    ("queue name bad", {"job_queue": "queue with spaces"}, "'job_queue'"),
    ("definition bad", {"job_definition": "def:rev"}, "'job_definition'"),
    ("execution_id not a string", {"execution_id": 7}, "'execution_id'"),
    ("array too small", {"array_size": 1, "max_jobs": None}, "'array_size' is 1"),
    ("array and max_jobs disagree", {"array_size": 5}, "disagree"),
    (
        "parameters not a list",
        {"parameters": {"a": "b"}, "input_uri": None, "output_uri": None, "max_jobs": None},
        "'parameters' must be",
    ),
    (
        "parameter value not str",
        {"parameters": [{"a": 1}], "input_uri": None, "output_uri": None, "max_jobs": None},
        "'parameters'[0]",
    ),
    (
        "parameters with input_uri",
        {"parameters": [{"a": "b"}], "input_uri": None, "max_jobs": None},
        "conflict",
    ),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_rejected_with_zero_jobs_submitted(
    world: World, case: str, change: dict[str, Any], message: str
) -> None:
    event = {**load_event("submitter_execution.json"), **change}

    with pytest.raises(
        SubmitterInputError,
    ) as raised:
        submit(world, event, max_jobs=10)

    assert message in str(raised.value)
    assert world.batch.calls == []  # validated before any AWS call
    assert jobs_in_queue(world) == []


def test_missing_queue_names_the_input_and_the_variable(world: World) -> None:
    event = load_event("submitter_tutorial.json")
    with pytest.raises(SubmitterInputError, match="BATCHBRIDGE_JOB_QUEUE"):
        submit(world, event)
    assert jobs_in_queue(world) == []


def test_defaults_come_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHBRIDGE_JOB_QUEUE", world.job_queue)
    monkeypatch.setenv("BATCHBRIDGE_JOB_DEFINITION", world.job_definition)
    result = handler(
        load_event("submitter_tutorial.json"), None, batch=world.batch, retry=NO_WAIT_RETRY
    )
    assert result["jobCount"] == "3"
    assert Settings.from_env().job_queue == world.job_queue


def test_missing_list_jobs_permission_is_explained_before_any_submit(world: World) -> None:
    world.batch.fail_next("list_jobs", 1, code="AccessDeniedException", status=403)
    with pytest.raises(SubmitError, match="grant batch:ListJobs"):
        submit(world, load_event("submitter_execution.json"))
    assert world.batch.calls_to("submit_job") == []
