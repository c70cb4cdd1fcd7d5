"""Ships each invocation's log events to CloudWatch Logs (``/aws/lambda/<name>``).

It calls the Logs API at the environment's endpoint with boto3, like any AWS client, so the
events land wherever Logs is served (moto in-process, or LocalStack in proxy mode). Shipping
happens on its own thread so that an invocation never waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger("batchbridge.lambda.logs")


class LogShipper:
    def __init__(self, make_client: Any) -> None:
        self._make_client = make_client
        self._queue: queue.Queue[tuple[str, str, list[tuple[int, str]]] | None] = queue.Queue()
        self._known: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="lambda-log-shipper", daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def ship(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if events:
            self._idle.clear()
            self._queue.put((group, stream, events))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been sent (for tests and shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        client = self._make_client("logs")
        while True:
            item = self._queue.get()
            if item is None:
                self._idle.set()
                return
            group, stream, events = item
            try:
                self._put(client, group, stream, events)
            except Exception:  # logs must never break invocations
                log.exception("could not ship %d log events to %s", len(events), group)
            if self._queue.empty():
                self._idle.set()

    def _put(self, client: Any, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        if group not in self._groups:
            _create(client.create_log_group, logGroupName=group)
            self._groups.add(group)
        if (group, stream) not in self._known:
            _create(client.create_log_stream, logGroupName=group, logStreamName=stream)
            self._known.add((group, stream))
        # PutLogEvents wants the events in time order; a stable sort keeps a millisecond's order.
        ordered = sorted(events, key=lambda event: event[0])
        batch = [{"timestamp": ts, "message": text} for ts, text in ordered]
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def _create(call: Any, **kwargs: str) -> None:
    try:
        call(**kwargs)
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
