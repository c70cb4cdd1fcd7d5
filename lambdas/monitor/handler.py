"""The monitor Lambda: SQS-triggered, one callback message per record.

Each record goes parse → observe → decide → act on its own; a record that must wait or that
hit an error is reported in ``batchItemFailures`` and the others are unaffected. The function
never raises for the batch. In reaper mode (subscribed to the DLQ) a message that ran out of
receives fails its step, so no pipeline waits forever.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdas.aws import Clients, default_clients
from lambdas.contracts import (
    BatchItemFailure,
    CallbackMessage,
    MessageParseError,
    PartialBatchResponse,
    SQSEvent,
    SQSRecord,
    parse_callback_message,
)
from lambdas.logs import get_logger
from lambdas.monitor import act
from lambdas.monitor.decide import Decision, DecisionKind, Uniform, decide
from lambdas.monitor.observe import observe
from lambdas.retry import DEFAULT_RETRY, RetryPolicy
from lambdas.settings import MODE_MONITOR, MODE_REAPER, Settings

log = get_logger("batchbridge.monitor")

#: Outcomes of one record, as logged and returned in ``decisions``.
DONE = "done"  # the message is finished with (deleted by the event source mapping)
REQUEUED = "requeued"  # reported as a batch item failure; it comes back later
REFUSED = "refused"  # SageMaker refused the callback: finished with, not retried


@dataclass
class Runtime:
    """What a record needs besides itself; tests replace any part of it."""

    clients: Clients
    settings: Settings
    clock: Callable[[], float] = time.time
    uniform: Uniform = random.uniform
    retry: RetryPolicy = DEFAULT_RETRY
    decisions: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds left before the invocation's timeout; None when unknown (no limit is applied).
    time_left: Callable[[], float] | None = None

    def out_of_time(self, calls: int) -> bool:
        """Too little time left for ``calls`` more AWS calls at their worst (each retried for
        up to ``retry.max_total_seconds``, plus a last attempt and some slack)."""
        if self.time_left is None:
            return False
        return self.time_left() < calls * self.retry.max_total_seconds + 5


#: A record makes about two calls after its start (DescribeJobs, then ChangeMessageVisibility
#: or the callback); one starts only while that much time is left.
CALLS_PER_RECORD = 2


def handler(
    event: SQSEvent, context: object, runtime: Runtime | None = None
) -> PartialBatchResponse:
    """Lambda entry point. ``runtime`` is for tests; Lambda passes only (event, context)."""
    rt = runtime or Runtime(clients=default_clients(), settings=Settings.from_env())
    if rt.time_left is None:
        rt.time_left = _time_left(context)
    failures: list[BatchItemFailure] = []
    for index, record in enumerate(event.get("Records", [])):
        # A timed-out invocation fails its whole batch, the records already answered included;
        # leave the rest untouched instead (they come back after the queue's visibility
        # timeout). The first record always runs, so every invocation makes progress.
        if index and rt.out_of_time(CALLS_PER_RECORD):
            base = {"message_id": record.get("messageId", ""), "attempt": _attempt(record)}
            _record(base, REQUEUED, rt=rt, deferred="too close to the Lambda timeout to start")
            outcome = REQUEUED
        else:
            outcome = handle_record(record, rt)
        if outcome == REQUEUED:
            failures.append({"itemIdentifier": record["messageId"]})
    # Only AWS's partial-batch shape: the decisions are in the log lines and on ``runtime``.
    return {"batchItemFailures": failures}


def _time_left(context: object) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return lambda: float(remaining()) / 1000


def handle_record(record: SQSRecord, rt: Runtime) -> str:
    """Process one record; never raises. Returns DONE, REQUEUED or REFUSED."""
    base: dict[str, Any] = {
        "message_id": record.get("messageId", ""),
        "attempt": _attempt(record),
    }
    try:
        base["mode"] = MODE_REAPER if _is_reaper(record, rt) else MODE_MONITOR
    except Exception as exc:
        # E.g. no sqs:ListDeadLetterSourceQueues permission. Monitoring a dead-lettered message
        # as a live one still resolves its step, so don't let this block the work.
        base["mode"] = MODE_MONITOR
        log.warning(
            "cannot tell whether the source queue is a DLQ; set BATCHBRIDGE_MODE or "
            "BATCHBRIDGE_DLQ_URL",
            extra={**base, "error": f"{type(exc).__name__}: {exc}"},
        )
    try:
        message = parse_callback_message(record.get("body", ""))
    except MessageParseError as exc:
        return _poison(record, str(exc), base, rt)
    base["token"] = message.token[:4] + "…"
    base["execution_arn"] = message.pipeline_execution_arn
    try:
        if base["mode"] == MODE_REAPER:
            return _reap(message, record, base, rt)
        return _monitor(message, record, base, rt)
    except act.CallbackRefused as exc:
        # The step already finished (a duplicate delivery, a stop) or the token is unknown.
        return _record(base, REFUSED, rt=rt, refusal=str(exc))
    except Exception as exc:
        # One record's failure must not fail the batch: this one alone comes back later.
        error = f"{type(exc).__name__}: {exc}"
        log.exception("decision", extra={**base, "outcome": REQUEUED, "error": error})
        return _record(base, REQUEUED, rt=rt, log_it=False, error=error)


def _monitor(message: CallbackMessage, record: SQSRecord, base: dict[str, Any], rt: Runtime) -> str:
    now = rt.clock()
    jobs = observe(rt.clients.batch, message.job_ids, rt.retry)
    decision = decide(
        message,
        jobs,
        now,
        rt.settings,
        sent_at=_sent_at(record, now),
        attempt=base["attempt"],
        uniform=rt.uniform,
    )
    base.update(_describe(decision))
    if decision.kind is DecisionKind.WAIT:
        source = act.queue_url(rt.clients.sqs, record["eventSourceARN"])
        base["delay_seconds"] = act.change_visibility(
            rt.clients.sqs, source, record["receiptHandle"], decision.delay_seconds, rt.retry
        )
        return _record(base, REQUEUED, rt=rt)
    if decision.jobs_to_terminate:
        refused = act.terminate_jobs(
            rt.clients.batch,
            decision.jobs_to_terminate,
            f"batchbridge: {decision.kind.value.lower()}: {decision.reason}"[:1024],
            rt.retry,
            # Keep time for the callback; what is not terminated now is on the next receive.
            out_of_time=lambda: rt.out_of_time(1),
        )
        _note_refused_terminations(refused, base)
    if decision.kind is DecisionKind.SUCCEED:
        act.send_success(rt.clients.sagemaker, message, decision.output_parameters, rt.retry)
    else:
        act.send_failure(rt.clients.sagemaker, message, decision.reason, rt.retry)
    return _record(base, DONE, rt=rt)


def _reap(message: CallbackMessage, record: SQSRecord, base: dict[str, Any], rt: Runtime) -> str:
    receives = record.get("attributes", {}).get("ApproximateReceiveCount", "?")
    reason = (
        f"batchbridge monitor gave up after {receives} receives of the callback message "
        "(it reached the dead-letter queue); see the monitor's logs for the cause"
    )
    if rt.settings.terminate_on_failure and message.job_ids:
        # Best effort: the reaper is the last resort that answers the step, so neither a
        # DescribeJobs nor a TerminateJob error may keep it from sending the failure.
        try:
            jobs = observe(rt.clients.batch, message.job_ids, rt.retry)
            unfinished = tuple(job.job_id for job in jobs.values() if job.unfinished)
            refused = act.terminate_jobs(
                rt.clients.batch,
                unfinished,
                f"batchbridge: {reason}",
                rt.retry,
                out_of_time=lambda: rt.out_of_time(1),
            )
            base["terminated"] = len(unfinished) - len(refused)
            _note_refused_terminations(refused, base)
        except Exception as exc:
            base["terminate_error"] = f"{type(exc).__name__}: {exc}"
            log.warning("could not terminate the step's jobs; failing the step anyway", extra=base)
    base.update({"decision": DecisionKind.FAIL.value, "reason": reason})
    act.send_failure(rt.clients.sagemaker, message, reason, rt.retry)
    return _record(base, DONE, rt=rt)


def _note_refused_terminations(refused: dict[str, str], base: dict[str, Any]) -> None:
    """Log the jobs Batch would not terminate; they may still be running (and costing)."""
    if refused:
        base["terminate_refused"] = refused
        log.warning("Batch refused to terminate some jobs; they may still run", extra=base)


def _poison(record: SQSRecord, why: str, base: dict[str, Any], rt: Runtime) -> str:
    """An unreadable record can never succeed: move it to the DLQ and let it be deleted."""
    base.update({"decision": "POISON", "reason": why})
    if base["mode"] == MODE_REAPER:
        # Already in the DLQ: keep it there for a person to read, but out of the reaper's way
        # (it comes back twice a day at most, until the DLQ's retention expires it).
        source = act.queue_url(rt.clients.sqs, record["eventSourceARN"])
        parked = act.change_visibility(
            rt.clients.sqs, source, record["receiptHandle"], 43200, rt.retry
        )
        return _record(base, REQUEUED, rt=rt, dlq=f"kept in the DLQ, hidden for {parked} s")
    try:
        dlq = act.dead_letter_queue_url(
            rt.clients.sqs, record["eventSourceARN"], rt.settings.dlq_url, rt.retry
        )
        if dlq is None:
            return _record(base, DONE, rt=rt, dlq="no DLQ configured or discovered; dropped")
        act.send_to_dlq(rt.clients.sqs, dlq, record.get("body", ""), why, rt.retry)
        return _record(base, DONE, rt=rt, dlq=dlq)
    except Exception as exc:
        # It comes back; after maxReceiveCount SQS's own redrive moves it to the DLQ.
        return _record(base, REQUEUED, rt=rt, error=f"DLQ send failed: {exc}")


def _record(
    base: dict[str, Any],
    outcome: str,
    *,
    rt: Runtime | None = None,
    log_it: bool = True,
    **more: Any,
) -> str:
    line = {**base, "outcome": outcome, **more}
    if log_it:
        log.info("decision", extra=line)
    if rt is not None:
        rt.decisions.append(line)
    return outcome


def _describe(decision: Decision) -> dict[str, Any]:
    return {
        "decision": decision.kind.value,
        "reason": decision.reason,
        "delay_seconds": decision.delay_seconds,
        "counts": dict(decision.counts),
        "terminated": len(decision.jobs_to_terminate),
    }


def _attempt(record: SQSRecord) -> int:
    raw = record.get("attributes", {}).get("ApproximateReceiveCount", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def _sent_at(record: SQSRecord, default: float) -> float:
    raw = record.get("attributes", {}).get("SentTimestamp")
    try:
        return int(raw) / 1000 if raw else default
    except ValueError:
        return default


def _is_reaper(record: SQSRecord, rt: Runtime) -> bool:
    """Reaper mode when configured, or when the record comes from a dead-letter queue: the
    configured BATCHBRIDGE_DLQ_URL, or else any queue that another queue redrives to."""
    settings = rt.settings
    if settings.mode == MODE_REAPER:
        return True
    source = record.get("eventSourceARN", "")
    if settings.dlq_url:
        parts = source.split(":")
        url_parts = settings.dlq_url.rstrip("/").split("/")
        return len(parts) == 6 and parts[4:] == url_parts[-2:]
    return act.is_dead_letter_queue(rt.clients.sqs, source, rt.retry)
