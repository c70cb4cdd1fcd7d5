"""A stand-in for LocalStack, for checking the compose path without a Docker engine.

moto's server app on a loopback port, plus LocalStack's ``/_localstack/health``, answering
Batch and SageMaker with 501 as LocalStack community does. It runs in
its own process, so that its state never mixes with an embedded environment's in-process moto
(the pytest session may host one). Prints ``ready <url>`` once it serves.

    python tests/compose/localstack_standin.py [--port 0]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

#: What LocalStack community does not serve: it answers these with 501.
NOT_SERVED = ("batch", "sagemaker")


def _signing_name(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[3] if "Credential=" in auth and len(scope) == 5 else ""


def standin_app() -> Any:
    from moto.core import config as moto_config

    # LocalStack runs Lambdas in Docker; no engine here, so moto only echoes invocations.
    moto_config.default_user_config["lambda"] = {"use_docker": False}
    from moto.server import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)
    not_served = json.dumps(
        {"__type": "InternalFailure", "message": "not included in your current license plan"}
    ).encode()
    health = json.dumps(
        {
            "edition": "community",
            "version": "4.14.0-standin",
            "services": {
                name: "running"
                for name in ("sqs", "lambda", "s3", "iam", "sts", "logs", "cloudformation")
            },
        }
    ).encode()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/_localstack/health":
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(health)))],
            )
            return [health]
        if _signing_name(environ) in NOT_SERVED:
            start_response(
                "501 Not Implemented",
                [("Content-Type", "application/json"), ("Content-Length", str(len(not_served)))],
            )
            return [not_served]
        return moto_app(environ, start_response)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    from werkzeug.serving import make_server

    server = make_server(args.host, args.port, standin_app(), threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"ready http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
