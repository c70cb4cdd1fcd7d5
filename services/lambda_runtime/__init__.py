"""batchbridge's local Lambda data plane: Invoke runs a function's zip in a warm worker
process, and SQS event source mappings are served by real pollers (see docs/local-lambda.md).
moto keeps the control plane (CreateFunction, CreateEventSourceMapping, …).
"""

from __future__ import annotations

from typing import Any

from services.lambda_runtime.service import LambdaService


def create(env: Any) -> LambdaService:
    return LambdaService(env)


__all__ = ["LambdaService", "create"]
