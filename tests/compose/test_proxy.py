"""Proxy mode's forwarding, against a tiny in-process upstream that echoes what it received."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services.gateway import Gateway
from services.proxy import Upstream, goes_upstream

SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/{service}/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _echo(environ: dict[str, Any], start_response: Any) -> Any:
    request = Request(environ)
    if request.path == "/stream":
        # No Content-Length: the upstream's server sends it chunked.
        chunks = (f"part-{i};".encode() * 10_000 for i in range(5))
        return Response(chunks, 200, content_type="application/octet-stream")(
            environ, start_response
        )
    if request.path == "/_localstack/health":
        return Response(json.dumps({"services": {"sqs": "running"}}), 200)(environ, start_response)
    seen = {
        "method": request.method,
        "raw_uri": environ.get("RAW_URI"),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": request.get_data().decode(),
    }
    response = Response(json.dumps(seen), 201, content_type="application/x-amz-json-1.0")
    response.headers["x-amzn-RequestId"] = "upstream-request"
    return response(environ, start_response)


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with _serving(_echo) as address:
        yield f"http://{address}"


def _moto_stand_in(environ: dict[str, Any], start_response: Any) -> Any:
    return Response("answered by the local moto", 200)(environ, start_response)


class _Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class _GatewayClient:
    """Real HTTP to a real gateway server, so the request target arrives as a client sends it."""

    def __init__(self, address: str) -> None:
        self.address = address

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> _Answer:
        host, port = self.address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return _Answer(answer.status, dict(answer.getheaders()), answer.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> _Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> _Answer:
        return self.request("POST", path, **kwargs)


@contextmanager
def _gateway_to(upstream_url: str) -> Iterator[_GatewayClient]:
    with _serving(Gateway(_moto_stand_in, [], Upstream(upstream_url))) as address:
        yield _GatewayClient(address)


@pytest.fixture(scope="module")
def gateway(upstream: str) -> Iterator[_GatewayClient]:
    with _gateway_to(upstream) as client:
        yield client


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_signed_request_reaches_the_upstream_unchanged(
    gateway: _GatewayClient, upstream: str
) -> None:
    response = gateway.post(
        "/some/path%2Fkey?b=2&a=1",
        body=b'{"QueueName": "q"}',
        headers={
            "Authorization": SIGV4.format(service="sqs"),
            "X-Amz-Target": "AmazonSQS.CreateQueue",
            "Content-Type": "application/x-amz-json-1.0",
            "Host": "localhost:4566",
            "Connection": "keep-alive",
        },
    )
    assert response.status_code == 201
    assert response.headers["x-amzn-RequestId"] == "upstream-request"
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["raw_uri"] == "/some/path%2Fkey?b=2&a=1"
    assert seen["body"] == '{"QueueName": "q"}'
    assert seen["headers"]["x-amz-target"] == "AmazonSQS.CreateQueue"
    assert seen["headers"]["authorization"].startswith("AWS4-HMAC-SHA256")
    assert seen["headers"]["host"] == upstream.split("//")[1]
    assert seen["headers"]["x-forwarded-host"] == "localhost:4566"
    assert seen["headers"].get("connection") != "keep-alive"


def test_a_chunked_upload_reaches_the_upstream_whole(gateway: _GatewayClient) -> None:
    host, port = gateway.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "PUT",
            "/bucket/key",
            body=iter([b"first,", b"second"]),
            headers={"Authorization": SIGV4.format(service="s3")},
            encode_chunked=True,
        )
        seen = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert seen["body"] == "first,second"
    assert "transfer-encoding" not in seen["headers"]


def test_a_chunked_answer_streams_back_whole(gateway: _GatewayClient) -> None:
    response = gateway.get("/stream")
    assert response.status_code == 200
    assert response.body == b"".join(f"part-{i};".encode() * 10_000 for i in range(5))


def test_unsigned_requests_go_upstream(gateway: _GatewayClient) -> None:
    response = gateway.get("/_localstack/health")
    assert response.json() == {"services": {"sqs": "running"}}


@pytest.mark.parametrize("service", ["batch", "sagemaker", "ec2"])
def test_services_batchbridge_serves_stay_local(gateway: _GatewayClient, service: str) -> None:
    response = gateway.post(
        "/v1/describejobs", headers={"Authorization": SIGV4.format(service=service)}
    )
    assert response.text == "answered by the local moto"


def test_moto_api_stays_local(gateway: _GatewayClient) -> None:
    assert gateway.get("/moto-api/").text == "answered by the local moto"


def test_health_includes_the_upstream(gateway: _GatewayClient) -> None:
    report = gateway.get("/_batchbridge/health").json()
    assert report["ready"] is True
    assert report["upstream"]["services"] == {"sqs": "running"}


def test_an_unreachable_upstream_is_an_aws_error_with_advice() -> None:
    with _gateway_to(f"http://127.0.0.1:{_closed_port()}") as gateway:
        response = gateway.post(
            "/",
            body=b"{}",
            headers={
                "Authorization": SIGV4.format(service="sqs"),
                "X-Amz-Target": "AmazonSQS.ListQueues",
            },
        )
        health = gateway.get("/_batchbridge/health")
    assert response.status_code == 503
    assert response.headers["x-amzn-ErrorType"] == "ServiceUnavailable"
    assert "Is LocalStack running" in response.json()["message"]
    assert health.status_code == 503 and health.json()["upstream"]["ready"] is False


def test_a_bad_upstream_url_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="http://localstack:4566"):
        Upstream("localstack:4566")


def test_routing_rules() -> None:
    def request(path: str = "/") -> Request:
        return Request.from_values(path)

    assert goes_upstream(request(), "sqs")
    assert goes_upstream(request(), "lambda")
    assert goes_upstream(request("/bucket/key"), None)
    assert not goes_upstream(request(), "batch")
    assert not goes_upstream(request("/moto-api/reset"), None)
