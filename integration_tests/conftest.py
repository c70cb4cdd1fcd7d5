"""Where the integration tests run.

By default they start the embedded local environment in this process, on a free port.
``BATCHBRIDGE_TEST_TARGET`` chooses another target:

- ``embedded`` (default): the embedded environment, started here.
- ``endpoint``: an environment already running at ``BATCHBRIDGE_TEST_ENDPOINT``
  (``batchbridge local up`` or ``docker compose up``), default http://127.0.0.1:4566.
- ``aws``: real AWS, with the ambient credentials. Tests that need the local control path
  (fault injection, scripted jobs) skip there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

TARGET = os.environ.get("BATCHBRIDGE_TEST_TARGET", "embedded")


class Target:
    """What the tests talk to: an endpoint (None for real AWS) and a region."""

    def __init__(self, endpoint: str | None, region: str, env: Any = None) -> None:
        self.endpoint = endpoint
        self.region = region
        self.env = env  # the embedded LocalEnvironment, when there is one

    @property
    def local(self) -> bool:
        return self.endpoint is not None

    def client(self, service: str, **kwargs: Any) -> Any:
        if self.endpoint is None:
            kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
            return boto3.client(service, region_name=self.region, **kwargs)
        from services.environment import endpoint_client

        return endpoint_client(service, self.endpoint, self.region, **kwargs)


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    if TARGET == "aws":
        yield Target(None, region)
        return
    if TARGET == "endpoint":
        yield Target(os.environ.get("BATCHBRIDGE_TEST_ENDPOINT", "http://127.0.0.1:4566"), region)
        return
    from services.environment import LocalEnvironment

    env = LocalEnvironment(port=0, executor="process", region=region)
    env.start()
    try:
        yield Target(env.endpoint, region, env)
    finally:
        env.stop()


@pytest.fixture
def client(target: Target) -> Callable[..., Any]:
    """``client("sqs")``: a boto3 client for the target."""
    return target.client


@pytest.fixture
def local_only(target: Target) -> Target:
    """Skip a test that needs the local control path when the target is real AWS."""
    if not target.local:
        pytest.skip("needs batchbridge's control path (/_batchbridge/…); the target is real AWS")
    return target
