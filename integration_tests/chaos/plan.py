"""What one chaos run does, drawn from its seed alone: the jobs' fates and the faults.

Pure: the same seed gives the same plan, so a run that broke an invariant is replayed with
``python -m integration_tests.chaos --seeds <seed>``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: Outcomes an execution can end with.
SUCCEEDED, FAILED, STOPPED = "Succeeded", "Failed", "Stopped"
#: A job that never ends on its own: only the monitor's deadline or a stop ends it.
FOREVER_SECONDS = 10_000.0

#: API faults: (service, operation). Only operations the Lambdas call, so that a fault
#: exercises batchbridge's retries rather than the emulator's own plumbing.
API_TARGETS: tuple[tuple[str, str], ...] = (
    ("batch", "DescribeJobs"),
    ("batch", "TerminateJob"),
    ("batch", "SubmitJob"),
    ("sqs", "ChangeMessageVisibility"),
    ("sqs", "GetQueueAttributes"),
    ("sqs", "GetQueueUrl"),
    ("sagemaker", "SendPipelineExecutionStepSuccess"),
    ("sagemaker", "SendPipelineExecutionStepFailure"),
)


@dataclass(frozen=True)
class Timing:
    """The loop's clock for chaos runs, in real seconds (the Lambdas' settings are whole
    seconds): short enough for hundreds of runs, the same shape as the defaults."""

    poll_floor: int = 1
    poll_ceiling: int = 3
    max_wait: int = 12
    #: The queues' visibility timeout: when a message comes back after a crash.
    visibility: int = 3
    #: Allowed on top of deadline + one poll ceiling: a crash's visibility timeout, the
    #: Lambdas' bounded retries of injected faults, and the emulator's own latency.
    slack: float = 6.0


@dataclass(frozen=True)
class JobFate:
    duration: float  # seconds the (only) attempt runs
    exit_code: int  # 0 succeeds

    @property
    def forever(self) -> bool:
        return self.duration >= FOREVER_SECONDS


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the execution starts
    kind: str  # api | crash | duplicate | stop
    service: str = ""
    operation: str = ""
    error: str = ""  # throttle | 5xx; for a crash: before | after
    count: int = 1

    def describe(self) -> str:
        if self.kind == "api":
            return f"{self.service}:{self.operation}:{self.error}x{self.count}@{self.at:.1f}s"
        if self.kind == "crash":
            return f"monitor-crash-{self.error}@{self.at:.1f}s"
        return f"{self.kind}@{self.at:.1f}s"


@dataclass(frozen=True)
class Plan:
    seed: int
    jobs: tuple[JobFate, ...]
    faults: tuple[Fault, ...] = field(default=())

    @property
    def prefix(self) -> str:
        return f"chaos{self.seed}x"

    @property
    def stop_at(self) -> float | None:
        return next((f.at for f in self.faults if f.kind == "stop"), None)

    def natural_outcome(self, timing: Timing) -> str:
        """The outcome the jobs' fate calls for, without a stop: any job failing or
        outliving the deadline fails the step."""
        for job in self.jobs:
            if job.exit_code != 0 or job.duration >= timing.max_wait:
                return FAILED
        return SUCCEEDED


def make_plan(seed: int, timing: Timing) -> Plan:
    rng = random.Random(seed)
    jobs = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.12:
            jobs.append(JobFate(rng.uniform(0.2, 4.0), rng.choice((1, 2, 137))))
        elif roll < 0.22:
            jobs.append(JobFate(FOREVER_SECONDS, 0))
        else:
            jobs.append(JobFate(rng.uniform(0.2, 5.0), 0))
    faults: list[Fault] = []
    horizon = float(timing.max_wait)
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        service, operation = rng.choice(API_TARGETS)
        faults.append(
            Fault(
                rng.uniform(0, horizon / 2),
                "api",
                service,
                operation,
                rng.choice(("throttle", "5xx")),
                rng.randint(1, 3),
            )
        )
    if rng.random() < 0.3:
        faults.append(
            Fault(rng.uniform(0, horizon / 2), "crash", error=rng.choice(("before", "after")))
        )
    if rng.random() < 0.3:
        faults.append(Fault(rng.uniform(0, horizon / 2), "duplicate"))
    if rng.random() < 0.25:
        faults.append(Fault(rng.uniform(0, horizon * 0.75), "stop"))
    return Plan(seed, tuple(jobs), tuple(sorted(faults, key=lambda f: f.at)))
