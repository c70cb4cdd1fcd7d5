"""The AWS wire protocol, as botocore's service models define it, for batchbridge's services.

The models in botocore's ``data/`` folder are the authority for every emulated API: this
module reads them to find which operation a request is for, and writes replies and errors
the way botocore parses them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel
from werkzeug.wrappers import Request, Response


@cache
def service_model(name: str) -> ServiceModel:
    """botocore's model for ``name`` (e.g. ``"batch"``, ``"sagemaker"``)."""
    return botocore.session.get_session().get_service_model(name)


@dataclass(frozen=True)
class _Route:
    operation: str
    method: str
    pattern: re.Pattern[str]


@cache
def _rest_routes(name: str) -> tuple[_Route, ...]:
    model = service_model(name)
    routes = []
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        uri = http["requestUri"].split("?")[0]
        # {Name} matches one segment, {Name+} the rest of the path.
        regex = re.sub(r"\{[^}]+\+\}", r"(?P<greedy>.+)", uri)
        regex = re.sub(r"\{([^}+]+)\}", r"(?P<\1>[^/]+)", regex)
        routes.append(_Route(op_name, http["method"], re.compile(f"^{regex.rstrip('/')}/?$")))
    # The most specific (longest literal) route wins when several match.
    routes.sort(key=lambda r: -len(r.pattern.pattern))
    return tuple(routes)


def operation_of(name: str, request: Request) -> tuple[str | None, dict[str, str]]:
    """The operation a request calls and its URI labels (rest protocols), or ``(None, {})``."""
    model = service_model(name)
    protocol = model.protocol
    target = request.headers.get("X-Amz-Target")
    if target and "." in target:
        return target.rsplit(".", 1)[1], {}
    if protocol in ("query", "ec2"):
        action = request.values.get("Action")
        return action, {}
    if protocol in ("rest-json", "rest-xml"):
        for route in _rest_routes(name):
            if route.method != request.method:
                continue
            match = route.pattern.match(request.path)
            if match:
                return route.operation, {k: v for k, v in match.groupdict().items() if v}
    return None, {}


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON body ({} when empty); a malformed body is a client error."""
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AwsError("SerializationException", f"request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AwsError("SerializationException", "request body must be a JSON object")
    return data


def json_response(data: Any, status: int = 200, service: str | None = None) -> Response:
    content_type = "application/json"
    if service is not None and service_model(service).protocol == "json":
        version = service_model(service).metadata.get("jsonVersion", "1.1")
        content_type = f"application/x-amz-json-{version}"
    return Response(
        json.dumps(data, default=_json_default), status=status, content_type=content_type
    )


def _json_default(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class AwsError(Exception):
    """An error as AWS reports it: a code, a message and an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def to_response(self, service: str | None = None) -> Response:
        protocol = service_model(service).protocol if service else "json"
        if protocol in ("query", "ec2", "rest-xml"):
            body = (
                "<ErrorResponse><Error><Type>"
                + ("Sender" if self.status < 500 else "Receiver")
                + f"</Type><Code>{self.code}</Code><Message>{_xml_escape(self.message)}"
                "</Message></Error><RequestId>batchbridge</RequestId></ErrorResponse>"
            )
            return Response(body, status=self.status, content_type="text/xml")
        response = json_response({"__type": self.code, "message": self.message}, self.status)
        response.headers["x-amzn-ErrorType"] = self.code
        if service == "sqs":
            # SQS speaks JSON but keeps its query-era error codes (awsQueryCompatible).
            kind = "Sender" if self.status < 500 else "Receiver"
            response.headers["x-amzn-query-error"] = f"{self.code};{kind}"
        return response


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unknown_operation(service: str, operation: str | None) -> AwsError:
    what = operation or "this request"
    return AwsError(
        "UnknownOperationException",
        f"{what} is not supported by batchbridge's local {service} service. "
        "See the README's 'Local environment' section for what is served locally.",
        400,
    )
