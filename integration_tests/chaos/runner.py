"""Carry out chaos plans against a deployed loop, many at once, and record what happened.

Everything is observed from the outside: the SageMaker API (execution and step status),
Batch's DescribeJobs, the queues' depth, and a read-only tap on the endpoint that sees every
callback answer SageMaker accepted. Faults go in through the environment's control path.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks import loop
from benchmarks.tap import Tap
from integration_tests.chaos.plan import Fault, Plan, Timing
from services.environment import LocalEnvironment

#: Most faults of one operation pending at once. The Lambdas retry 5 times within an
#: invocation; more pending faults than that would only measure the injector, not the loop.
MAX_PENDING_PER_OPERATION = 3


@dataclass
class RunRecord:
    plan: Plan
    arn: str = ""
    started: float = 0.0
    #: Every terminal status seen, in order, from the first until the end of the campaign.
    terminal_seen: list[str] = field(default_factory=list)
    ended: float | None = None
    stop_sent: float | None = None
    stop_acked: float | None = None
    stop_refused: str = ""
    job_ids: list[str] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def final(self) -> str:
        return self.terminal_seen[-1] if self.terminal_seen else "(not ended)"


class Campaign:
    """Runs plans against one deployed batchbridge in one embedded environment."""

    def __init__(self, env: LocalEnvironment, side: loop.Side, timing: Timing, tap: Tap) -> None:
        self.env, self.side, self.timing, self.tap = env, side, timing, tap
        self.control = loop.Control(env.endpoint)
        self.sm = loop.client(env, "sagemaker")
        self.batch = loop.client(env, "batch")
        self.sqs = loop.client(env, "sqs")
        self._lock = threading.Lock()
        self._added: Counter[str] = Counter()

    # --- one run ---------------------------------------------------------------------------

    def run(self, plan: Plan) -> RunRecord:
        record = RunRecord(plan)
        try:
            self._run(plan, record)
        except Exception as exc:  # the harness failing is reported, never hidden
            record.error = f"{type(exc).__name__}: {exc}"
        return record

    def _run(self, plan: Plan, record: RunRecord) -> None:
        for index, job in enumerate(plan.jobs, start=1):
            self.control.script(
                {
                    "jobNamePrefix": loop.job_name(plan.prefix, index),
                    "durationSeconds": job.duration,
                    "exitCode": job.exit_code,
                }
            )
        record.started = time.time()
        record.arn = loop.start_run(self.sm, self.side.pipeline, plan.prefix, jobs=len(plan.jobs))
        pending = list(plan.faults)
        limit = record.started + self.timing.max_wait + self.timing.poll_ceiling + 60
        while time.time() < limit:
            now = time.time() - record.started
            while pending and pending[0].at <= now:
                self._apply(pending.pop(0), record)
            described = self.sm.describe_pipeline_execution(PipelineExecutionArn=record.arn)
            status = described["PipelineExecutionStatus"]
            if status in loop.TERMINAL:
                record.terminal_seen.append(status)
                # The service's own end time: the harness's polling may lag under load.
                record.ended = described["LastModifiedTime"].timestamp()
                break
            time.sleep(0.25)
        for fault in pending:  # the run ended first
            record.skipped.append(fault.describe())

    def _apply(self, fault: Fault, record: RunRecord) -> None:
        if fault.kind == "stop":
            record.stop_sent = time.time()
            try:
                self.sm.stop_pipeline_execution(PipelineExecutionArn=record.arn)
                record.stop_acked = time.time()
            except self.sm.exceptions.ClientError as exc:
                record.stop_refused = str(exc)
            record.applied.append(fault.describe())
            return
        with self._lock:
            if not self._room_for(fault):
                record.skipped.append(fault.describe())
                return
            if fault.kind == "api":
                self.control.fault(fault.service, fault.operation, fault.error, fault.count)
                self._added[f"{fault.service}:{fault.operation}"] += fault.count
            elif fault.kind == "crash":
                self.control.crash(self.side.monitor, fault.error)
            elif fault.kind == "duplicate":
                self.control.duplicate(self.side.queue_url)
        record.applied.append(fault.describe())

    def _room_for(self, fault: Fault) -> bool:
        if fault.kind == "api":
            key = f"{fault.service}:{fault.operation}"
            used = sum(n for k, n in self.control.injected().items() if k.startswith(key + ":"))
            return self._added[key] - used + fault.count <= MAX_PENDING_PER_OPERATION
        if fault.kind == "crash":
            pending = self.control.request("GET", "lambda/faults")["crash"]
            return not pending
        return True

    # --- the campaign ----------------------------------------------------------------------

    def run_all(self, plans: list[Plan], concurrency: int) -> list[RunRecord]:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="chaos") as pool:
            return list(pool.map(self.run, plans))

    def settle(self, records: list[RunRecord]) -> dict[str, Any]:
        """After every run ended: wait for the queues to drain, then read the final state."""
        self.control.clear_faults()
        queues = [u for u in (self.side.queue_url, self.side.dlq_url) if u]
        deadline = time.time() + self.timing.poll_ceiling + self.timing.visibility + 20
        depth = {u: loop.queue_depth(self.sqs, u) for u in queues}
        while any(depth.values()) and time.time() < deadline:
            time.sleep(0.5)
            depth = {u: loop.queue_depth(self.sqs, u) for u in queues}
        leftovers = self._peek(queues) if any(depth.values()) else []
        # Terminated jobs reach FAILED within a few status steps.
        time.sleep(1.0)
        for record in records:
            if not record.arn:
                continue
            record.terminal_seen.append(loop.status(self.sm, record.arn))
            record.steps = loop.steps(self.sm, record.arn)
            record.job_ids = loop.job_ids_of(self.sm, record.arn)
        jobs = {}
        all_ids = [i for r in records for i in r.job_ids]
        for job in loop.describe_jobs(self.batch, all_ids):
            jobs[job["jobId"]] = job
        return {"queue_depth": depth, "leftovers": leftovers, "jobs": jobs}

    def _peek(self, queues: list[str]) -> list[dict[str, Any]]:
        """What is still on the queues (visible ones only; in-flight ones are counted)."""
        found = []
        for url in queues:
            messages = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            found += [{"queue": url, "body": m["Body"]} for m in messages]
        return found
