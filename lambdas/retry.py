"""Retries for throttling and 5xx from any AWS API, inside one invocation, bounded in time.

botocore's own retries are switched off in :mod:`lambdas.aws` so this is the one retry layer
and its bound is the whole bound: 5 tries with exponential backoff and jitter, about 10 s at
worst, well inside a Lambda timeout. What still fails is raised, and the caller leaves the
record to come back later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

T = TypeVar("T")

THROTTLING_CODES: Final[frozenset[str]] = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "ServerException",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx, or a dropped connection: worth another try in a moment."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code", "") in THROTTLING_CODES or status >= 500
    return isinstance(exc, ConnectionError | HTTPClientError)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_seconds: float = 0.25
    max_backoff_seconds: float = 4.0
    max_total_seconds: float = 10.0

    def call(self, fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Call ``fn(*args, **kwargs)``, retrying transient AWS errors; re-raise the last one."""
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_total_seconds),
            wait=wait_random_exponential(
                multiplier=self.initial_seconds, max=self.max_backoff_seconds
            ),
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)


DEFAULT_RETRY: Final = RetryPolicy()
#: For tests: the same bound on tries, no waiting.
NO_WAIT_RETRY: Final = RetryPolicy(initial_seconds=0.0, max_backoff_seconds=0.0)
