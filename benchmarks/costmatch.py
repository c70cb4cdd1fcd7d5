"""Choosing batchbridge's poll settings so that it costs no more DescribeJobs than the baseline.

Pure: both designs' polling is simulated on the benchmark's own job durations, with the
monitor's real backoff function (``lambdas.monitor.decide.backoff_delay``, jitter included)
at the scaled whole-second settings the deployed monitor will use. Among poll floors and
ceilings the scaled clock can express, the pair with the lowest simulated median latency
whose simulated DescribeJobs calls do not exceed the baseline's is chosen. The measured
numbers, not these simulated ones, are what the benchmark reports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.report import median
from lambdas.monitor.decide import backoff_delay
from lambdas.settings import Settings

CEILINGS_AWS = (900, 1800, 2700, 3600)


@dataclass(frozen=True)
class Choice:
    floor_aws: int
    ceiling_aws: int
    calls: float  # simulated DescribeJobs calls per run (mean)
    median_latency_aws: float
    baseline_calls: float
    baseline_median_latency_aws: float


def baseline_polls(wait_aws: float, visibility_aws: float) -> tuple[int, float]:
    """(calls, latency) of the tutorial's monitor: a receive at once, then one per
    visibility timeout, until a receive sees the last job finished ``wait_aws`` in."""
    k = max(0, math.ceil(wait_aws / visibility_aws))
    return k + 1, k * visibility_aws - wait_aws


def batchbridge_polls(wait_aws: float, settings: Settings, scale: float, rng: random.Random):
    """(calls, latency) of batchbridge's monitor; ``settings`` in real (scaled) seconds."""
    at, calls, attempt = 0.0, 1, 1
    while at < wait_aws:
        at += backoff_delay(attempt, settings, rng.uniform) / scale
        calls += 1
        attempt += 1
    return calls, at - wait_aws


def choose(waits_aws: Sequence[float], visibility_aws: int, scale: float) -> Choice:
    step = round(1 / scale)  # the smallest setting a whole real second can express
    base = [baseline_polls(w, visibility_aws) for w in waits_aws]
    base_calls = sum(c for c, _ in base) / len(base)
    best: Choice | None = None
    for ceiling in CEILINGS_AWS:
        for floor in range(step, ceiling + 1, step):
            settings = Settings(
                poll_floor_seconds=round(floor * scale),
                poll_ceiling_seconds=round(ceiling * scale),
            )
            rng = random.Random(7)
            runs = [
                batchbridge_polls(w, settings, scale, rng) for w in waits_aws for _ in range(20)
            ]
            calls = sum(c for c, _ in runs) / len(runs)
            if calls > base_calls:
                continue
            latency = median([lat for _, lat in runs])
            if best is None or latency < best.median_latency_aws:
                best = Choice(
                    floor,
                    ceiling,
                    calls,
                    latency,
                    base_calls,
                    median([lat for _, lat in base]),
                )
    if best is None:  # polling once per visibility timeout always qualifies
        raise ValueError("no poll settings match the baseline's cost")
    return best
