"""``batchbridge local up``: run the local AWS environment in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from services.environment import DEFAULT_PORT, DEFAULT_REGION, EXECUTORS, LocalEnvironment


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub = parser.add_subparsers(dest="local_command", required=True)
    up = sub.add_parser("up", help="start the local environment in the foreground")
    up.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 4566)")
    up.add_argument("--region", default=DEFAULT_REGION)
    up.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="process",
        help="how Batch jobs run: process (the command on this host), simulate (scripted), "
        "docker (needs a Docker engine)",
    )
    up.add_argument(
        "--upstream",
        default=None,
        help="proxy mode: serve SQS/Lambda/S3/IAM/Logs/CloudFormation from this URL "
        "(LocalStack under docker compose); batchbridge serves Batch and SageMaker",
    )
    up.add_argument("-v", "--verbose", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    env = LocalEnvironment(
        host=args.host,
        port=args.port,
        executor=args.executor,
        region=args.region,
        upstream=args.upstream,
    )
    try:
        env.start()
    except OSError as exc:
        print(
            f"batchbridge: cannot listen on {args.host}:{args.port} ({exc.strerror}). "
            f"Is another environment (or LocalStack) already running there? "
            f"Stop it, or pass --port.",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"batchbridge local environment ready in {env.ready_seconds:.2f}s at {env.endpoint}")
    print(f"  executor: {env.executor}   region: {env.region}")
    print(f"export AWS_ENDPOINT_URL={env.endpoint}", flush=True)
    try:
        stop.wait()
    finally:
        print("batchbridge: stopping…", flush=True)
        env.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argparse.ArgumentParser(prog="batchbridge local"))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
