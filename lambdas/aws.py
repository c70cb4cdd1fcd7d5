"""boto3 clients for the Lambdas, built once per container and reused across invocations.

boto3 reads AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) itself, so the same code talks
to AWS or to the local environment without a special case here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sqs import SQSClient

# botocore's retries are off: lambdas.retry is the single, bounded retry layer.
CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="batchbridge",
)


@dataclass(frozen=True)
class Clients:
    batch: BatchClient
    sqs: SQSClient
    sagemaker: SageMakerClient


@cache
def default_clients() -> Clients:
    return Clients(
        batch=boto3.client("batch", config=CLIENT_CONFIG),
        sqs=boto3.client("sqs", config=CLIENT_CONFIG),
        sagemaker=boto3.client("sagemaker", config=CLIENT_CONFIG),
    )
