"""One thread that runs callbacks when they fall due: a heap of (due time, callback).

Thousands of jobs (a 10,000-child array job) cost heap entries, not threads.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("batchbridge.batch.scheduler")


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        due = time.monotonic() + max(0.0, delay)
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._seq), callback, args))
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="batchbridge-batch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._heap.clear()
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._wake.wait(self._heap[0][0] - now if self._heap else None)
                if self._stopping:
                    return
                due = []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            for _, _, callback, args in due:
                try:
                    callback(*args)
                except Exception:  # one bad event must not stop every other job
                    log.exception("batch scheduler event %s failed", callback.__name__)
