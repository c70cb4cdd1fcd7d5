"""The one place that knows where the sagemaker SDK keeps its workflow classes.

sagemaker v2 (``sagemaker<3``) has them under ``sagemaker.workflow.*``; v3 split the SDK into
``sagemaker.core`` (primitives: parameters, execution variables, the Lambda helper, Session)
and ``sagemaker.mlops`` (Pipeline and the steps), and needs a region at import time. Everything
else in batchbridge asks :func:`load` for the classes and never imports ``sagemaker`` itself.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from typing import Any

DEFAULT_REGION = "us-east-1"

# (attribute, v2 module, v3 module, name)
_CLASSES: tuple[tuple[str, str, str, str], ...] = (
    ("Pipeline", "sagemaker.workflow.pipeline", "sagemaker.mlops.workflow.pipeline", "Pipeline"),
    (
        "LambdaStep",
        "sagemaker.workflow.lambda_step",
        "sagemaker.mlops.workflow.lambda_step",
        "LambdaStep",
    ),
    (
        "LambdaOutput",
        "sagemaker.workflow.lambda_step",
        "sagemaker.mlops.workflow.lambda_step",
        "LambdaOutput",
    ),
    (
        "LambdaOutputTypeEnum",
        "sagemaker.workflow.lambda_step",
        "sagemaker.mlops.workflow.lambda_step",
        "LambdaOutputTypeEnum",
    ),
    (
        "CallbackStep",
        "sagemaker.workflow.callback_step",
        "sagemaker.mlops.workflow.callback_step",
        "CallbackStep",
    ),
    (
        "CallbackOutput",
        "sagemaker.workflow.callback_step",
        "sagemaker.mlops.workflow.callback_step",
        "CallbackOutput",
    ),
    (
        "CallbackOutputTypeEnum",
        "sagemaker.workflow.callback_step",
        "sagemaker.mlops.workflow.callback_step",
        "CallbackOutputTypeEnum",
    ),
    ("Lambda", "sagemaker.lambda_helper", "sagemaker.core.lambda_helper", "Lambda"),
    (
        "ParameterString",
        "sagemaker.workflow.parameters",
        "sagemaker.core.workflow.parameters",
        "ParameterString",
    ),
    (
        "ParameterInteger",
        "sagemaker.workflow.parameters",
        "sagemaker.core.workflow.parameters",
        "ParameterInteger",
    ),
    (
        "ExecutionVariables",
        "sagemaker.workflow.execution_variables",
        "sagemaker.core.workflow.execution_variables",
        "ExecutionVariables",
    ),
    ("Session", "sagemaker.session", "sagemaker.core.helper.session_helper", "Session"),
)


@dataclass(frozen=True)
class Sdk:
    """The workflow classes of one installed sagemaker SDK major version."""

    major: int
    Pipeline: Any
    LambdaStep: Any
    LambdaOutput: Any
    LambdaOutputTypeEnum: Any
    CallbackStep: Any
    CallbackOutput: Any
    CallbackOutputTypeEnum: Any
    Lambda: Any
    ParameterString: Any
    ParameterInteger: Any
    ExecutionVariables: Any
    Session: Any


def _load_major(major: int) -> Sdk:
    # batchbridge pins v2 on purpose (pyproject); its deprecation banner is noise here.
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    # The SDK prints "Not applying SDK defaults from …" to *stdout* at INFO unless the
    # logger already has a level; that would corrupt `python -m pipeline`'s JSON.
    # Its telemetry logger announces "will collect telemetry" even when opted out.
    for name in ("sagemaker.config", "sagemaker.telemetry.telemetry_logging"):
        noisy = logging.getLogger(name)
        if noisy.level == logging.NOTSET:
            noisy.setLevel(logging.WARNING)
    if major == 3:
        # v3 resolves a region while importing; without one it raises NoRegionError.
        os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    column = 1 if major == 2 else 2
    found: dict[str, Any] = {}
    for row in _CLASSES:
        module = importlib.import_module(row[column])
        found[row[0]] = getattr(module, row[3])
    return Sdk(major=major, **found)


def load(major: int | None = None) -> Sdk:
    """The installed SDK's classes: v2 if importable, else v3 (or exactly ``major``).

    Raises ImportError naming what to install when neither is there.
    """
    if major is not None:
        if major not in (2, 3):
            raise ValueError(f"sagemaker SDK major version must be 2 or 3, not {major}")
        return _load_major(major)
    errors = []
    for candidate in (2, 3):
        try:
            return _load_major(candidate)
        except ImportError as exc:
            errors.append(f"v{candidate}: {exc}")
    raise ImportError(
        "the sagemaker SDK is not installed (" + "; ".join(errors) + "). "
        "Install it with: pip install -e '.[pipeline]'"
    )


def offline_session(sdk: Sdk, region: str | None = None) -> Any:
    """A sagemaker Session that builds definitions without credentials or network.

    Creating one makes boto3 clients but calls no API; only a region is needed.
    """
    import boto3

    region = region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return sdk.Session(boto_session=boto3.Session(region_name=region))


#: sagemaker's defaults config that turns off its telemetry (an HTTPS call to an AWS host on
#: every pipeline create/start; pointless, and slow offline, against a local endpoint).
TELEMETRY_OPT_OUT = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def client_session(
    sdk: Sdk, boto_session: Any, sagemaker_client: Any, *, telemetry: bool = True
) -> Any:
    """A sagemaker Session whose API calls go through ``sagemaker_client`` (and so to its
    endpoint: the local environment or AWS)."""
    kwargs: dict[str, Any] = {"boto_session": boto_session, "sagemaker_client": sagemaker_client}
    if not telemetry:
        kwargs["sagemaker_config"] = TELEMETRY_OPT_OUT
    return sdk.Session(**kwargs)
