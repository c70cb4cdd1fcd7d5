"""The ``docker`` executor: the image runs through the Docker Engine HTTP API, stdlib only.

``DOCKER_HOST`` chooses the engine (``unix:///path`` or ``tcp://host:port``), default
``unix:///var/run/docker.sock``. An attempt is: create (pulling the image when the engine
does not have it), start, wait, logs, remove.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import struct
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from services.batch.executors import KillRegistrar, Outcome, RunSpec, cannot_start

API = "/v1.41"
DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerError(RuntimeError):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class DockerClient:
    """The handful of Engine API calls a Batch attempt needs."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        url = urlsplit(self.host)
        if url.scheme == "unix":
            return _UnixConnection(url.path, timeout)
        if url.scheme in ("tcp", "http"):
            return http.client.HTTPConnection(
                url.hostname or "localhost", url.port, timeout=timeout
            )
        raise DockerError(f"DOCKER_HOST {self.host!r}: only unix:// and tcp:// are supported")

    def request(
        self, method: str, path: str, body: Any = None, timeout: float | None = 60
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self._connection(timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, API + path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def _checked(self, method: str, path: str, body: Any = None, **kw: Any) -> bytes:
        status, _, data = self.request(method, path, body, **kw)
        if status >= 400:
            raise DockerError(f"{method} {path}: {status} {_message(data)}")
        return data

    def pull(self, image: str) -> None:
        name, _, tag = image.partition("@")[0].rpartition(":")
        if not name or "/" in tag:  # no tag: "repo" or "host:port/repo"
            name, tag = image, "latest"
        data = self._checked(
            "POST", "/images/create?" + urlencode({"fromImage": name, "tag": tag}), timeout=600
        )
        for line in data.splitlines():  # a progress stream; a failed pull says so in a line
            if line.strip() and "error" in json.loads(line):
                raise DockerError(f"pull {image}: {json.loads(line)['error']}")

    def create(self, image: str, command: list[str], env: dict[str, str], name: str) -> str:
        host_config: dict[str, object] = {"ExtraHosts": ["host.docker.internal:host-gateway"]}
        # Under docker compose the job joins the compose network, where the gateway answers
        # as http://batchbridge:4566 (BATCHBRIDGE_DOCKER_ENDPOINT_URL).
        network = os.environ.get("BATCHBRIDGE_DOCKER_NETWORK")
        if network:
            host_config["NetworkMode"] = network
        spec = {
            "Image": image,
            "Cmd": command or None,
            "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": {"batchbridge.job-id": env.get("AWS_BATCH_JOB_ID", "")},
            # The job reaches the environment's endpoint on the host through this name.
            "HostConfig": host_config,
        }
        path = "/containers/create?" + urlencode({"name": name})
        status, _, data = self.request("POST", path, spec)
        if status == 404:
            self.pull(image)
            status, _, data = self.request("POST", path, spec)
        if status >= 400:
            raise DockerError(f"create container from {image}: {status} {_message(data)}")
        return str(json.loads(data)["Id"])

    def start(self, container: str) -> None:
        self._checked("POST", f"/containers/{quote(container)}/start")

    def wait(self, container: str) -> int:
        data = self._checked("POST", f"/containers/{quote(container)}/wait", timeout=None)
        return int(json.loads(data)["StatusCode"])

    def logs(self, container: str) -> str:
        status, _headers, data = self.request(
            "GET", f"/containers/{quote(container)}/logs?stdout=1&stderr=1"
        )
        if status >= 400:
            return ""
        return _demultiplex(data).decode("utf-8", "replace")

    def kill(self, container: str) -> None:
        self.request("POST", f"/containers/{quote(container)}/kill")

    def remove(self, container: str) -> None:
        self.request("DELETE", f"/containers/{quote(container)}?force=1")


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data).get("message", data[:200]))
    except ValueError:
        return data[:200].decode("utf-8", "replace")


def _demultiplex(data: bytes) -> bytes:
    """Logs of a container without a TTY come in frames: 1 byte stream, 3 zero bytes, a
    4-byte big-endian length, then the payload. Anything else is raw output."""
    out, pos = bytearray(), 0
    while pos + 8 <= len(data) and data[pos] in (0, 1, 2) and data[pos + 1 : pos + 4] == b"\0\0\0":
        (size,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        out += data[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return bytes(out) if pos else data


def container_endpoint(endpoint: str) -> str:
    """The environment's endpoint as a container sees it (loopback is the container's own)."""
    override = os.environ.get("BATCHBRIDGE_DOCKER_ENDPOINT_URL")
    if override:
        return override
    for loopback in ("127.0.0.1", "localhost", "0.0.0.0"):
        endpoint = endpoint.replace(f"//{loopback}:", "//host.docker.internal:")
    return endpoint


class DockerExecutor:
    name = "docker"

    def __init__(self, host: str | None = None) -> None:
        self.client = DockerClient(host)

    def run(self, spec: RunSpec, on_kill: KillRegistrar) -> Outcome:
        env = dict(spec.environment)
        if "AWS_ENDPOINT_URL" in env:
            env["AWS_ENDPOINT_URL"] = container_endpoint(env["AWS_ENDPOINT_URL"])
        name = f"batchbridge-{spec.job_id.replace(':', '-')}-{spec.attempt}"
        try:
            container = self.client.create(spec.image, spec.command, env, name)
        except (DockerError, OSError) as exc:
            return cannot_start(f"docker engine at {self.client.host}: {exc}")
        try:
            on_kill(lambda: self.client.kill(container))
            self.client.start(container)
            exit_code = self.client.wait(container)
            output = self.client.logs(container)
        except (DockerError, OSError) as exc:
            return cannot_start(f"docker engine at {self.client.host}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                self.client.remove(container)
        return Outcome(exit_code=exit_code, output=output)
