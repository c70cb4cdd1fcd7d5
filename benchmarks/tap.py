"""A tap on the embedded environment's endpoint: who called what, and the answer.

The gateway counts calls per operation, not per caller. The benchmarks need DescribeJobs per
design and per pipeline, and the chaos runs need every callback answer SageMaker accepted,
per token. The tap sits in front of the gateway (a WSGI middleware), reads each request it
cares about and the status of the response, and changes nothing (it can only add latency,
when a benchmark asks for it).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from services.environment import LocalEnvironment

SEND_OPERATIONS = ("SendPipelineExecutionStepSuccess", "SendPipelineExecutionStepFailure")


@dataclass(frozen=True)
class Answer:
    """A callback answer as SageMaker received it."""

    token: str
    operation: str  # SendPipelineExecutionStepSuccess | …Failure
    status: int  # the HTTP status SageMaker answered
    at: float  # time.time() when answered


class Tap:
    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self._lock = threading.Lock()
        #: DescribeJobs calls, keyed by the first job id of the call.
        self.describe_by_first_id: Counter[str] = Counter()
        self.answers: list[Answer] = []
        #: Seconds added before answering a path (e.g. ``/v1/submitjob``), to model an API
        #: latency like AWS's instead of the emulator's ~1 ms.
        self.latency: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path in self.latency:
            time.sleep(self.latency[path])
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target.startswith("SageMaker.") else ""
        if path != "/v1/describejobs" and operation not in SEND_OPERATIONS:
            return self._gateway(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        if path == "/v1/describejobs":
            ids = request.get("jobs") or [""]
            with self._lock:
                self.describe_by_first_id[str(ids[0])] += 1
            return self._gateway(environ, start_response)
        seen: dict[str, int] = {}

        def recording_start_response(status: str, headers: Any, *rest: Any) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, *rest)

        result = self._gateway(environ, recording_start_response)
        with self._lock:
            self.answers.append(
                Answer(
                    str(request.get("CallbackToken", "")),
                    operation,
                    seen.get("status", 0),
                    time.time(),
                )
            )
        return result

    def describe_calls(self, job_ids: set[str]) -> int:
        """DescribeJobs calls whose first id is one of ``job_ids``."""
        with self._lock:
            return sum(n for first, n in self.describe_by_first_id.items() if first in job_ids)

    def accepted(self) -> dict[str, list[Answer]]:
        """Answers SageMaker accepted (2xx), per callback token."""
        by_token: dict[str, list[Answer]] = {}
        with self._lock:
            for answer in self.answers:
                if 200 <= answer.status < 300:
                    by_token.setdefault(answer.token, []).append(answer)
        return by_token


def install(env: LocalEnvironment) -> Tap:
    """Put a tap in front of ``env``'s gateway (idempotent)."""
    if isinstance(env.gateway, Tap):
        return env.gateway
    tap = Tap(env.gateway)
    env.gateway = tap  # type: ignore[assignment]
    return tap


def uninstall(env: LocalEnvironment) -> None:
    """Take the tap out again (for an environment that outlives the measurement)."""
    if isinstance(env.gateway, Tap):
        env.gateway = env.gateway._gateway
