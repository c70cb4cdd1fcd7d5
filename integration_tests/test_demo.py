"""`make demo` as a user runs it: its own process, its own embedded environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--jobs", "3", *args],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
    )


def test_the_demo_runs_the_loop_and_checks_the_outputs() -> None:
    run = _demo()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "execution Succeeded" in run.stdout
    assert "all 3 output files exist and equal their inputs" in run.stdout
    assert "monitor: SUCCEED" in run.stdout


def test_the_failing_demo_fails_the_pipeline_naming_the_job() -> None:
    run = _demo("--fail")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "execution Failed" in run.stdout
    assert "1 of 3 jobs failed" in run.stdout and "-0003 exit 1" in run.stdout
