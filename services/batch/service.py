"""The Batch data plane behind the gateway: the job APIs over HTTP, the control path, health.

SubmitJob, DescribeJobs, ListJobs, TerminateJob and CancelJob are answered here; every other
Batch operation (compute environments, job queues, job definitions) is moto's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from services.batch.engine import BatchEngine
from services.batch.listing import client_error
from services.batch.scripts import parse_script
from services.protocol import AwsError, json_body, json_response


def region_of(request: Request) -> str | None:
    """The region in the SigV4 credential scope (``Credential=AKID/date/REGION/batch/…``)."""
    auth = request.headers.get("Authorization", "")
    if "Credential=" not in auth:
        return None
    parts = auth.split("Credential=", 1)[1].split(",", 1)[0].strip().split("/")
    return parts[2] if len(parts) == 5 else None


def _required(body: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if body.get(n) in (None, "")]
    if missing:
        raise client_error(f"missing required parameter(s): {', '.join(missing)}")


class BatchService:
    name = "batch"

    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine
        self._operations: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            "SubmitJob": self._submit_job,
            "DescribeJobs": self._describe_jobs,
            "ListJobs": lambda body, region: self.engine.list_jobs(body),
            "TerminateJob": self._terminate_job,
            "CancelJob": self._cancel_job,
        }

    def handle(self, request: Request, operation: str | None) -> Response | None:
        handler = self._operations.get(operation or "")
        if handler is None:
            return None  # moto's control plane
        region = region_of(request) or self.engine.region
        return json_response(handler(json_body(request), region))

    def _submit_job(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        _required(body, "jobName", "jobQueue", "jobDefinition")
        return self.engine.submit_job(body, region)

    def _describe_jobs(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        _required(body, "jobs")
        return self.engine.describe_jobs([str(j) for j in body["jobs"]])

    def _terminate_job(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        _required(body, "jobId", "reason")
        self.engine.terminate_job(str(body["jobId"]), str(body["reason"]))
        return {}

    def _cancel_job(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        _required(body, "jobId", "reason")
        self.engine.cancel_job(str(body["jobId"]), str(body["reason"]))
        return {}

    # --- /_batchbridge/batch/… ------------------------------------------------------------

    def control(self, request: Request, subpath: str) -> Response | None:
        path = subpath.strip("/")
        if path == "scripts":
            if request.method == "DELETE":
                self.engine.scripts.clear()
                return json_response({"cleared": True})
            if request.method == "POST":
                try:
                    spec = json.loads(request.get_data() or b"{}")
                except ValueError as exc:
                    raise AwsError(
                        "ValidationException", f"a script is a JSON object: {exc}"
                    ) from exc
                script = parse_script(spec)
                self.engine.scripts.add(script)
                return json_response({"added": script.describe()})
            return json_response({"scripts": self.engine.scripts.describe()})
        if path == "state":
            return json_response(self.engine.state())
        return None

    def health(self) -> dict[str, Any]:
        state = self.engine.state()
        return {"ready": self.engine.ready, "executor": state["executor"], "jobs": state["counts"]}

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()
