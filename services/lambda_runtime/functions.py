"""A Lambda function as the local runtime needs it, read from moto's Lambda control plane.

moto stores what CreateFunction (through the endpoint, or moto's CloudFormation) was given;
this module turns one stored function into an immutable :class:`FunctionSpec` and unpacks its
code once per code version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from typing import Any

from services.protocol import AwsError


@dataclass(frozen=True)
class FunctionSpec:
    """Everything that decides how an invocation runs; equal specs can share warm workers."""

    name: str
    arn: str
    version: str
    handler: str
    runtime: str
    timeout: float
    memory_size: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str
    package_type: str = "Zip"
    code: bytes = field(default=b"", compare=False, repr=False)
    #: CloudFormation's ``Code.ZipFile`` is inline source, not a zip (moto keeps it as given).
    inline_source: str | None = field(default=None, compare=False, repr=False)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the code or the configuration a worker was started with changes."""
        parts = [
            self.arn,
            self.version,
            self.handler,
            self.runtime,
            str(self.timeout),
            str(self.memory_size),
            json.dumps(self.environment),
            self.code_sha256,
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def lambda_backend_dict() -> Any:
    """moto's Lambda backends in use: with use_docker off, moto keeps functions in its
    "simple" backend (``moto.awslambda.utils.get_backend`` chooses the same way)."""
    from moto.core import config as moto_config

    if moto_config.default_user_config.get("lambda", {}).get("use_docker", True) is False:
        from moto.awslambda_simple.models import lambda_simple_backends

        return lambda_simple_backends
    from moto.awslambda.models import lambda_backends

    return lambda_backends


def not_found(name: str, region: str, account_id: str) -> AwsError:
    arn = (
        name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    )
    return AwsError("ResourceNotFoundException", f"Function not found: {arn}", 404)


def lookup(account_id: str, region: str, name: str, qualifier: str | None = None) -> FunctionSpec:
    """The function ``name`` (a name, or a full or partial ARN) as moto stores it."""
    try:
        function = lambda_backend_dict()[account_id][region].get_function(name, qualifier)
    except Exception as exc:  # moto raises its own not-found types
        raise not_found(name, region, account_id) from exc
    if function is None:
        raise not_found(name, region, account_id)
    return spec_of(function)


def spec_of(function: Any) -> FunctionSpec:
    code = getattr(function, "code", {}) or {}
    inline = code.get("ZipFile") if isinstance(code.get("ZipFile"), str) else None
    return FunctionSpec(
        name=function.function_name,
        arn=function.function_arn,
        version=str(function.version),
        handler=function.handler or "",
        runtime=function.run_time or "",
        timeout=float(function.timeout or 3),
        memory_size=int(function.memory_size or 128),
        environment=tuple(sorted((str(k), str(v)) for k, v in function.environment_vars.items())),
        code_sha256=getattr(function, "code_sha_256", "") or "",
        package_type=getattr(function, "package_type", "Zip") or "Zip",
        code=getattr(function, "code_bytes", b"") or b"",
        inline_source=inline,
    )


class CodeStore:
    """Unpacks each code version once, into its own directory under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()

    def directory(self, spec: FunctionSpec) -> str:
        path = os.path.join(
            self.root,
            f"{spec.name}-{hashlib.sha256(spec.code_sha256.encode()).hexdigest()[:16]}".replace(
                "/", "_"
            ),
        )
        with self._lock:
            if not os.path.isdir(path):
                staging = path + ".partial"
                os.makedirs(staging, exist_ok=True)
                _unpack(spec, staging)
                os.replace(staging, path)
        return path


def _unpack(spec: FunctionSpec, target: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(spec.code)) as archive:
            archive.extractall(target)
        return
    except zipfile.BadZipFile:
        if spec.inline_source is None:
            raise AwsError(
                "InvalidZipFileException",
                f"Could not unzip the code of function {spec.name}: it is not a zip file. "
                "Deploy a zip (Code.ZipFile bytes or S3Bucket/S3Key).",
                502,
            ) from None
    # AWS saves inline CloudFormation code as index.py (handler "index.<name>").
    with open(os.path.join(target, "index.py"), "w", encoding="utf-8") as source:
        source.write(spec.inline_source)
