"""Faults a test can script for the Lambda data plane (see docs/local-lambda.md)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from services.protocol import AwsError

CRASH_WHEN = ("before", "after")


@dataclass
class _Crash:
    when: str
    remaining: int


class LambdaFaults:
    """Crash the next N invocations of a function; deliver the next N messages of a queue twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._crashes: dict[str, list[_Crash]] = {}
        self._duplicates: dict[str, int] = {}

    def add_crash(self, function: str, count: int, when: str) -> None:
        if when not in CRASH_WHEN:
            raise AwsError(
                "ValidationException", f"'when' must be 'before' or 'after', not {when!r}"
            )
        if count < 1:
            raise AwsError("ValidationException", f"'count' must be at least 1, not {count}")
        with self._lock:
            self._crashes.setdefault(_function_name(function), []).append(_Crash(when, count))

    def add_duplicate(self, queue: str, count: int) -> None:
        if count < 1:
            raise AwsError("ValidationException", f"'count' must be at least 1, not {count}")
        with self._lock:
            key = _queue_name(queue)
            self._duplicates[key] = self._duplicates.get(key, 0) + count

    def take_crash(self, function: str) -> str | None:
        """'before' or 'after' if this invocation of ``function`` must crash, else None."""
        with self._lock:
            rules = self._crashes.get(_function_name(function), [])
            while rules and rules[0].remaining <= 0:
                rules.pop(0)
            if not rules:
                return None
            rules[0].remaining -= 1
            return rules[0].when

    def take_duplicate(self, queue_arn: str) -> bool:
        with self._lock:
            key = _queue_name(queue_arn)
            if self._duplicates.get(key, 0) <= 0:
                return False
            self._duplicates[key] -= 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._crashes.clear()
            self._duplicates.clear()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "crash": {
                    name: [{"when": c.when, "remaining": c.remaining} for c in rules if c.remaining]
                    for name, rules in self._crashes.items()
                    if any(c.remaining for c in rules)
                },
                "duplicate": {name: n for name, n in self._duplicates.items() if n},
            }


def _function_name(function: str) -> str:
    """A name, a full ARN or a partial ARN (``…:function:NAME[:QUALIFIER]``) → NAME."""
    if ":function:" in function:
        return function.split(":function:", 1)[1].split(":", 1)[0]
    return function


def _queue_name(queue: str) -> str:
    """A name, an ARN or a queue URL → the queue name."""
    return queue.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
