"""``make demo``: the whole loop, end to end, on the embedded local environment.

Starts the environment, deploys the stack to it, puts the tutorial's input files in local S3,
runs the pipeline (the tutorial's copy jobs, run for real by the ``process`` executor), shows
progress, checks every output file, prints the execution's status and timings, and shuts
everything down. Exit 0 only if the pipeline did what the variant expects:

- default: Succeeded, and every output file equals its input;
- ``--fail``: one input file is missing, so its copy job fails (``aws s3 cp`` exits 1) and the
  pipeline Fails with that job named in the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lambdas.contracts import split_job_ids

DATA_BUCKET = "batchbridge-demo"
STACK = "batchbridge-demo"


@dataclass
class Progress:
    """What has been shown already, so that each line printed is news."""

    started: float = field(default_factory=time.monotonic)
    steps: dict[str, str] = field(default_factory=dict)
    jobs: str = ""
    decisions_seen: set[str] = field(default_factory=set)

    def line(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.started:5.1f}s] {text}", flush=True)


def _input_body(i: int) -> bytes:
    return json.dumps({"file": i, "rows": [i * 10 + k for k in range(5)]}).encode()


def _put_inputs(s3: Any, jobs: int, missing: int | None) -> None:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=DATA_BUCKET)
    for i in range(1, jobs + 1):
        if i == missing:
            continue
        s3.put_object(Bucket=DATA_BUCKET, Key=f"input/file_{i:02d}.json", Body=_input_body(i))


def _show_progress(
    progress: Progress, sm: Any, batch: Any, logs: Any, arn: str, monitor_group: str
) -> None:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    job_ids: tuple[str, ...] = ()
    for step in reversed(steps):
        name, status = step["StepName"], step["StepStatus"]
        if progress.steps.get(name) != status:
            progress.steps[name] = status
            reason = f" — {step['FailureReason']}" if step.get("FailureReason") else ""
            progress.line(f"step {name}: {status}{reason}")
        for out in step.get("Metadata", {}).get("Lambda", {}).get("OutputParameters", []):
            if out["Name"] == "jobIds":
                job_ids = split_job_ids(out["Value"])
    if job_ids:
        jobs = batch.describe_jobs(jobs=list(job_ids[:100]))["jobs"]
        counts = Counter(job["status"] for job in jobs)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        if summary != progress.jobs:
            progress.jobs = summary
            progress.line(f"jobs: {summary}")
    try:
        events = logs.filter_log_events(logGroupName=monitor_group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return
    for event in events:
        if event["eventId"] in progress.decisions_seen:
            continue
        progress.decisions_seen.add(event["eventId"])
        try:
            entry = json.loads(event["message"])
        except ValueError:
            continue
        if isinstance(entry, dict) and "decision" in entry:
            delay = entry.get("delay_seconds")
            wait = f", next look in {delay:.1f}s" if entry["decision"] == "WAIT" and delay else ""
            progress.line(f"monitor: {entry['decision']} {entry.get('counts', {})}{wait}")


def _check_outputs(s3: Any, jobs: int) -> list[str]:
    problems = []
    for i in range(1, jobs + 1):
        key = f"output/output_{i:02d}.json"
        try:
            body = s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            problems.append(f"s3://{DATA_BUCKET}/{key} is missing")
            continue
        if body != _input_body(i):
            problems.append(f"s3://{DATA_BUCKET}/{key} differs from its input")
    return problems


def _timings(sm: Any, arn: str) -> list[str]:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    lines = []
    for step in reversed(steps):
        start, end = step.get("StartTime"), step.get("EndTime")
        took = f"{(end - start).total_seconds():.1f}s" if start and end else "—"
        lines.append(f"  {step['StepName']:<12} {step['StepStatus']:<10} {took}")
    return lines


def run(args: argparse.Namespace) -> int:
    from scripts.deploy import deploy_local
    from services.environment import LocalEnvironment

    # The SDK turns INFO logging on for the process at import; the demo prints its own story.
    for noisy in ("botocore", "sagemaker", "batchbridge"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    began = time.monotonic()
    print("batchbridge demo: the tutorial's copy jobs, end to end, on this machine")
    env: Any
    if args.endpoint:
        # docker compose up (or `batchbridge local up`) already serves the endpoint.
        env = RunningEndpoint(
            args.endpoint.rstrip("/"), os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        )
        print(f"- using the local environment at {env.endpoint}")
    else:
        env = LocalEnvironment(port=args.port, executor="process")
        env.start()
        print(f"- local environment ready at {env.endpoint} in {env.ready_seconds:.2f}s")
    # The deploy script and the SDK pick the endpoint up like any AWS tool would.
    os.environ.update(
        AWS_ENDPOINT_URL=env.endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=env.region,
    )
    try:
        print("- deploying the stack (CloudFormation, through the local endpoint)…")
        outputs = deploy_local(env.endpoint, env.region, STACK)
        return _run_pipeline(args, env, outputs, began)
    finally:
        if not args.endpoint:
            env.stop()
            print("- local environment stopped")


@dataclass
class RunningEndpoint:
    """An environment someone else started: only its endpoint and region are known."""

    endpoint: str
    region: str

    def client(self, name: str) -> Any:
        from services.environment import endpoint_client

        return endpoint_client(name, self.endpoint, self.region)


def _run_pipeline(args: argparse.Namespace, env: Any, outputs: dict[str, str], began: float) -> int:
    s3, sm, batch, logs = (env.client(name) for name in ("s3", "sagemaker", "batch", "logs"))
    missing = 3 if args.fail else None
    _put_inputs(s3, args.jobs, missing)
    note = f" (file_{missing:02d}.json left out on purpose)" if missing else ""
    print(f"- {args.jobs - (1 if missing else 0)} input files in s3://{DATA_BUCKET}/input/{note}")
    arn = sm.start_pipeline_execution(
        PipelineName=outputs.get("PipelineName", STACK),
        PipelineParameters=[
            {"Name": "InputUri", "Value": f"s3://{DATA_BUCKET}/input"},
            {"Name": "OutputUri", "Value": f"s3://{DATA_BUCKET}/output"},
            {"Name": "MaxJobs", "Value": str(args.jobs)},
        ],
    )["PipelineExecutionArn"]
    print(f"- pipeline execution started: {arn}")
    monitor_group = "/aws/lambda/" + outputs["MonitorFunctionArn"].rsplit(":", 1)[-1]
    progress = Progress()
    deadline = time.monotonic() + args.timeout
    status = "Executing"
    while time.monotonic() < deadline:
        _show_progress(progress, sm, batch, logs, arn, monitor_group)
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        status = described["PipelineExecutionStatus"]
        if status in ("Succeeded", "Failed", "Stopped"):
            _show_progress(progress, sm, batch, logs, arn, monitor_group)
            break
        time.sleep(0.5)
    else:
        print(f"batchbridge demo: the execution was still {status} after {args.timeout}s")
        return 1
    print(
        f"- execution {status}" + (f": {described['FailureReason']}" if status == "Failed" else "")
    )
    print("\n".join(_timings(sm, arn)))
    print(f"- demo took {time.monotonic() - began:.1f}s in all")
    if args.fail:
        return _judge_failure(sm, arn, status)
    problems = _check_outputs(s3, args.jobs)
    for problem in problems:
        print(f"  ✗ {problem}")
    if status == "Succeeded" and not problems:
        print(f"- all {args.jobs} output files exist and equal their inputs ✓")
        return 0
    print("batchbridge demo: FAILED (see above)")
    return 1


def _judge_failure(sm: Any, arn: str, status: str) -> int:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    reasons = " ".join(s.get("FailureReason", "") for s in steps)
    if status == "Failed" and "0003" in reasons:
        print("- as expected: the missing input failed its copy job, and the pipeline failed")
        print("  naming that job and why ✓")
        return 0
    print(f"batchbridge demo: expected a Failed execution naming job 0003, got {status}: {reasons}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fail", action="store_true", help="show a failing job failing the step")
    parser.add_argument("--jobs", type=int, default=5, help="copy jobs to run (default 5)")
    parser.add_argument("--port", type=int, default=0, help="endpoint port (default: a free one)")
    parser.add_argument(
        "--endpoint",
        default=None,
        help="use an environment already running there (docker compose up) instead of "
        "starting the embedded one",
    )
    parser.add_argument("--timeout", type=float, default=90, help="give up after this many s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
