"""How fast the local environment starts, and how fast an SQS message reaches its Lambda.

    .venv/bin/python benchmarks/bench_local_env.py [--messages 50] [--starts 3]

Prints a markdown table: LocalEnvironment start-to-ready (the first start in a process pays
for importing moto; later ones do not), and SendMessage-to-handler latency, measured from
just before the client's SendMessage call to the first line of the handler, one message at a
time through an SQS event source mapping with a warm worker.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.environment import LocalEnvironment

HANDLER = """
import json, os, time
import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    at = time.time()
    for record in event["Records"]:
        sqs.send_message(
            QueueUrl=os.environ["OBSERVER_URL"],
            MessageBody=json.dumps({"at": at, "body": record["body"]}),
        )
"""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def measure_start(starts: int) -> list[float]:
    seconds = []
    for _ in range(starts):
        started = time.perf_counter()
        env = LocalEnvironment(port=0)
        env.start()
        seconds.append(time.perf_counter() - started)
        env.stop()
    return seconds


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def measure_latency(messages: int) -> list[float]:
    with LocalEnvironment(port=0) as env:
        sqs, lam, iam = env.client("sqs"), env.client("lambda"), env.client("iam")
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        observer = sqs.create_queue(QueueName="bench-observer")["QueueUrl"]
        source = sqs.create_queue(QueueName="bench-source")["QueueUrl"]
        source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        lam.create_function(
            FunctionName="bench",
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zip(HANDLER)},
            Environment={"Variables": {"OBSERVER_URL": observer}},
        )
        lam.create_event_source_mapping(
            FunctionName="bench", EventSourceArn=source_arn, BatchSize=1
        )
        latencies = []
        for index in range(messages + 1):
            sent = time.time()
            sqs.send_message(QueueUrl=source, MessageBody=str(index))
            report = _wait_for(sqs, observer)
            if index > 0:  # the first message warms the worker
                latencies.append(report["at"] - sent)
        return latencies


def _wait_for(sqs: Any, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            report: dict[str, Any] = json.loads(message["Body"])
            return report
    raise TimeoutError("the handler never reported; is the Lambda runtime loaded?")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50, help="messages to time (>= 30)")
    parser.add_argument("--starts", type=int, default=3, help="environment starts to time")
    args = parser.parse_args(argv)
    starts = measure_start(args.starts)
    latencies = [s * 1000 for s in measure_latency(args.messages)]
    print("| measurement | first | median | p95 | n |")
    print("|---|---|---|---|---|")
    print(
        f"| LocalEnvironment start to ready (s) | {starts[0]:.3f} | "
        f"{statistics.median(starts):.3f} | {_percentile(starts, 0.95):.3f} | {len(starts)} |"
    )
    print(
        f"| SendMessage to handler (ms) | {latencies[0]:.1f} | "
        f"{statistics.median(latencies):.1f} | {_percentile(latencies, 0.95):.1f} | "
        f"{len(latencies)} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
