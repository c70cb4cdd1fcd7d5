"""SageMaker's errors, as botocore's model names them (all HTTP 400)."""

from __future__ import annotations

from services.protocol import AwsError


class ValidationException(AwsError):
    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message, 400)


class ResourceNotFound(AwsError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFound", message, 400)


class ConflictException(AwsError):
    def __init__(self, message: str) -> None:
        super().__init__("ConflictException", message, 400)
