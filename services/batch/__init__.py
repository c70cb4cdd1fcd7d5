"""batchbridge's local AWS Batch data plane: jobs that really run (see docs/local-batch.md)."""

from __future__ import annotations

from typing import Any

from services.batch.engine import BatchEngine
from services.batch.executors import Executor, ProcessExecutor
from services.batch.logs import LogWriter
from services.batch.service import BatchService

__all__ = ["BatchEngine", "BatchService", "create"]


def make_executor(kind: str) -> Executor | None:
    """``process`` and ``docker`` run containers; ``simulate`` (None) only follows scripts."""
    if kind == "process":
        return ProcessExecutor()
    if kind == "docker":
        from services.batch.docker import DockerExecutor

        return DockerExecutor()
    if kind == "simulate":
        return None
    raise ValueError(f"unknown Batch executor {kind!r}: use process, simulate or docker")


def create(env: Any) -> BatchService:
    """The gateway plug-in for ``env`` (a ``services.environment.LocalEnvironment``)."""
    engine = BatchEngine(
        account_id=env.account_id,
        region=env.region,
        endpoint=env.endpoint,
        executor=make_executor(env.executor),
        log_writer=LogWriter(env.client("logs")),
    )
    return BatchService(engine)
