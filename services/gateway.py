"""One endpoint for every AWS API the loop uses.

A WSGI app that reads the service from the SigV4 credential scope of each request
(``Credential=AKID/date/region/SERVICE/aws4_request``), lets batchbridge's own services answer
the operations they serve, and hands everything else to moto's in-process app. The control
path ``/_batchbridge/…`` serves health, call counts and fault injection.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from services.protocol import AwsError, json_response, operation_of
from services.proxy import Upstream, goes_upstream, mirrors_locally, replay

log = logging.getLogger("batchbridge.gateway")

CONTROL_PREFIX = "/_batchbridge/"


class Service(Protocol):
    """A batchbridge data plane plugged into the gateway."""

    #: The SigV4 signing name of the API it serves (``batch``, ``lambda``, ``sagemaker`` …).
    name: str

    def handle(self, request: Request, operation: str | None) -> Response | None:
        """Answer the request, or return None to let moto answer it."""

    def control(self, request: Request, subpath: str) -> Response | None:
        """Answer ``/_batchbridge/<name>/<subpath>`` (fault injection, scripting), or None."""

    def health(self) -> dict[str, Any]:
        """A small JSON-able report; ``{"ready": True, …}`` once the service can serve."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def service_of(request: Request) -> str | None:
    """The SigV4 signing name from the Authorization header (or a presigned URL)."""
    auth = request.headers.get("Authorization", "")
    credential = ""
    if "Credential=" in auth:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0]
    elif "X-Amz-Credential" in request.args:
        credential = request.args["X-Amz-Credential"]
    parts = credential.strip().split("/")
    if len(parts) == 5:
        return parts[3].lower()
    return None


@dataclass
class FaultRule:
    service: str
    operation: str | None  # None: every operation of the service
    error: str  # "throttle" or "5xx" (or an explicit AWS error code)
    remaining: int

    def to_error(self) -> AwsError:
        if self.error == "throttle":
            if self.service == "sqs":
                return AwsError("RequestThrottled", "Rate exceeded (injected by batchbridge)", 400)
            return AwsError("ThrottlingException", "Rate exceeded (injected by batchbridge)", 400)
        if self.error == "5xx":
            return AwsError("InternalFailure", "Internal failure (injected by batchbridge)", 500)
        return AwsError(self.error, f"{self.error} (injected by batchbridge)", 400)


class FaultInjector:
    """Rules that make an API fail a given number of times; thread safe."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def add(self, rule: FaultRule) -> None:
        if rule.error not in ("throttle", "5xx") and not rule.error[:1].isupper():
            raise AwsError("ValidationException", "error must be 'throttle', '5xx' or an AWS code")
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def check(self, service: str, operation: str | None) -> AwsError | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining <= 0 or rule.service != service:
                    continue
                if rule.operation is not None and rule.operation != operation:
                    continue
                rule.remaining -= 1
                self.injected[f"{service}:{operation}:{rule.error}"] += 1
                return rule.to_error()
        return None


class Gateway:
    """The WSGI app behind the endpoint."""

    def __init__(
        self, moto_app: Any, services: list[Service], upstream: Upstream | None = None
    ) -> None:
        self.moto_app = moto_app
        #: Proxy mode (docker compose): what batchbridge does not serve goes to LocalStack.
        self.upstream = upstream
        self.services: dict[str, Service] = {s.name: s for s in services}
        self.faults = FaultInjector()
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    # WSGI entry point
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # Buffer the body once so that both our services and moto can read it.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if not length and environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()  # a chunked upload: the server de-chunks it
        environ["wsgi.input"] = io.BytesIO(body)
        request = Request(environ)
        request.get_data(cache=True)
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            response = self.dispatch(request)
        except AwsError as err:
            response = err.to_response(service_of(request))
        except Exception as exc:  # a bug of ours must still answer like AWS does
            log.exception("unhandled error serving %s %s", request.method, request.path)
            response = AwsError("InternalFailure", f"batchbridge: {exc}", 500).to_response(
                service_of(request)
            )
        upstream = self.upstream
        if (
            response is None
            and upstream is not None
            and goes_upstream(request, service_of(request))
        ):
            try:
                response = upstream.forward(request)
            except AwsError as err:
                response = err.to_response(service_of(request))
            if response.status_code < 300 and mirrors_locally(request, service_of(request)):
                replay(self.moto_app, environ, body)
        if response is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.moto_app(environ, start_response)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response | None:
        if request.path.startswith(CONTROL_PREFIX):
            return self.control(request, request.path[len(CONTROL_PREFIX) :])
        service = service_of(request)
        if service is None:
            return None  # unsigned: moto's own API (moto-api) or a plain S3 URL
        operation: str | None
        try:
            operation, _ = operation_of(service, request)
        except Exception:  # a service botocore has no model for: moto decides
            operation = None
        with self._calls_lock:
            self.calls[f"{service}:{operation}"] += 1
        fault = self.faults.check(service, operation)
        if fault is not None:
            return fault.to_response(service)
        plugin = self.services.get(service)
        if plugin is not None:
            return plugin.handle(request, operation)
        return None

    def control(self, request: Request, subpath: str) -> Response:
        head, _, rest = subpath.partition("/")
        if head == "health":
            report = {name: s.health() for name, s in self.services.items()}
            ready = all(part.get("ready", False) for part in report.values())
            body: dict[str, Any] = {"services": report}
            if self.upstream is not None:
                body["upstream"] = self.upstream.health()
                ready = ready and bool(body["upstream"]["ready"])
            return json_response({"ready": ready, **body}, 200 if ready else 503)
        if head == "calls":
            if request.method == "DELETE":
                with self._calls_lock:
                    self.calls.clear()
            with self._calls_lock:
                return json_response(dict(self.calls))
        if head == "faults":
            if request.method == "DELETE":
                self.faults.clear()
                return json_response({"cleared": True})
            if request.method == "GET":
                return json_response({"injected": dict(self.faults.injected)})
            spec = json.loads(request.get_data() or b"{}")
            try:
                rule = FaultRule(
                    service=str(spec["service"]),
                    operation=spec.get("operation"),
                    error=str(spec.get("error", "throttle")),
                    remaining=int(spec.get("count", 1)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise AwsError(
                    "ValidationException",
                    f"a fault needs service, and optionally operation, error "
                    f"('throttle'|'5xx'|CODE) and count: {exc}",
                ) from exc
            self.faults.add(rule)
            return json_response({"added": spec})
        plugin = self.services.get(head)
        if plugin is not None:
            answer = plugin.control(request, rest)
            if answer is not None:
                return answer
        raise AwsError(
            "NotFound",
            f"unknown control path {request.path!r}; see the README's 'Fault injection' section",
            404,
        )
