"""Job output to CloudWatch Logs (group ``/aws/batch/job``), through the endpoint's Logs API.

It goes through boto3 at the endpoint, not moto's backend, so that it also lands in
LocalStack when docker compose serves Logs there.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("batchbridge.batch.logs")

LOG_GROUP = "/aws/batch/job"
_EVENTS_PER_CALL = 1000  # PutLogEvents' batch limit is 10,000; smaller calls stay well in size


def stream_name(definition_name: str, task_id: str) -> str:
    """AWS's ``<jobdef>/default/<task id>``; stream names may not contain ':'."""
    return f"{definition_name}/default/{task_id.replace(':', '-')}"


class LogWriter:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._group_ready = False
        self._lock = threading.Lock()

    def _ensure_group(self) -> None:
        with self._lock:
            if self._group_ready:
                return
            try:
                self._client.create_log_group(logGroupName=LOG_GROUP)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            self._group_ready = True

    def write(self, stream: str, text: str, timestamp_ms: int) -> None:
        """Create the stream and put ``text`` line by line; a Logs failure is logged, not
        raised, because a job's outcome must not depend on its log shipping."""
        try:
            self._ensure_group()
            try:
                self._client.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            lines = [line for line in text.splitlines() if line.strip()]
            for start in range(0, len(lines), _EVENTS_PER_CALL):
                events = [
                    {"timestamp": timestamp_ms, "message": line}
                    for line in lines[start : start + _EVENTS_PER_CALL]
                ]
                self._client.put_log_events(
                    logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events
                )
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not write job output to %s/%s: %s", LOG_GROUP, stream, exc)
