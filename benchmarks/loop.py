"""Stand the whole loop up in an embedded environment, for the benchmarks and the chaos runs.

batchbridge is deployed with the deploy helper's own API (``scripts.deploy``), exactly as a
user deploys it; the tutorial-style baseline is deployed beside it by ``benchmarks.baseline``.
Each design then gets a *variant* of its pipeline whose SubmitJobs step takes a
``JobNamePrefix`` parameter instead of the execution id: the jobs of a run are then named
``<prefix>-0001`` … before they exist, so the local Batch can be scripted per job (duration,
exit code) through its control path before the run starts.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from services.environment import LocalEnvironment

#: Clients of the harness itself retry hard: faults injected for the Lambdas must not break
#: the measuring side.
HARNESS_CONFIG = Config(retries={"max_attempts": 12, "mode": "standard"}, max_pool_connections=64)
TERMINAL = ("Succeeded", "Failed", "Stopped")


def quiet() -> None:
    """Silence the per-request lines of werkzeug and the SDK's chatter on the console."""
    for name in ("werkzeug", "sagemaker", "sagemaker.config", "botocore", "batchbridge"):
        logging.getLogger(name).setLevel(logging.ERROR)


def start_environment(executor: str = "simulate") -> LocalEnvironment:
    quiet()
    env = LocalEnvironment(port=0, executor=executor)
    env.start()  # its listen backlog is sized for a hundred concurrent pipelines
    return env


def client(env: LocalEnvironment, service: str) -> Any:
    return env.client(service, config=HARNESS_CONFIG)


