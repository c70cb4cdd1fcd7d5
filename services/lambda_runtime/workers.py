"""One warm worker process per concurrent invocation of a function, as a Lambda sandbox is.

A :class:`Worker` runs ``bootstrap.py`` with the function's code and environment, and serves
one invocation at a time. It is killed when an invocation times out or the runtime crashes;
otherwise it goes back to the pool warm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.lambda_runtime.functions import FunctionSpec

log = logging.getLogger("batchbridge.lambda.worker")

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap.py")
#: AWS gives a function's init phase 10 s.
INIT_TIMEOUT_SECONDS = 10.0
#: Lambda's log tail (LogType=Tail) is the last 4 KB.
TAIL_BYTES = 4096


@dataclass
class Outcome:
    """What one invocation produced."""

    request_id: str
    payload: bytes = b"null"
    error: dict[str, Any] | None = None
    #: (timestamp ms, text) log events, START … REPORT included.
    events: list[tuple[int, str]] = field(default_factory=list)
    log_stream: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None

    def tail(self) -> bytes:
        return "".join(text for _, text in self.events).encode()[-TAIL_BYTES:]


def _now_ms() -> int:
    return int(time.time() * 1000)


def log_stream_name(version: str) -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


class Worker:
    """A Python process that has imported the function's handler."""

    def __init__(
        self, spec: FunctionSpec, code_dir: str, base_env: dict[str, str], endpoint: str
    ) -> None:
        self.spec = spec
        self.log_stream = log_stream_name(spec.version)
        self.idle_since = time.monotonic()
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ready = False
        self._init_ms: float | None = None
        self._started = time.perf_counter()
        env = dict(base_env)
        env.update(spec.environment)  # the function's variables, then the reserved ones
        env.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "LAMBDA_TASK_ROOT": code_dir,
                "_HANDLER": spec.handler,
            }
        )
        self.process = subprocess.Popen(
            [sys.executable, "-u", BOOTSTRAP],
            cwd=code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        threading.Thread(target=self._read, name=f"lambda-worker-{spec.name}", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("worker of %s wrote a bad protocol line: %r", self.spec.name, line)
                continue
            if message.get("type") == "ready":  # timed here: a pre-warmed worker may wait idle
                self._init_ms = (time.perf_counter() - self._started) * 1000
            self._messages.put(message)
        self._messages.put(None)  # the process has gone

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("worker %s of %s did not die", self.process.pid, self.spec.name)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _max_memory_mb(self) -> int:
        try:
            with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    def invoke(
        self, payload: bytes, invoked_arn: str, crash: str | None, request_id: str | None = None
    ) -> Outcome:
        """Run one invocation; on a timeout or crash the worker is dead afterwards."""
        outcome = Outcome(request_id or str(uuid.uuid4()), log_stream=self.log_stream)
        events = outcome.events
        if not self._ready:
            message = self._next(time.monotonic() + INIT_TIMEOUT_SECONDS, events)
            if message is None or message.get("type") != "ready":
                self.kill()
                outcome.error = _runtime_error(outcome.request_id, "Runtime.Unknown", "init failed")
                return outcome
            self._ready = True
        started = time.perf_counter()
        events.append(
            (_now_ms(), f"START RequestId: {outcome.request_id} Version: {self.spec.version}\n")
        )
        deadline = time.monotonic() + self.spec.timeout
        request = {
            "requestId": outcome.request_id,
            "functionArn": invoked_arn,
            "payload": payload.decode("utf-8") if payload else "{}",
            "deadlineMs": _now_ms() + int(self.spec.timeout * 1000),
            "crash": crash,
        }
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            message = self._next(deadline, events)
        except (BrokenPipeError, OSError):
            message = None
        if message is not None and message.get("type") == "result":
            if "error" in message:
                outcome.error = message["error"]
            else:
                outcome.payload = str(message["payload"]).encode()
        elif message is not None and message.get("type") == "timeout":
            self.kill()
            text = f"Task timed out after {self.spec.timeout:.2f} seconds"
            events.append(
                (
                    _now_ms(),
                    f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f}"[:-3]
                    + f"Z {outcome.request_id} {text}\n",
                )
            )
            outcome.error = _runtime_error(outcome.request_id, "Sandbox.Timedout", text)
        else:  # the process exited: a crash (injected, or the handler called os._exit)
            self.kill()
            code = self.process.returncode
            text = f"Runtime exited with error: exit status {code}"
            events.append(
                (_now_ms(), f"RequestId: {outcome.request_id} Error: {text}\nRuntime.ExitError\n")
            )
            outcome.error = _runtime_error(outcome.request_id, "Runtime.ExitError", text)
        if outcome.error is not None:
            outcome.payload = json.dumps(outcome.error).encode()
        duration = (time.perf_counter() - started) * 1000
        events.append((_now_ms(), f"END RequestId: {outcome.request_id}\n"))
        report = (
            f"REPORT RequestId: {outcome.request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {self.spec.memory_size} MB\t"
            f"Max Memory Used: {self._max_memory_mb()} MB"
        )
        if self._init_ms is not None:
            report += f"\tInit Duration: {self._init_ms:.2f} ms"
            self._init_ms = None  # reported once, on the cold start
        events.append((_now_ms(), report + "\t\n"))
        self.idle_since = time.monotonic()
        return outcome

    def _next(self, deadline: float, events: list[tuple[int, str]]) -> dict[str, Any] | None:
        """The next non-log message (collecting log lines); ``{"type": "timeout"}`` if too late."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"type": "timeout"}
            try:
                message = self._messages.get(timeout=remaining)
            except queue.Empty:
                return {"type": "timeout"}
            if message is None:
                return None
            if message.get("type") == "log":
                events.append((int(message.get("ts") or _now_ms()), str(message["data"])))
                continue
            return message


def _runtime_error(request_id: str, error_type: str, text: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {text}"}
