"""The Lambda data plane behind the gateway: Invoke, plus the control path for faults."""

from __future__ import annotations

import base64
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from werkzeug.wrappers import Request, Response

from services.lambda_runtime.esm import EventSourcePollers
from services.lambda_runtime.faults import LambdaFaults
from services.lambda_runtime.functions import lookup
from services.lambda_runtime.logs import LogShipper
from services.lambda_runtime.runtime import Runtime
from services.protocol import AwsError, json_body, json_response, operation_of

log = logging.getLogger("batchbridge.lambda")

#: Invoke's synchronous payload limit.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def _region_of(request: Request, default: str) -> str:
    auth = request.headers.get("Authorization", "")
    if "Credential=" in auth:
        parts = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(parts) == 5:
            return parts[2]
    return default


class LambdaService:
    """Serves Invoke by running functions; every other Lambda API is moto's."""

    name = "lambda"

    def __init__(self, env: Any) -> None:
        self.env = env
        self.faults = LambdaFaults()
        self.shipper = LogShipper(env.client)
        self.runtime = Runtime(env.endpoint, env.region, self.shipper, self.faults)
        self.pollers = EventSourcePollers(self.runtime, self.faults)
        self._async = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lambda-event")
        self._ready = False

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.shipper.start()
        self.pollers.start()
        self._ready = True

    def stop(self) -> None:
        self._ready = False
        self.pollers.stop()
        self._async.shutdown(wait=False, cancel_futures=True)
        self.runtime.stop()
        self.shipper.flush(timeout=2)
        self.shipper.stop()

    def health(self) -> dict[str, Any]:
        return {"ready": self._ready, **self.runtime.stats(), **self.pollers.stats()}

    # --- the API ---------------------------------------------------------------------

    def handle(self, request: Request, operation: str | None) -> Response | None:
        if operation == "Invoke":
            return self._invoke(request)
        if operation == "InvokeWithResponseStream":
            raise AwsError(
                "UnsupportedOperationException",
                "InvokeWithResponseStream is not supported by batchbridge's local Lambda "
                "runtime; use Invoke.",
            )
        return None

    def _invoke(self, request: Request) -> Response:
        _, labels = operation_of("lambda", request)
        region = _region_of(request, self.env.region)
        spec = lookup(
            self.env.account_id, region, labels["FunctionName"], request.args.get("Qualifier")
        )
        payload = request.get_data(cache=True) or b"{}"
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise AwsError(
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the Invoke operation",
                413,
            )
        try:
            json.loads(payload)
        except ValueError as exc:
            raise AwsError(
                "InvalidRequestContentException",
                f"Could not parse request body into json: Could not parse payload into json: {exc}",
                400,
            ) from exc
        kind = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            return Response(status=204, headers={"X-Amz-Executed-Version": spec.version})
        if kind == "Event":
            self._async.submit(self._invoke_event, spec, payload)
            return Response(status=202, headers={"X-Amz-Executed-Version": spec.version})
        if kind != "RequestResponse":
            raise AwsError(
                "InvalidParameterValueException",
                f"Invocation type {kind!r} is not one of RequestResponse, Event, DryRun",
            )
        outcome = self.runtime.invoke(spec, payload)
        response = Response(outcome.payload, status=200, content_type="application/json")
        response.headers["X-Amz-Executed-Version"] = spec.version
        if outcome.failed:
            response.headers["X-Amz-Function-Error"] = "Unhandled"
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            response.headers["X-Amz-Log-Result"] = base64.b64encode(outcome.tail()).decode()
        return response

    def _invoke_event(self, spec: Any, payload: bytes) -> None:
        # Asynchronous invocations are run once; AWS's two retries are not emulated.
        try:
            self.runtime.invoke(spec, payload)
        except Exception:
            log.exception("asynchronous invocation of %s failed", spec.name)

    # --- the control path --------------------------------------------------------------

    def control(self, request: Request, subpath: str) -> Response | None:
        path = subpath.strip("/")
        if path == "faults":
            if request.method == "DELETE":
                self.faults.clear()
                return json_response({"cleared": True})
            return json_response(self.faults.report())
        if path in ("crash", "duplicate") and request.method == "POST":
            spec = json_body(request)
            try:
                count = int(spec.get("count", 1))
                if path == "crash":
                    self.faults.add_crash(
                        str(spec["function"]), count, str(spec.get("when", "before"))
                    )
                else:
                    self.faults.add_duplicate(str(spec["queue"]), count)
            except (KeyError, TypeError, ValueError) as exc:
                need = "function (and count, when)" if path == "crash" else "queue (and count)"
                raise AwsError(
                    "ValidationException",
                    f"a {path} fault needs {need}; see docs/local-lambda.md: {exc}",
                ) from exc
            return json_response({"added": {path: spec}, "faults": self.faults.report()})
        return None
