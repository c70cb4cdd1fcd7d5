"""SQS event source mappings, served by real pollers as AWS's internal ones are.

Every cycle the supervisor reads the mappings from moto's Lambda control plane (created by
the API or by CloudFormation) and keeps one poller thread per enabled SQS mapping. A poller
reads the queue through moto's SQS backend in-process: AWS's pollers are internal to AWS, so
they are neither throttled by nor visible to the user's API calls, and faults injected on the
SQS API (meant for the monitor) must not hit them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdas.contracts import SQSEvent, SQSRecord
from services.lambda_runtime.faults import LambdaFaults
from services.lambda_runtime.functions import lambda_backend_dict, spec_of
from services.lambda_runtime.runtime import Runtime

log = logging.getLogger("batchbridge.lambda.esm")

#: How often the supervisor re-reads the mappings (enable/disable/delete take effect this fast).
CYCLE_SECONDS = 0.2
#: Every this many cycles, warm workers of deleted or changed functions are stopped.
REAP_EVERY_CYCLES = 5
#: How long a poller waits on an empty queue before looking at its mapping again.
IDLE_WAIT_SECONDS = 0.1
#: Concurrent batches per mapping when ScalingConfig.MaximumConcurrency is not set.
DEFAULT_CONCURRENCY = 5
#: Lambda hands every message attribute to the function.
ALL = ["All"]


def neutralise_moto_invoke_on_send() -> None:
    """Stop moto invoking mapped functions synchronously inside SendMessage.

    moto's ``Queue.add_message`` walks ``queue.lambda_event_source_mappings`` and runs its own
    (echoing) invoke, deleting the messages. Mappings reach that dict from the API and from
    CloudFormation alike, so the dict itself is made permanently empty: a data descriptor on
    the class wins over the instance attribute that ``Queue.__init__`` assigns.
    """
    from moto.sqs.models import Queue

    if isinstance(Queue.__dict__.get("lambda_event_source_mappings"), property):
        return
    Queue.lambda_event_source_mappings = property(  # type: ignore[assignment]
        lambda self: {}, lambda self, value: None
    )


def _sqs_mappings() -> dict[str, tuple[str, str, Any]]:
    """uuid → (account, region, moto EventSourceMapping) for every SQS mapping in moto."""
    found: dict[str, tuple[str, str, Any]] = {}
    # dict.items: BackendDict's own __getitem__ would create backends as a side effect.
    for account_id, regions in list(dict.items(lambda_backend_dict())):
        for region, backend in list(dict.items(regions)):
            for uuid, esm in list(backend._event_source_mappings.items()):
                if esm.event_source_arn.split(":")[2] == "sqs":
                    found[uuid] = (account_id, region, esm)
    return found


def to_record(message: Any, queue_arn: str, region: str) -> SQSRecord:
    """A moto SQS message as the record Lambda's SQS event source delivers."""
    attributes: dict[str, str] = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    fifo = {
        "SequenceNumber": message.sequence_number,
        "MessageGroupId": message.group_id,
        "MessageDeduplicationId": message.deduplication_id,
    }
    attributes.update({key: str(value) for key, value in fifo.items() if value})
    trace = (message.system_attributes or {}).get("AWSTraceHeader")
    if trace:
        attributes["AWSTraceHeader"] = str(trace.get("StringValue", ""))
    record: dict[str, Any] = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.message_attributes.items()
        },
    }
    if message.message_attributes:
        record["md5OfMessageAttributes"] = message.attribute_md5
    record.update(
        {
            "md5OfBody": message.body_md5,
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record  # type: ignore[return-value]


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if value.get("StringValue") is not None:
        shaped["stringValue"] = value["StringValue"]
    if value.get("BinaryValue") is not None:
        binary = value["BinaryValue"]
        if isinstance(binary, bytes):
            import base64

            binary = base64.b64encode(binary).decode()
        shaped["binaryValue"] = binary
    return shaped


def failed_items(payload: bytes, message_ids: list[str], report: bool) -> set[str] | None:
    """The messageIds to keep, or None when the whole batch counts as failed.

    Follows AWS's rules for ReportBatchItemFailures: a null or empty response or list is a
    full success; a response that is not JSON, or an itemIdentifier that is missing, empty or
    not a messageId of the batch, fails the whole batch.
    """
    if not report:
        return set()
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return None
    if not isinstance(response, dict):
        return set()
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    keep: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        keep.add(identifier)
    return keep


class MappingPoller:
    """Polls one queue for one mapping; up to ``concurrency`` batches in flight."""

    def __init__(
        self,
        uuid: str,
        account_id: str,
        region: str,
        runtime: Runtime,
        faults: LambdaFaults,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.uuid = uuid
        self.account_id = account_id
        self.region = region
        self.runtime = runtime
        self.faults = faults
        self.batches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"esm-{uuid[:8]}", daemon=True)
        self._slots = threading.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency + 1, thread_name_prefix=f"esm-{uuid[:8]}"
        )
        self._prewarmed = ""
        self._last_problem = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _mapping(self) -> Any | None:
        try:
            backend = self._backend()
        except KeyError:
            return None
        esm = backend._event_source_mappings.get(self.uuid)
        return esm if esm is not None and esm.enabled else None

    def _backend(self) -> Any:
        accounts = lambda_backend_dict()
        return dict.__getitem__(dict.__getitem__(accounts, self.account_id), self.region)

    def _function(self, esm: Any) -> Any:
        return self._backend().get_function(esm.function_arn)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._poll_once():
                    continue
            except Exception as exc:  # a poller must survive anything one cycle throws
                # A deleted queue or function is reported once, not every second.
                problem = f"{type(exc).__name__}: {exc}"
                if problem != self._last_problem:
                    log.warning("event source mapping %s cannot poll: %s", self.uuid, problem)
                    self._last_problem = problem
                self._stop.wait(1.0)
            else:
                self._last_problem = ""

    def _poll_once(self) -> bool:
        esm = self._mapping()
        if esm is None:
            # Disabled or deleted: the supervisor starts a new poller if it is enabled again.
            self._stop.set()
            return False
        spec = spec_of(self._function(esm))
        if self._prewarmed != spec.fingerprint:
            self._prewarmed = spec.fingerprint
            self._pool.submit(self.runtime.prewarm, spec)
        if not self._slots.acquire(timeout=IDLE_WAIT_SECONDS):
            return False
        try:
            messages = self._receive(esm)
        except Exception:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return False
        self.batches += 1
        self._pool.submit(self._deliver, esm, messages)
        return True

    def _queue(self, esm: Any) -> tuple[Any, Any]:
        from moto.sqs.models import sqs_backends

        _, _, _, region, account, name = esm.event_source_arn.split(":")
        accounts: Any = sqs_backends
        backend = dict.__getitem__(dict.__getitem__(accounts, account), region)
        return backend, backend.get_queue(name)

    def _receive(self, esm: Any) -> list[Any]:
        backend, queue = self._queue(esm)
        batch_size = int(esm.batch_size or 10)
        window = float(esm.max_batch_window or 0)
        visibility = int(queue.visibility_timeout)
        messages: list[Any] = backend.receive_message(queue.name, batch_size, 0, visibility, ALL)
        if not messages:
            self._wait_for_messages(queue, IDLE_WAIT_SECONDS)
            return []
        deadline = time.monotonic() + window
        while (
            len(messages) < batch_size and time.monotonic() < deadline and not self._stop.is_set()
        ):
            self._wait_for_messages(queue, min(IDLE_WAIT_SECONDS, deadline - time.monotonic()))
            messages += backend.receive_message(
                queue.name, batch_size - len(messages), 0, visibility, ALL
            )
        return messages

    @staticmethod
    def _wait_for_messages(queue: Any, timeout: float) -> None:
        # moto's queue notifies this condition on every add_message: long polling, no spinning.
        with queue._messages_lock:
            woke = queue._messages_lock.wait_for(lambda: queue.messages, timeout=max(timeout, 0))
        if woke:
            time.sleep(0.01)  # visible but not receivable (e.g. a FIFO group in flight)

    def _deliver(self, esm: Any, messages: list[Any]) -> None:
        try:
            duplicates = [m for m in messages if self.faults.take_duplicate(esm.event_source_arn)]
            self._invoke(esm, messages)
            if duplicates:
                self._invoke(esm, duplicates)  # injected: the same messages delivered again
        except Exception:
            log.exception("event source mapping %s: delivery failed", self.uuid)
        finally:
            self._slots.release()

    def _invoke(self, esm: Any, messages: list[Any]) -> None:
        backend, queue = self._queue(esm)
        records = [to_record(m, queue.queue_arn, queue.region) for m in messages]
        event: SQSEvent = {"Records": records}
        spec = spec_of(self._function(esm))
        outcome = self.runtime.invoke(spec, json.dumps(event).encode(), esm.function_arn)
        if outcome.failed:
            return  # a function error deletes nothing: the batch comes back after the timeout
        report = "ReportBatchItemFailures" in (esm.function_response_types or [])
        keep = failed_items(outcome.payload, [m.id for m in messages], report)
        if keep is None:
            log.warning(
                "%s: invalid batchItemFailures %r; the whole batch will be retried",
                spec.name,
                outcome.payload[:200],
            )
            return
        for message in messages:
            if message.id not in keep:
                try:
                    backend.delete_message(queue.name, message.receipt_handle)
                except Exception as exc:  # already gone (e.g. redriven): nothing to delete
                    log.info("could not delete %s from %s: %s", message.id, queue.name, exc)


class EventSourcePollers:
    """Keeps one :class:`MappingPoller` per enabled SQS mapping in moto."""

    def __init__(self, runtime: Runtime, faults: LambdaFaults) -> None:
        self.runtime = runtime
        self.faults = faults
        self._pollers: dict[str, MappingPoller] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="esm-supervisor", daemon=True)

    def start(self) -> None:
        neutralise_moto_invoke_on_send()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for poller in self._pollers.values():
            poller.stop()
        for poller in self._pollers.values():
            poller.join(timeout=2)
        self._pollers.clear()

    def _run(self) -> None:
        cycle = 0
        while not self._stop.is_set():
            try:
                self.reconcile()
                cycle += 1
                if cycle % REAP_EVERY_CYCLES == 0:
                    self.runtime.reap()
            except Exception:
                log.exception("reading event source mappings failed")
            self._stop.wait(CYCLE_SECONDS)

    def reconcile(self) -> None:
        wanted = {uuid: m for uuid, m in _sqs_mappings().items() if m[2].enabled}
        for uuid, poller in list(self._pollers.items()):
            if poller.stopped or uuid not in wanted:
                poller.stop()
                del self._pollers[uuid]
        for uuid, (account_id, region, esm) in wanted.items():
            if uuid not in self._pollers:
                scaling = esm.scaling_config or {}
                concurrency = int(scaling.get("MaximumConcurrency") or DEFAULT_CONCURRENCY)
                poller = MappingPoller(
                    uuid, account_id, region, self.runtime, self.faults, concurrency
                )
                self._pollers[uuid] = poller
                poller.start()

    def stats(self) -> dict[str, int]:
        return {
            "mappings_polled": len(self._pollers),
            "batches_delivered": sum(p.batches for p in list(self._pollers.values())),
        }
