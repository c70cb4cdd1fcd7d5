"""retryStrategy as AWS Batch applies it: a pure decision, table-testable."""

from __future__ import annotations

from typing import Any


def glob_matches(pattern: str, value: str | None) -> bool:
    """AWS's evaluateOnExit globs: an exact match, or a prefix when the pattern ends in ``*``."""
    text = "" if value is None else value
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    return text == pattern


def should_retry(
    retry_strategy: dict[str, Any],
    attempts_made: int,
    exit_code: int | None,
    reason: str | None,
    status_reason: str | None,
) -> bool:
    """Whether a failed attempt is followed by another one.

    The first evaluateOnExit rule whose conditions all match decides (RETRY or EXIT); when
    none matches, AWS retries. Either way no more than ``attempts`` attempts run.
    """
    attempts = max(1, min(10, int(retry_strategy.get("attempts") or 1)))
    if attempts_made >= attempts:
        return False
    observed = {
        "onExitCode": None if exit_code is None else str(exit_code),
        "onReason": reason,
        "onStatusReason": status_reason,
    }
    for rule in retry_strategy.get("evaluateOnExit") or []:
        conditions = {key: rule[key] for key in observed if rule.get(key) is not None}
        if all(glob_matches(pattern, observed[key]) for key, pattern in conditions.items()):
            return str(rule.get("action", "RETRY")).upper() == "RETRY"
    return True
