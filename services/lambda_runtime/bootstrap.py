"""The worker process of the local Lambda runtime: one function, many invocations, one at a time.

Run as a script (``python bootstrap.py``) with the function's code directory as the working
directory and the Lambda environment variables set. It speaks JSON lines: invocations arrive
on stdin; log lines and results leave on the original stdout, which is kept private so that
nothing the handler prints can corrupt the protocol.

Stdlib only, on purpose: the function's code decides what else is imported, as on AWS.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

_CHANNEL = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
# Anything written to fd 1 below Python (a C extension, a child process) goes to stderr,
# never into the protocol channel.
os.dup2(2, 1)


def _send(message: dict[str, Any]) -> None:
    _CHANNEL.write(json.dumps(message) + "\n")
    _CHANNEL.flush()


class _LogWriter:
    """sys.stdout/sys.stderr: each complete write becomes one log event, as on AWS."""

    def __init__(self) -> None:
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        if "\n" in self._buffer:
            complete, _, self._buffer = self._buffer.rpartition("\n")
            _send({"type": "log", "data": complete + "\n", "ts": int(time.time() * 1000)})
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer = self._buffer, ""
            _send({"type": "log", "data": data, "ts": int(time.time() * 1000)})

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


_writer = _LogWriter()
sys.stdout = _writer
sys.stderr = _writer


class _Context:
    """The ``context`` argument, with the attributes the Python runtime gives it."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = request["functionArn"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.aws_request_id = request["requestId"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = request.get("clientContext")
        self._deadline_ms = int(request["deadlineMs"])

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_request_filter = _RequestIdFilter()


def _install_logging() -> None:
    # The Python runtime's default format; the root logger stays at WARNING unless the
    # function raises it, as on AWS.
    handler = logging.StreamHandler(_writer)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    handler.addFilter(_request_filter)
    logging.getLogger().addHandler(handler)


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    # The runtime's own frames are not the function's business (AWS shows only the handler's).
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _load_handler() -> tuple[Any, dict[str, Any] | None]:
    spec = os.environ["_HANDLER"]
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        return None, {
            "errorMessage": f"Bad handler '{spec}': not enough values to unpack "
            "(expected 2, got 1)",
            "errorType": "Runtime.MalformedHandlerName",
            "stackTrace": [],
        }
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        error = _error(exc, "Runtime.ImportModuleError")
        error["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        traceback.print_exc()
        return None, error
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, {
            "errorMessage": f"Handler '{function_name}' missing on module '{module_name}'",
            "errorType": "Runtime.HandlerNotFound",
            "stackTrace": [],
        }
    return handler, None


def main() -> None:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    # The function's code comes first on the path, as /var/task does on AWS.
    sys.path[0] = task_root
    _install_logging()
    handler, init_error = _load_handler()
    _writer.flush()
    _send({"type": "ready", "initError": init_error})
    for line in sys.stdin:
        request = json.loads(line)
        _request_filter.request_id = request["requestId"]
        if request.get("crash") == "before":
            os._exit(1)  # injected: the runtime dies before the handler runs
        if init_error is not None:
            _send({"type": "result", "error": init_error})
            continue
        try:
            result = handler(json.loads(request["payload"]), _Context(request))
        except Exception as exc:
            _writer.flush()
            error = _error(exc)
            # The Python runtime logs the error, with its traceback, before returning it.
            sys.stdout.write(
                f"[ERROR] {error['errorType']}: {error['errorMessage']}\n"
                "Traceback (most recent call last):\n" + "".join(error["stackTrace"])
            )
            _send({"type": "result", "error": error})
            continue
        finally:
            _writer.flush()
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as exc:
            error = _error(exc, "Runtime.MarshalError")
            error["errorMessage"] = f"Unable to marshal response: {exc}"
            _send({"type": "result", "error": error})
            continue
        if request.get("crash") == "after":
            os._exit(1)  # injected: the handler ran, then the runtime died
        _send({"type": "result", "payload": payload})


if __name__ == "__main__":
    main()