class Control:
    """The environment's control path (``/_batchbridge/…``): faults, scripts, call counts."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/_batchbridge/{path}", data=data, method=method
        )
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def fault(self, service: str, operation: str | None, error: str, count: int) -> None:
        self.request(
            "POST",
            "faults",
            {"service": service, "operation": operation, "error": error, "count": count},
        )

    def crash(self, function: str, when: str, count: int = 1) -> None:
        self.request("POST", "lambda/crash", {"function": function, "when": when, "count": count})

    def duplicate(self, queue: str, count: int = 1) -> None:
        self.request("POST", "lambda/duplicate", {"queue": queue, "count": count})

    def script(self, spec: dict[str, Any]) -> None:
        self.request("POST", "batch/scripts", spec)

    def calls(self) -> dict[str, int]:
        return dict(self.request("GET", "calls"))

    def reset_calls(self) -> None:
        self.request("DELETE", "calls")

    def injected(self) -> dict[str, int]:
        return dict(self.request("GET", "faults")["injected"])

    def clear_faults(self) -> None:
        self.request("DELETE", "faults")
        self.request("DELETE", "lambda/faults")

    def lambda_invocations(self) -> int:
        return int(self.request("GET", "health")["services"]["lambda"]["invocations"])


@dataclass(frozen=True)
class Side:
    """One design deployed in the environment, and how to run it."""

    label: str
    pipeline: str  # variant for N single jobs: parameters JobNamePrefix, MaxJobs
    array_pipeline: str | None  # variant for one array job: JobNamePrefix, ArraySize
    queue_url: str  # the callback queue, as the endpoint serves it
    dlq_url: str | None
    monitor: str  # the monitor function's name
    submitter: str  # the submitter function's name
    job_queue: str


def deploy_batchbridge(
    env: LocalEnvironment,
    name: str,
    *,
    poll_floor: int,
    poll_ceiling: int,
    max_wait: int,
    queue_visibility: int | None = None,
) -> Side:
    """Deploy with ``scripts.deploy`` (settings in real seconds), then add the variants.

    ``queue_visibility`` scales the queues' visibility timeout (the template derives it from
    the monitor's timeout, 6 x 60 s): it decides when a message comes back after a crash.
    """
    from scripts.deploy import deploy_local

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        outputs = deploy_local(
            env.endpoint,
            env.region,
            name,
            poll_floor=poll_floor,
            poll_ceiling=poll_ceiling,
            max_wait=max_wait,
            monitor_timeout="60",
        )
    quiet()  # the SDK re-enables its loggers on import
    sqs = client(env, "sqs")
    queue_url = sqs.get_queue_url(QueueName=f"{name}-callbacks")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-callbacks-dlq")["QueueUrl"]
    if queue_visibility is not None:
        for url in (queue_url, dlq_url):
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"VisibilityTimeout": str(queue_visibility)}
            )
    sm = client(env, "sagemaker")
    source = outputs["PipelineName"]
    return Side(
        label="batchbridge",
        pipeline=pipeline_variant(sm, source, f"{name}-jobs"),
        array_pipeline=pipeline_variant(sm, source, f"{name}-array", array=True),
        queue_url=queue_url,
        dlq_url=dlq_url,
        monitor=outputs["MonitorFunctionArn"].rsplit(":", 1)[-1],
        submitter=outputs["SubmitterFunctionArn"].rsplit(":", 1)[-1],
        job_queue=outputs["JobQueue"],
    )


def pipeline_variant(
    sm: Any,
    source: str,
    name: str,
    *,
    function_arn: str | None = None,
    queue_url: str | None = None,
    array: bool = False,
) -> str:
    """A copy of pipeline ``source`` whose SubmitJobs names its jobs from a JobNamePrefix
    parameter (and, with ``array``, submits one array job of ArraySize children).

    ``function_arn``/``queue_url`` point the copy at another submitter and queue (the
    baseline's), so both designs run the same definition."""
    described = sm.describe_pipeline(PipelineName=source)
    definition = json.loads(described["PipelineDefinition"])
    params = [p for p in definition["Parameters"] if not (array and p["Name"] == "MaxJobs")]
    params.append({"Name": "JobNamePrefix", "Type": "String", "DefaultValue": "run"})
    if array:
        params.append({"Name": "ArraySize", "Type": "Integer", "DefaultValue": 2})
    definition["Parameters"] = params
    for step in definition["Steps"]:
        if step["Type"] == "Lambda":
            arguments = step["Arguments"]
            arguments.pop("execution_id", None)
            arguments["job_name_prefix"] = {"Get": "Parameters.JobNamePrefix"}
            if array:
                arguments.pop("max_jobs", None)
                arguments["array_size"] = {"Get": "Parameters.ArraySize"}
            if function_arn:
                step["FunctionArn"] = function_arn
        if step["Type"] == "Callback" and queue_url:
            step["SqsQueueUrl"] = queue_url
    body = {
        "PipelineName": name,
        "PipelineDefinition": json.dumps(definition),
        "RoleArn": described["RoleArn"],
    }
    try:
        sm.create_pipeline(**body)
    except sm.exceptions.ClientError as exc:
        if "already exists" not in str(exc):
            raise
        sm.update_pipeline(**body)
    return name


def start_run(sm: Any, pipeline: str, prefix: str, *, jobs: int = 0, array_size: int = 0) -> str:
    """Start one execution whose jobs are named ``<prefix>-NNNN``; returns its ARN."""
    parameters = [{"Name": "JobNamePrefix", "Value": prefix}]
    if array_size:
        parameters.append({"Name": "ArraySize", "Value": str(array_size)})
    else:
        parameters.append({"Name": "MaxJobs", "Value": str(jobs)})
    response = sm.start_pipeline_execution(PipelineName=pipeline, PipelineParameters=parameters)
    return str(response["PipelineExecutionArn"])


def job_name(prefix: str, index: int) -> str:
    """The name both submitters give job ``index`` (1-based, as the tutorial counts) of a run."""
    return f"{prefix}-{index:04d}"


def status(sm: Any, arn: str) -> str:
    return str(sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"])


def steps(sm: Any, arn: str) -> dict[str, dict[str, Any]]:
    listed = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return {s["StepName"]: s for s in listed}


def wait_terminal(sm: Any, arns: list[str], timeout: float, poll: float = 0.5) -> dict[str, str]:
    """Poll until every execution is terminal or ``timeout`` passes; their last statuses."""
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    pending = list(arns)
    while pending:
        for arn in list(pending):
            last[arn] = status(sm, arn)
            if last[arn] in TERMINAL:
                pending.remove(arn)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(poll)
    return last


def job_ids_of(sm: Any, arn: str) -> list[str]:
    """The ids the SubmitJobs step returned (empty if it has not finished)."""
    submit = steps(sm, arn).get("SubmitJobs", {})
    for output in submit.get("Metadata", {}).get("Lambda", {}).get("OutputParameters", []):
        if output["Name"] == "jobIds":
            return str(output["Value"]).split()
    return []


def describe_jobs(batch: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(job_ids), 100):
        found += batch.describe_jobs(jobs=job_ids[start : start + 100])["jobs"]
    return found


def queue_depth(sqs: Any, url: str) -> int:
    """Messages on the queue: visible, in flight and delayed."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)
