"""Proxy mode: forward what batchbridge does not serve to an upstream emulator (LocalStack).

Under docker compose, LocalStack serves SQS, Lambda, S3, IAM, CloudWatch Logs and
CloudFormation, and batchbridge serves Batch and SageMaker. Clients still use one endpoint:
the gateway answers Batch and SageMaker itself and hands every other request to the upstream
unchanged (method, path, query, headers, body) and streams the answer back.

Batch's control plane (compute environments, queues, job definitions) stays in the in-process
moto, because LocalStack's community edition has no Batch at all.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from werkzeug.wrappers import Request, Response

from services.protocol import AwsError

log = logging.getLogger("batchbridge.proxy")

#: SigV4 signing names batchbridge answers itself in proxy mode: its own data planes, and EC2,
#: whose default VPC, subnets and security groups are what moto's Batch validates a compute
#: environment against. Everything else goes upstream.
SERVED_LOCALLY = frozenset({"batch", "sagemaker", "ec2"})

#: Answered by the upstream, and also replayed into the in-process moto: moto's Batch looks up
#: a compute environment's service role in moto's own IAM, so IAM writes must land in both.
MIRRORED_LOCALLY = frozenset({"iam"})

#: moto's own control API stays local: it configures the moto that serves Batch here.
LOCAL_PATH_PREFIXES = ("/moto-api",)

# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded.
# Expect is dropped too: the gateway already holds the whole body.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)

# LocalStack reads the bucket or service from hostnames under its own domain
# (``bucket.s3.localhost.localstack.cloud``): such a Host is passed on as it is.
_UPSTREAM_OWN_DOMAIN = ".localhost.localstack.cloud"

_CHUNK = 64 * 1024


class Upstream:
    """An HTTP endpoint (LocalStack) that answers the services batchbridge does not serve."""

    def __init__(self, url: str, timeout: float = 960.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"upstream must be an http(s) URL such as http://localstack:4566, not {url!r}"
            )
        self.url = url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.netloc = parts.netloc
        # Long enough for a synchronous Lambda Invoke at the 15-minute maximum timeout.
        self.timeout = timeout

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def forward(self, request: Request) -> Response:
        """Send ``request`` upstream as it came and stream the upstream's answer back."""
        body = request.get_data(cache=True)
        headers = forwarded_headers(request, self.netloc)
        connection = self._connection(self.timeout)
        try:
            connection.request(request.method, raw_target(request), body=body, headers=headers)
            answer = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            log.warning(
                "upstream %s did not answer %s %s: %s", self.url, request.method, request.path, exc
            )
            raise AwsError(
                "ServiceUnavailable",
                f"batchbridge could not reach the upstream {self.url} ({exc}). "
                "Is LocalStack running and healthy? Check `docker compose ps`.",
                503,
            ) from exc
        response = Response(
            _stream(connection, answer),
            status=answer.status,
            direct_passthrough=True,
        )
        response.headers.clear()
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                response.headers.add(name, value)
        return response

    def health(self) -> dict[str, Any]:
        """LocalStack's ``/_localstack/health`` report, with ``ready`` added."""
        connection = self._connection(5.0)
        try:
            connection.request("GET", "/_localstack/health")
            answer = connection.getresponse()
            raw = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            return {"ready": False, "url": self.url, "error": str(exc)}
        finally:
            connection.close()
        try:
            report = json.loads(raw or b"{}")
        except ValueError:
            report = {"body": raw[:200].decode("utf-8", "replace")}
        if not isinstance(report, dict):
            report = {"body": report}
        return {"ready": answer.status == 200, "url": self.url, **report}


def goes_upstream(request: Request, service: str | None) -> bool:
    """Whether the gateway hands this request to the upstream in proxy mode."""
    if request.path.startswith(LOCAL_PATH_PREFIXES):
        return False
    # Unsigned requests (S3 presigned/plain URLs, /_localstack/…) have no service: upstream.
    return service not in SERVED_LOCALLY


def mirrors_locally(request: Request, service: str | None) -> bool:
    """Whether an upstream-answered request is also replayed into the in-process moto.

    Only writes: reads would only double the work.
    """
    if service not in MIRRORED_LOCALLY:
        return False
    action = request.values.get("Action", "")
    return not action.startswith(("Get", "List"))


def replay(app: Any, environ: dict[str, Any], body: bytes) -> None:
    """Send the same request to a WSGI app (moto) and discard its answer."""
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    result = app(copy, lambda status, headers, exc_info=None: None)
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def raw_target(request: Request) -> str:
    """The request target exactly as the client sent it, so S3 keys and signed queries survive."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return str(raw)
    target = quote(request.environ.get("SCRIPT_NAME", "") + request.path, safe="/~!$&'()*+,;=:@%")
    query = request.environ.get("QUERY_STRING", "")
    return f"{target}?{query}" if query else target


def forwarded_headers(request: Request, upstream_netloc: str) -> dict[str, str]:
    """The client's headers minus hop-by-hop ones, with Host pointing at the upstream."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        if name.lower() in _HOP_BY_HOP or name.lower() == "host":
            continue
        headers[name] = value
    client_host = request.headers.get("Host", "")
    hostname = client_host.rsplit(":", 1)[0] if client_host else ""
    headers["Host"] = client_host if hostname.endswith(_UPSTREAM_OWN_DOMAIN) else upstream_netloc
    if client_host:
        headers["X-Forwarded-Host"] = client_host
    headers["Content-Length"] = str(len(request.get_data(cache=True)))
    return headers


def _stream(
    connection: http.client.HTTPConnection, answer: http.client.HTTPResponse
) -> Iterator[bytes]:
    try:
        while chunk := answer.read(_CHUNK):
            yield chunk
    finally:
        connection.close()
