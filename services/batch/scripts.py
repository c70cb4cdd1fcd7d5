"""Scripted job outcomes, set through ``/_batchbridge/batch/scripts`` by tests.

A script matches a job by id (an array child's ``<parent>:<index>`` too, or the parent's id
for all of its children) or by job name prefix, for jobs not submitted yet. It decides an
attempt's duration, exit code and reasons, overriding whatever executor runs, for every
attempt, for the first N attempts (``"attempts": N``), or attempt by attempt (``"attempts":
[{…}, {…}]``); later attempts run normally. The newest matching script wins.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from services.protocol import AwsError

DEFAULT_SIMULATED_SECONDS = 0.1


@dataclass(frozen=True)
class ScriptedOutcome:
    duration_seconds: float = DEFAULT_SIMULATED_SECONDS
    exit_code: int | None = 0
    reason: str | None = None
    status_reason: str | None = None
    output: str = ""


@dataclass(frozen=True)
class Script:
    job_id: str | None
    job_name_prefix: str | None
    array_indices: frozenset[int] | None
    #: One outcome per attempt; ``every`` repeats the first one for all attempts.
    outcomes: tuple[ScriptedOutcome, ...]
    every: bool

    def matches(self, job_id: str, name: str, parent_id: str | None, index: int | None) -> bool:
        if self.array_indices is not None and index not in self.array_indices:
            return False
        if self.job_id is not None:
            return self.job_id in (job_id, parent_id)
        return self.job_name_prefix is not None and name.startswith(self.job_name_prefix)

    def outcome(self, attempt: int) -> ScriptedOutcome | None:
        if self.every:
            return self.outcomes[0]
        return self.outcomes[attempt - 1] if attempt <= len(self.outcomes) else None

    def describe(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "jobNamePrefix": self.job_name_prefix,
            "arrayIndices": sorted(self.array_indices) if self.array_indices else None,
            "attempts": "every" if self.every else len(self.outcomes),
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def _outcome(spec: dict[str, Any], defaults: ScriptedOutcome | None = None) -> ScriptedOutcome:
    base = defaults or ScriptedOutcome()
    output = spec.get("output", base.output)
    if isinstance(output, list):
        output = "\n".join(str(line) for line in output)
    exit_code = spec.get("exitCode", base.exit_code)
    return ScriptedOutcome(
        duration_seconds=float(spec.get("durationSeconds", base.duration_seconds)),
        exit_code=None if exit_code is None else int(exit_code),
        reason=spec.get("reason", base.reason),
        status_reason=spec.get("statusReason", base.status_reason),
        output=str(output),
    )


def parse_script(spec: dict[str, Any]) -> Script:
    """A script from its control-path JSON; a bad one is a clear ValidationException."""
    job_id, prefix = spec.get("jobId"), spec.get("jobNamePrefix")
    if (job_id is None) == (prefix is None):
        raise AwsError(
            "ValidationException",
            'a script needs exactly one of "jobId" or "jobNamePrefix", e.g. '
            '{"jobNamePrefix": "copy-", "durationSeconds": 2, "exitCode": 1}',
        )
    try:
        first = _outcome(spec)
        attempts = spec.get("attempts")
        indices = spec.get("arrayIndices")
        if isinstance(indices, int):
            indices = [indices]
        outcomes: tuple[ScriptedOutcome, ...]
        if attempts is None:
            outcomes, every = (first,), True
        elif isinstance(attempts, list):
            outcomes, every = tuple(_outcome(a, first) for a in attempts), False
        else:
            outcomes, every = (first,) * int(attempts), False
    except (TypeError, ValueError) as exc:
        raise AwsError("ValidationException", f"bad script {spec!r}: {exc}") from exc
    return Script(
        job_id=None if job_id is None else str(job_id),
        job_name_prefix=None if prefix is None else str(prefix),
        array_indices=None if indices is None else frozenset(int(i) for i in indices),
        outcomes=outcomes,
        every=every,
    )


class Scripts:
    """The scripts in force; thread safe."""

    def __init__(self) -> None:
        self._scripts: list[Script] = []
        self._lock = threading.Lock()

    def add(self, script: Script) -> None:
        with self._lock:
            self._scripts.append(script)

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.describe() for s in self._scripts]

    def outcome_for(
        self, job_id: str, name: str, parent_id: str | None, index: int | None, attempt: int
    ) -> ScriptedOutcome | None:
        with self._lock:
            scripts = list(reversed(self._scripts))
        for script in scripts:
            if script.matches(job_id, name, parent_id, index):
                return script.outcome(attempt)
        return None
