"""The Batch data plane's backend: jobs, their state machine, and what moves them.

Plain Python in and out (request dicts as botocore's model names them, response dicts), so
it is testable without HTTP. One lock guards every job; one scheduler thread advances them
(``model.TRANSITIONS``); a small worker pool runs the blocking executors (process, docker).
Queues, job definitions and compute environments are moto's: read at SubmitJob.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdas.contracts import (
    FAILED,
    JOB_STATUSES,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    SUBMITTED,
    SUCCEEDED,
)
from services.batch.executors import Executor, Outcome, RunSpec, cannot_start
from services.batch.listing import client_error, filter_predicate, page_offset
from services.batch.logs import LogWriter, stream_name
from services.batch.model import (
    ARRAY_CHILD_FAILED,
    CANCELLABLE,
    CONTAINER_EXITED,
    TIMED_OUT,
    TRANSITIONS,
    Attempt,
    Job,
    now_ms,
)
from services.batch.retry import should_retry
from services.batch.scheduler import Scheduler
from services.batch.scripts import ScriptedOutcome, Scripts
from services.batch.submission import array_size, build_job, job_environment

log = logging.getLogger("batchbridge.batch")

DEFAULT_STEP_SECONDS = 0.05
DEFAULT_WORKERS = 8
MAX_DESCRIBE = 100


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


class BatchEngine:
    def __init__(
        self,
        *,
        account_id: str,
        region: str,
        endpoint: str,
        executor: Executor | None,
        log_writer: LogWriter,
        step_seconds: float | None = None,
        workers: int | None = None,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.endpoint = endpoint
        #: None: every job is simulated (scripted, or a short success by default).
        self.executor = executor
        self.logs = log_writer
        self.step = (
            step_seconds
            if step_seconds is not None
            else env_float("BATCHBRIDGE_BATCH_STEP_SECONDS", DEFAULT_STEP_SECONDS)
        )
        self.scripts = Scripts()
        self.scheduler = Scheduler()
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._top_level: list[Job] = []  # plain jobs and array parents, in submission order
        self._waiters: dict[str, list[Job]] = {}  # job id → jobs waiting for it to finish
        self.counts: Counter[str] = Counter()
        self._workers = ThreadPoolExecutor(
            max_workers=workers
            or int(os.environ.get("BATCHBRIDGE_BATCH_WORKERS", DEFAULT_WORKERS)),
            thread_name_prefix="batchbridge-job",
        )
        # Log writes of simulated jobs, off the scheduler thread.
        self._io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchbridge-joblogs")
        self._started = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.scheduler.start()
        self._started = True

    def stop(self) -> None:
        self._started = False
        self.scheduler.stop()
        with self._lock:
            running = [j.current.kill for j in self._jobs.values() if j.current and j.current.kill]
        for kill in running:
            try:
                kill()
            except Exception:
                log.exception("stopping a running job")
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._io.shutdown(wait=False, cancel_futures=True)

    @property
    def ready(self) -> bool:
        return self._started

    # --- the API ----------------------------------------------------------------------------

    def submit_job(self, request: dict[str, Any], region: str) -> dict[str, Any]:
        job = build_job(request, region, self.account_id, _moto_batch(self.account_id, region))
        with self._lock:
            unknown = [d for d in self._dependencies(job) if d not in self._jobs]
        if unknown:
            raise client_error(f"dependsOn names job(s) Batch does not know: {', '.join(unknown)}")
        size = array_size(request)
        with self._lock:
            self._add(job)
            if size is not None:
                self._add_children(job, size)
        self.scheduler.call_later(self.step, self._advance, job, SUBMITTED, 0)
        return {"jobArn": job.job_arn, "jobName": job.name, "jobId": job.job_id}

    def _add(self, job: Job) -> None:
        self._jobs[job.job_id] = job
        self.counts[job.status] += 1
        if job.parent is None:
            self._top_level.append(job)

    def _add_children(self, parent: Job, size: int) -> None:
        from dataclasses import replace

        parent.array_size = size
        parent.status_summary = Counter()
        for index in range(size):
            child_id = f"{parent.job_id}:{index}"
            child = replace(
                parent,
                job_id=child_id,
                job_arn=f"{parent.job_arn}:{index}",
                array_size=None,
                array_index=index,
                parent=parent,
                status_summary=None,
                attempts=[],
            )
            self._add(child)
            parent.status_summary[child.status] += 1

    def describe_jobs(self, job_ids: list[str]) -> dict[str, Any]:
        if len(job_ids) > MAX_DESCRIBE:
            raise client_error(
                f"DescribeJobs takes at most {MAX_DESCRIBE} job ids, not {len(job_ids)}"
            )
        with self._lock:
            # Ids Batch does not know are left out, not an error (as AWS does).
            found = [self._jobs[j] for j in job_ids if j in self._jobs]
            return {"jobs": [job.detail() for job in found]}

    def list_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        queue_ref = request.get("jobQueue")
        array_id = request.get("arrayJobId")
        if not queue_ref and not array_id and not request.get("multiNodeJobId"):
            raise client_error("ListJobs needs jobQueue, arrayJobId or multiNodeJobId")
        filters = request.get("filters") or []
        # AWS: with filters, jobStatus is ignored; without, it defaults to RUNNING.
        status = None if filters else (request.get("jobStatus") or RUNNING)
        predicates = [filter_predicate(f) for f in filters]
        max_results = max(1, min(1000, int(request.get("maxResults") or 100)))
        start = page_offset(request.get("nextToken"))
        with self._lock:
            if array_id:
                parent = self._jobs.get(array_id)
                candidates: list[Job] = (
                    [self._jobs[f"{array_id}:{i}"] for i in range(parent.array_size)]
                    if parent is not None and parent.array_size is not None
                    else []
                )
            else:
                candidates = [
                    j for j in reversed(self._top_level) if queue_ref in (j.queue_arn, j.queue_name)
                ]
            selected = [
                j
                for j in candidates
                if (status is None or j.status == status) and all(p(j) for p in predicates)
            ]
            page = selected[start : start + max_results]
            out: dict[str, Any] = {"jobSummaryList": [j.summary() for j in page]}
        if start + max_results < len(selected):
            out["nextToken"] = f"bb:{start + max_results}"
        return out

    def terminate_job(self, job_id: str, reason: str) -> None:
        self._stop_job(job_id, reason, terminate=True)

    def cancel_job(self, job_id: str, reason: str) -> None:
        self._stop_job(job_id, reason, terminate=False)

    def _stop_job(self, job_id: str, reason: str, terminate: bool) -> None:
        kills: list[Callable[[], None]] = []
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise client_error(f"Job {job_id} does not exist")
            targets = (
                [self._jobs[f"{job_id}:{i}"] for i in range(job.array_size)]
                if job.array_size is not None
                else [job]
            )
            for target in targets:
                kill = self._stop_one(target, reason, terminate)
                if kill is not None:
                    kills.append(kill)
            if job.array_size is not None:
                if terminate:
                    job.is_terminated = True
                else:
                    job.is_cancelled = True
                if job.terminal:  # every child stopped: the parent reports the reason given
                    job.status_reason = reason
        for kill in kills:  # outside the lock: a kill may block briefly
            try:
                kill()
            except Exception:
                log.exception("killing job %s", job_id)

    def _stop_one(self, job: Job, reason: str, terminate: bool) -> Callable[[], None] | None:
        if job.terminal:
            return None
        if job.status in CANCELLABLE:
            job.is_cancelled = not terminate
            job.is_terminated = terminate
            self._set_status(job, FAILED, reason)
            return None
        if not terminate:
            return None  # CancelJob leaves STARTING and RUNNING jobs alone, as AWS does
        job.is_terminated = True
        attempt = job.current
        kill = attempt.kill if attempt is not None else None
        if attempt is None:  # STARTING: no attempt yet
            self._set_status(job, FAILED, reason)
        else:
            self._finish_attempt(
                job, attempt, Outcome(exit_code=None, status_reason=reason), retry=False
            )
        return kill

    # --- the state machine --------------------------------------------------------------------

    def _set_status(self, job: Job, status: str, reason: str | None = None) -> None:
        """The one place a status changes: counters, timestamps, and the array parent."""
        old = job.status
        job.status = status
        if reason is not None:
            job.status_reason = reason
        self.counts[old] -= 1
        self.counts[status] += 1
        if job.terminal:
            job.stopped_at = now_ms()
            for waiter in self._waiters.pop(job.job_id, []):
                self.scheduler.call_later(0, self._advance, waiter, PENDING, waiter.dispatches)
        if job.parent is not None:
            self._child_changed(job.parent, job, old)
        if status == RUNNABLE and job.array_size is None:
            self._dispatch(job)

    def _child_changed(self, parent: Job, child: Job, old: str) -> None:
        assert parent.status_summary is not None
        parent.status_summary[old] -= 1
        parent.status_summary[child.status] += 1
        parent.summary_updated_at = now_ms()
        if child.terminal:
            parent.children_done += 1
            parent.children_failed += child.status == FAILED
            if parent.children_done == parent.array_size and not parent.terminal:
                if parent.children_failed:
                    self._set_status(parent, FAILED, ARRAY_CHILD_FAILED)
                else:
                    self._set_status(parent, SUCCEEDED, "All child jobs succeeded")

    def _advance(self, job: Job, expected: str, dispatch: int) -> None:
        """A scheduled step: move ``job`` one step along TRANSITIONS if nothing moved it since."""
        with self._lock:
            if job.status != expected or job.dispatches != dispatch:
                return
            target = TRANSITIONS[expected]
            if job.array_size is not None:
                # An array parent goes to PENDING and waits there for its children.
                if expected == SUBMITTED:
                    self._set_status(job, PENDING)
                    for index in range(job.array_size):
                        child = self._jobs[f"{job.job_id}:{index}"]
                        self._advance(child, SUBMITTED, 0)
                return
            if expected == PENDING and not self._dependencies_met(job):
                return
            self._set_status(job, target)
            if target == RUNNING:
                self._begin_simulated_attempt(job)
            elif target in (PENDING, STARTING):
                self.scheduler.call_later(self.step, self._advance, job, target, job.dispatches)

    def _dependencies(self, job: Job) -> list[str]:
        """The job ids ``job`` waits for. An array child inherits its parent's dependencies:
        N_TO_N on another array means the child of the same index; SEQUENTIAL means the
        previous child; a plain dependency means the whole job."""
        parent, index = job.parent, job.array_index
        if parent is None or index is None:
            return [d["jobId"] for d in job.depends_on if d.get("jobId")]
        ids = []
        for dependency in parent.depends_on:
            kind, dep_id = dependency.get("type"), dependency.get("jobId")
            if kind == "SEQUENTIAL":
                if index > 0:
                    ids.append(f"{parent.job_id}:{index - 1}")
            elif kind == "N_TO_N" and dep_id:
                ids.append(f"{dep_id}:{index}")
            elif dep_id:
                ids.append(dep_id)
        return ids

    def _dependencies_met(self, job: Job) -> bool:
        """True when every dependency SUCCEEDED. Otherwise the job waits in PENDING for the
        first unfinished one, or FAILS when one failed, as AWS does."""
        for dep_id in self._dependencies(job):
            dependency = self._jobs.get(dep_id)
            if dependency is None or dependency.status == SUCCEEDED:
                continue
            if dependency.status == FAILED:
                self._set_status(job, FAILED, f"Dependent Job {dep_id} failed")
                return False
            self._waiters.setdefault(dep_id, []).append(job)
            return False
        return True

    def _dispatch(self, job: Job) -> None:
        """The job just entered RUNNABLE: hand its next attempt to a script or an executor."""
        job.dispatches += 1
        attempt_no = len(job.attempts) + 1
        scripted = self._script(job, attempt_no)
        if scripted is not None or self.executor is None:
            self.scheduler.call_later(self.step, self._advance, job, RUNNABLE, job.dispatches)
        else:
            self._workers.submit(self._run_blocking, job, job.dispatches)

    def _script(self, job: Job, attempt_no: int) -> ScriptedOutcome | None:
        parent_id = job.parent.job_id if job.parent else None
        return self.scripts.outcome_for(
            job.job_id, job.name, parent_id, job.array_index, attempt_no
        )

    def _new_attempt(self, job: Job) -> Attempt:
        number = len(job.attempts) + 1
        task_id = job.job_id if number == 1 else f"{job.job_id}-{number}"
        attempt = Attempt(
            number=number,
            task_id=task_id.replace(":", "-"),
            log_stream_name=stream_name(job.definition_name, task_id),
            started_at=now_ms(),
        )
        job.current = attempt
        if job.started_at is None or number > 1:
            job.started_at = attempt.started_at
        seconds = (job.timeout or {}).get("attemptDurationSeconds")
        if seconds:
            self.scheduler.call_later(float(seconds), self._time_out, job, attempt)
        return attempt

    def _begin_simulated_attempt(self, job: Job) -> None:
        attempt = self._new_attempt(job)
        self._child_changed_started(job)
        outcome = self._script(job, attempt.number) or ScriptedOutcome(
            duration_seconds=env_float("BATCHBRIDGE_BATCH_SIMULATE_SECONDS", 0.1)
        )
        self.scheduler.call_later(
            outcome.duration_seconds, self._simulated_end, job, attempt, outcome
        )

    def _child_changed_started(self, child: Job) -> None:
        parent = child.parent
        if parent is not None and parent.started_at is None:
            parent.started_at = child.started_at

    def _simulated_end(self, job: Job, attempt: Attempt, scripted: ScriptedOutcome) -> None:
        outcome = Outcome(
            exit_code=scripted.exit_code,
            reason=scripted.reason,
            status_reason=scripted.status_reason or CONTAINER_EXITED,
            output=scripted.output,
        )
        if outcome.output:
            self._io.submit(self._write_then_finish, job, attempt, outcome)
        else:
            with self._lock:
                self._finish_attempt(job, attempt, outcome, retry=True)

    def _write_then_finish(self, job: Job, attempt: Attempt, outcome: Outcome) -> None:
        self.logs.write(attempt.log_stream_name, outcome.output, attempt.started_at)
        with self._lock:
            self._finish_attempt(job, attempt, outcome, retry=True)

    def _run_blocking(self, job: Job, dispatch: int) -> None:
        """A worker: RUNNABLE → STARTING → RUNNING → the executor → the outcome."""
        assert self.executor is not None
        with self._lock:
            if job.status != RUNNABLE or job.dispatches != dispatch:
                return  # cancelled or terminated while waiting for a worker
            self._set_status(job, STARTING)
        threading.Event().wait(self.step)  # pulling the image, as it were
        with self._lock:
            if job.status != STARTING or job.dispatches != dispatch:
                return
            self._set_status(job, RUNNING)
            attempt = self._new_attempt(job)
            self._child_changed_started(job)
            spec = self._run_spec(job, attempt)
        try:
            outcome = self.executor.run(spec, lambda kill: self._register_kill(job, attempt, kill))
        except Exception as exc:  # a bug or a broken engine must still end the attempt
            log.exception("executor %s failed on job %s", self.executor.name, job.job_id)
            outcome = cannot_start(f"batchbridge {self.executor.name} executor: {exc}")
        self.logs.write(attempt.log_stream_name, outcome.output, attempt.started_at)
        with self._lock:
            self._finish_attempt(job, attempt, outcome, retry=True)

    def _register_kill(self, job: Job, attempt: Attempt, kill: Callable[[], None]) -> None:
        with self._lock:
            attempt.kill = kill
            stopped = job.current is not attempt
        if stopped:  # terminated or timed out before the container was up
            kill()

    def _run_spec(self, job: Job, attempt: Attempt) -> RunSpec:
        env = job_environment(job, attempt.number, self.endpoint, self.region)
        return RunSpec(job.job_id, attempt.number, job.image, list(job.command), env)

    def _time_out(self, job: Job, attempt: Attempt) -> None:
        with self._lock:
            if job.current is not attempt:
                return
            kill = attempt.kill
            # AWS does not retry an attempt that timed out.
            self._finish_attempt(
                job, attempt, Outcome(exit_code=None, status_reason=TIMED_OUT), retry=False
            )
        if kill is not None:
            kill()

    def _finish_attempt(self, job: Job, attempt: Attempt, outcome: Outcome, retry: bool) -> None:
        """Record an attempt's end and decide: SUCCEEDED, another attempt, or FAILED."""
        if job.current is not attempt:
            return  # already ended (terminated or timed out); a late executor result is moot
        attempt.stopped_at = now_ms()
        attempt.exit_code = outcome.exit_code
        attempt.reason = outcome.reason
        attempt.status_reason = outcome.status_reason
        job.attempts.append(attempt)
        job.current = None
        if outcome.exit_code == 0:
            self._set_status(job, SUCCEEDED, outcome.status_reason)
        elif retry and should_retry(
            job.retry_strategy,
            len(job.attempts),
            outcome.exit_code,
            outcome.reason,
            outcome.status_reason,
        ):
            job.status_reason = outcome.status_reason
            self._set_status(job, RUNNABLE)
        else:
            self._set_status(job, FAILED, outcome.status_reason)

    # --- reports --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": {s: self.counts.get(s, 0) for s in JOB_STATUSES},
                "jobs": len(self._jobs),
                "scheduled": self.scheduler.pending(),
                "executor": self.executor.name if self.executor else "simulate",
                "stepSeconds": self.step,
            }


def _moto_batch(account_id: str, region: str) -> Any:
    """moto's Batch backend: the queues, definitions and compute environments users created."""
    from moto.batch.models import batch_backends

    return batch_backends[account_id][region]
