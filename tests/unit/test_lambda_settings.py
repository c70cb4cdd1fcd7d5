"""Settings from the environment, and the receive bound the deploy helper builds on."""

from __future__ import annotations

import math

import pytest

from lambdas.settings import (
    SQS_MAX_CHANGED_VISIBILITY_SECONDS,
    Settings,
    SettingsError,
    backoff_lower_bound,
    receives_needed,
)


def test_defaults_work_with_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.poll_floor_seconds, settings.poll_ceiling_seconds) == (30, 900)
    assert settings.max_wait_seconds == 3 * 24 * 3600
    assert settings.terminate_on_failure is True
    assert settings.unknown_job_grace_seconds == 60
    assert settings.mode == "monitor" and settings.dlq_url is None
    assert (settings.max_jobs, settings.submit_concurrency) == (10_000, 16)


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "BATCHBRIDGE_POLL_FLOOR_SECONDS": "5",
            "BATCHBRIDGE_POLL_CEILING_SECONDS": "60",
            "BATCHBRIDGE_MAX_WAIT_SECONDS": "3600",
            "BATCHBRIDGE_TERMINATE_ON_FAILURE": "false",
            "BATCHBRIDGE_UNKNOWN_JOB_GRACE_SECONDS": "0",
            "BATCHBRIDGE_DLQ_URL": "http://localhost:4566/000000000000/dlq",
            "BATCHBRIDGE_MODE": "Reaper",
            "BATCHBRIDGE_JOB_QUEUE": "q",
            "BATCHBRIDGE_JOB_DEFINITION": "d:3",
            "BATCHBRIDGE_MAX_JOBS": "100",
            "BATCHBRIDGE_SUBMIT_CONCURRENCY": "4",
        }
    )
    assert settings == Settings(
        poll_floor_seconds=5,
        poll_ceiling_seconds=60,
        max_wait_seconds=3600,
        terminate_on_failure=False,
        unknown_job_grace_seconds=0,
        dlq_url="http://localhost:4566/000000000000/dlq",
        mode="reaper",
        job_queue="q",
        job_definition="d:3",
        max_jobs=100,
        submit_concurrency=4,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCHBRIDGE_POLL_FLOOR_SECONDS", "thirty"),
        ("BATCHBRIDGE_POLL_FLOOR_SECONDS", "0"),
        ("BATCHBRIDGE_POLL_CEILING_SECONDS", "10"),  # below the floor
        ("BATCHBRIDGE_POLL_CEILING_SECONDS", "43201"),  # above SQS's 12 h
        ("BATCHBRIDGE_MAX_WAIT_SECONDS", "1209600"),  # SQS's 14-day retention
        ("BATCHBRIDGE_TERMINATE_ON_FAILURE", "maybe"),
        ("BATCHBRIDGE_UNKNOWN_JOB_GRACE_SECONDS", "-1"),
        ("BATCHBRIDGE_MODE", "janitor"),
        ("BATCHBRIDGE_MAX_JOBS", "10001"),
        ("BATCHBRIDGE_SUBMIT_CONCURRENCY", "0"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert variable in str(raised.value)
    assert value.lower() in str(raised.value).lower()


def test_receives_needed_for_the_defaults() -> None:
    # lower bounds: 30, 30, 60, 120, 240, then 450 each; 3 days = 259200 s
    n = receives_needed(259_200, 30, 900)
    assert n == 5 + (259_200 - 480 + 449) // 450 + 1


@pytest.mark.parametrize(
    ("max_wait", "floor", "ceiling"),
    [(60, 30, 900), (3600, 5, 60), (259_200, 30, 900), (100, 100, 100)],
)
def test_receives_needed_bounds_the_fastest_possible_schedule(
    max_wait: int, floor: int, ceiling: int
) -> None:
    n = receives_needed(max_wait, floor, ceiling)
    # The fastest schedule: every delay at its lower bound. Its receive n-1 is still before
    # the deadline or exactly at it, and receive n is past it: n receives always suffice.
    elapsed_before = [
        sum(backoff_lower_bound(a, floor, ceiling) for a in range(1, k)) for k in (n - 1, n)
    ]
    assert elapsed_before[0] < max_wait <= elapsed_before[1]


def test_receives_needed_counts_the_visibility_the_monitor_can_really_ask_for() -> None:
    # A 12-hour floor cannot be honoured: the monitor asks SQS for at most
    # SQS_MAX_CHANGED_VISIBILITY_SECONDS, so more receives fit in the wait than 43,200 s each.
    n = receives_needed(259_200, 43_200, 43_200)
    assert n == math.ceil(259_200 / SQS_MAX_CHANGED_VISIBILITY_SECONDS) + 1
