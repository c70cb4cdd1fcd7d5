"""The invocation engine: warm worker pools per function version, and the log side effects.

Used by the Invoke API (``service.py``) and by the SQS event source mappings (``esm.py``),
which, like AWS's internal pollers, invoke functions without going through the public API.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict

from services.lambda_runtime.faults import LambdaFaults
from services.lambda_runtime.functions import CodeStore, FunctionSpec, lookup
from services.lambda_runtime.logs import LogShipper
from services.lambda_runtime.workers import Outcome, Worker
from services.protocol import AwsError

log = logging.getLogger("batchbridge.lambda.runtime")

#: An idle worker older than this is stopped (AWS recycles idle sandboxes too).
IDLE_SECONDS = 600.0
#: Warm workers kept at most, over all functions (each is a Python process with boto3).
MAX_IDLE_WORKERS = 16


def _current_fingerprint(spec: FunctionSpec) -> str | None:
    """The fingerprint of the function as moto has it now; None once it is deleted."""
    _, _, _, region, account_id, *_ = spec.arn.split(":")
    qualifier = None if spec.version == "$LATEST" else spec.version
    try:
        return lookup(account_id, region, spec.name, qualifier).fingerprint
    except AwsError:
        return None


class Runtime:
    def __init__(
        self, endpoint: str, region: str, shipper: LogShipper, faults: LambdaFaults
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.shipper = shipper
        self.faults = faults
        self._root = tempfile.mkdtemp(prefix="batchbridge-lambda-")
        self.code = CodeStore(self._root)
        self._lock = threading.Lock()
        self._idle: dict[str, list[Worker]] = defaultdict(list)  # fingerprint → warm workers
        self._busy: set[Worker] = set()
        self.invocations = 0
        self._base_env = self._sandbox_environment()

    def _sandbox_environment(self) -> dict[str, str]:
        # The host's environment is not the sandbox's: only what a Python needs to run, plus
        # what AWS sets. Credentials are fake ones the local endpoint accepts.
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(
            {
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_SESSION_TOKEN": "test",
                "TZ": ":UTC",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return env

    # --- the pool ----------------------------------------------------------------------

    def _acquire(self, spec: FunctionSpec) -> Worker:
        if spec.package_type != "Zip":
            raise AwsError(
                "InvalidRuntimeException",
                f"{spec.name} is a container image function; batchbridge's local Lambda "
                "runtime runs zip-packaged Python functions only.",
                502,
            )
        if not spec.runtime.startswith("python"):
            raise AwsError(
                "InvalidRuntimeException",
                f"{spec.name} uses runtime {spec.runtime or '(none)'}; batchbridge's local Lambda "
                "runtime runs Python functions only (python3.x).",
                502,
            )
        stale: list[Worker] = []
        worker: Worker | None = None
        with self._lock:
            now = time.monotonic()
            for fingerprint, workers in list(self._idle.items()):
                for candidate in list(workers):
                    outdated = candidate.spec.arn == spec.arn and fingerprint != spec.fingerprint
                    if outdated or not candidate.alive or now - candidate.idle_since > IDLE_SECONDS:
                        workers.remove(candidate)
                        stale.append(candidate)
            pool = self._idle.get(spec.fingerprint, [])
            if pool:
                worker = pool.pop()
                self._busy.add(worker)
        for old in stale:
            old.kill()
        if worker is None:
            worker = Worker(spec, self.code.directory(spec), self._base_env, self.endpoint)
            with self._lock:
                self._busy.add(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if worker.alive:
                self._idle[worker.spec.fingerprint].append(worker)

    def prewarm(self, spec: FunctionSpec) -> None:
        """Start a worker for ``spec`` if none is warm, so the first event does not wait for it."""
        with self._lock:
            if self._idle.get(spec.fingerprint) or any(
                w.spec.fingerprint == spec.fingerprint for w in self._busy
            ):
                return
        try:
            self._release(self._acquire(spec))
        except AwsError as err:
            log.warning("not pre-warming %s: %s", spec.name, err.message)

    def reap(self) -> None:
        """Stop idle workers whose function was deleted or changed, and the oldest beyond
        :data:`MAX_IDLE_WORKERS`, so that a long session does not pile up processes."""
        with self._lock:
            idle = [w for pool in self._idle.values() for w in pool]
        current: dict[str, str | None] = {}
        doomed = []
        for worker in idle:
            spec = worker.spec
            if spec.arn not in current:
                current[spec.arn] = _current_fingerprint(spec)
            if current[spec.arn] != spec.fingerprint:
                doomed.append(worker)
        keep = sorted((w for w in idle if w not in doomed), key=lambda w: w.idle_since)
        doomed += keep[: max(0, len(keep) - MAX_IDLE_WORKERS)]
        stopped = []
        with self._lock:
            for worker in doomed:
                pool = self._idle.get(worker.spec.fingerprint, [])
                if worker in pool:  # not taken for an invocation meanwhile
                    pool.remove(worker)
                    stopped.append(worker)
        for worker in stopped:
            worker.kill()

    # --- invoking ----------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, payload: bytes, invoked_arn: str | None = None) -> Outcome:
        """Run one invocation on a warm (or new) worker and ship its logs."""
        crash = self.faults.take_crash(spec.name)
        worker = self._acquire(spec)
        try:
            outcome = worker.invoke(payload, invoked_arn or spec.arn, crash)
        finally:
            self._release(worker)
        with self._lock:
            self.invocations += 1
        self.shipper.ship(f"/aws/lambda/{spec.name}", outcome.log_stream, outcome.events)
        if outcome.failed:
            log.info("%s %s failed: %s", spec.name, outcome.request_id, outcome.error)
        return outcome

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "workers_warm": sum(len(w) for w in self._idle.values()),
                "workers_busy": len(self._busy),
                "invocations": self.invocations,
            }

    def stop(self) -> None:
        with self._lock:
            workers = [w for pool in self._idle.values() for w in pool] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for worker in workers:
            worker.kill()
        shutil.rmtree(self._root, ignore_errors=True)
