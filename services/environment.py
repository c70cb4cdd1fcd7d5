"""The embedded local environment: moto's control planes plus batchbridge's data planes,
behind one gateway on one port, in this process.

    with LocalEnvironment(port=0, executor="simulate") as env:
        boto3.client("sqs", endpoint_url=env.endpoint, ...)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from services.gateway import Gateway, Service
from services.proxy import Upstream

log = logging.getLogger("batchbridge.environment")

DEFAULT_PORT = 4566
DEFAULT_REGION = "us-east-1"
# moto's default account; MOTO_ACCOUNT_ID (which moto itself honours) changes it, e.g. to
# LocalStack's 000000000000 under docker compose so that ARNs from both sides agree.
ACCOUNT_ID = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
EXECUTORS = ("process", "simulate", "docker")
LISTEN_BACKLOG = 2048


def _configure_moto() -> Any:
    """moto in-process, with its own Lambda and Batch execution switched off.

    moto would run Lambdas and Batch jobs in Docker (none here) or, without Docker, echo
    Lambda payloads and mark jobs SUCCEEDED at once; batchbridge's services do both instead.
    """
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    from moto.core import config as moto_config

    moto_config.default_user_config["batch"] = {"use_docker": False}
    moto_config.default_user_config["lambda"] = {"use_docker": False}
    from moto.server import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def endpoint_client(service: str, endpoint: str, region: str, **kwargs: Any) -> Any:
    """A boto3 client for a local endpoint: "test" credentials (a local endpoint takes any,
    and real keys never leave for one) and few retries, so that injected faults show."""
    kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        **kwargs,
    )


class LocalEnvironment:
    """Start, serve and stop the whole local AWS environment."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        executor: str = "process",
        region: str = DEFAULT_REGION,
        upstream: str | None = None,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
        self.host = host
        self.port = port
        self.executor = executor
        self.region = region
        #: Proxy mode (docker compose): SQS, Lambda, S3, IAM, Logs and CloudFormation are
        #: served by LocalStack at this URL; batchbridge serves Batch and SageMaker.
        self.upstream = upstream
        self.account_id = ACCOUNT_ID
        self.gateway: Gateway | None = None
        self.services: dict[str, Service] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.ready_seconds: float | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def data_planes(self) -> list[str]:
        """The modules under services/ that serve data planes in this mode.

        ``BATCHBRIDGE_DATA_PLANES`` (comma separated) narrows the list, for working on one.
        In proxy mode LocalStack runs Lambdas, so batchbridge's Lambda runtime is not loaded.
        """
        planes = ["lambda_runtime", "batch", "sagemaker"]
        if self.upstream:
            planes.remove("lambda_runtime")
        only = os.environ.get("BATCHBRIDGE_DATA_PLANES")
        if only:
            planes = [p for p in planes if p in only.split(",")]
        return planes

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for this environment (any credentials do)."""
        return endpoint_client(service, self.endpoint, self.region, **kwargs)

    def start(self) -> str:
        started = time.perf_counter()
        # One line per HTTP request drowns what matters; `local up -v` turns them back on.
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_app = _configure_moto()
        import importlib

        # The server binds first so that services know the real port (port=0 picks one).
        self._server = make_server(self.host, self.port, app=self._app, threaded=True)
        # werkzeug listens with a backlog of 128, which overflows when a hundred Lambdas open
        # sixteen connections each at once: clients then see connect timeouts, not slow
        # answers (found by the scale benchmark). listen() again resizes it on Linux.
        self._server.socket.listen(LISTEN_BACKLOG)
        self.port = self._server.server_port
        # Imported here: each data plane pulls in moto's backends.
        for module_name in self.data_planes():
            service = importlib.import_module(f"services.{module_name}").create(self)
            self.services[service.name] = service
        upstream = Upstream(self.upstream) if self.upstream else None
        self.gateway = Gateway(moto_app, list(self.services.values()), upstream)
        for service in self.services.values():
            service.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="batchbridge-gateway", daemon=True
        )
        self._thread.start()
        self.ready_seconds = time.perf_counter() - started
        log.info("batchbridge local environment ready at %s", self.endpoint)
        return self.endpoint

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.gateway is not None
        return self.gateway(environ, start_response)

    def stop(self) -> None:
        for service in self.services.values():
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s", service.name)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalEnvironment:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
