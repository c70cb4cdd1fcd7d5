"""The local Lambda data plane, driven through the endpoint with real boto3 clients.

Functions are deployed from zips built here. SQS-triggered functions report what they were
given to an "observer" queue, so the tests see each delivery as a user of AWS would.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

HANDLERS = '''
import json, logging, os, time

import boto3

# Created at init, as a real function would: the first event does not pay for it.
sqs = boto3.client("sqs")
logger = logging.getLogger()
logger.setLevel(logging.INFO)


def echo(event, context):
    print("echo got", json.dumps(event))
    logger.info("request %s", context.aws_request_id)
    return {
        "event": event,
        "greeting": os.environ.get("GREETING"),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def fail(event, context):
    raise ValueError("the input was " + json.dumps(event))


def sleep(event, context):
    time.sleep(float(event.get("seconds", 5)))
    return {"slept": event.get("seconds", 5)}


def observe(event, context):
    """Tell the observer queue what arrived; fail the records whose body starts with 'fail'."""
    started = time.time()
    sqs.send_message(
        QueueUrl=os.environ["OBSERVER_URL"],
        MessageBody=json.dumps({"at": started, "event": event}),
    )
    if os.environ.get("RAISE"):
        raise RuntimeError("configured to raise")
    failures = [
        {"itemIdentifier": r["messageId"]}
        for r in event.get("Records", [])
        if r["body"].startswith("fail")
    ]
    if os.environ.get("BOGUS_ID"):
        failures.append({"itemIdentifier": "not-a-message-id-of-this-batch"})
    return {"batchItemFailures": failures}
'''


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def role(target: Any) -> str:
    iam = target.client("iam")
    name = _name("bb-lambda-role")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))["Role"][
        "Arn"
    ]
    return arn


@pytest.fixture
def deploy(target: Any, role: str) -> Iterator[Callable[..., str]]:
    """``deploy("echo", timeout=3, env={...})`` → the name of a new function (app.<handler>)."""
    lam = target.client("lambda")
    created: list[str] = []

    def _deploy(handler: str, timeout: int = 3, env: dict[str, str] | None = None) -> str:
        name = _name(f"bb-{handler}")
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler=f"app.{handler}",
            Code={"ZipFile": _zip(HANDLERS)},
            Timeout=timeout,
            Environment={"Variables": env or {}},
        )
        created.append(name)
        return name

    yield _deploy
    for name in created:
        lam.delete_function(FunctionName=name)


@pytest.fixture
def queues(target: Any) -> Iterator[Callable[..., tuple[str, str]]]:
    """``queues(visibility=1, dlq_arn=…, max_receives=2)`` → (url, arn) of a new queue."""
    sqs = target.client("sqs")
    created: list[str] = []

    def _queue(
        visibility: int = 1, dlq_arn: str | None = None, max_receives: int = 2
    ) -> tuple[str, str]:
        attributes = {"VisibilityTimeout": str(visibility)}
        if dlq_arn:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}
            )
        url: str = sqs.create_queue(QueueName=_name("bb-q"), Attributes=attributes)["QueueUrl"]
        created.append(url)
        arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return url, arn

    yield _queue
    for url in created:
        sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def mappings(target: Any) -> Iterator[Callable[..., str]]:
    lam = target.client("lambda")
    created: list[str] = []

    def _map(function: str, queue_arn: str, **kwargs: Any) -> str:
        kwargs.setdefault("FunctionResponseTypes", ["ReportBatchItemFailures"])
        uuid_: str = lam.create_event_source_mapping(
            FunctionName=function, EventSourceArn=queue_arn, **kwargs
        )["UUID"]
        created.append(uuid_)
        return uuid_

    yield _map
    for uuid_ in created:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_event_source_mapping(UUID=uuid_)


def _observed(sqs: Any, url: str, count: int, within: float) -> list[dict[str, Any]]:
    """Up to ``count`` observer reports arriving within ``within`` seconds."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while len(found) < count and time.monotonic() < deadline:
        wait = max(0, min(1, int(deadline - time.monotonic())))
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        ).get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _records(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The delivered records, in the order SQS handed them out (reports may arrive unordered)."""
    records = [record for report in reports for record in report["event"]["Records"]]
    return sorted(records, key=lambda r: int(r["attributes"]["ApproximateReceiveCount"]))


def _control(target: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{target.endpoint}/_batchbridge/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _payload(response: dict[str, Any]) -> Any:
    return json.loads(response["Payload"].read())


# --- Invoke ------------------------------------------------------------------------------


def test_invoke_runs_the_handler_with_the_function_environment(
    target: Any, deploy: Callable[..., str]
) -> None:
    name = deploy("echo", env={"GREETING": "hello"})
    response = target.client("lambda").invoke(FunctionName=name, Payload=b'{"n": 1}')

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    result = _payload(response)
    assert result["event"] == {"n": 1}
    assert result["greeting"] == "hello"
    assert result["function"] == name
    assert 0 < result["remaining_ms"] <= 3000
    if target.local:
        assert result["endpoint"] == target.endpoint


def test_a_raised_exception_comes_back_as_an_unhandled_function_error(
    target: Any, deploy: Callable[..., str]
) -> None:
    name = deploy("fail")
    response = target.client("lambda").invoke(FunctionName=name, Payload=b'{"n": 2}')

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = _payload(response)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == 'the input was {"n": 2}'
    assert any("in fail" in frame for frame in error["stackTrace"])


def test_a_timeout_comes_back_as_an_error_and_the_next_invocation_works(
    target: Any, deploy: Callable[..., str]
) -> None:
    lam = target.client("lambda")
    name = deploy("sleep", timeout=1)
    started = time.monotonic()
    response = lam.invoke(FunctionName=name, Payload=b'{"seconds": 5}')
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in _payload(response)["errorMessage"]
    assert elapsed < 3
    again = lam.invoke(FunctionName=name, Payload=b'{"seconds": 0.01}')
    assert _payload(again) == {"slept": 0.01}


def test_event_and_dry_run_invocations(
    target: Any, deploy: Callable[..., str], queues: Callable[..., tuple[str, str]]
) -> None:
    lam, sqs = target.client("lambda"), target.client("sqs")
    observer, _ = queues()
    name = deploy("observe", env={"OBSERVER_URL": observer})

    assert lam.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    accepted = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"Records": []}')
    assert accepted["StatusCode"] == 202
    reports = _observed(sqs, observer, 1, within=10)
    assert [r["event"] for r in reports] == [{"Records": []}]


def test_concurrent_invocations_each_get_a_worker(target: Any, deploy: Callable[..., str]) -> None:
    lam = target.client("lambda")
    name = deploy("sleep")
    lam.invoke(FunctionName=name, Payload=b'{"seconds": 0}')  # one warm worker
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda _: _payload(lam.invoke(FunctionName=name, Payload=b'{"seconds": 1}')),
                range(4),
            )
        )
    assert results == [{"slept": 1}] * 4
    assert time.monotonic() - started < 3.5  # in parallel, not 4 s one after another


def test_updated_code_and_configuration_take_effect(
    target: Any, deploy: Callable[..., str]
) -> None:
    lam = target.client("lambda")
    name = deploy("echo", env={"GREETING": "before"})
    assert _payload(lam.invoke(FunctionName=name))["greeting"] == "before"

    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"GREETING": "after"}}
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert _payload(lam.invoke(FunctionName=name))["greeting"] == "after"

    new_code = HANDLERS.replace('"greeting": os.environ.get("GREETING")', '"greeting": "new code"')
    lam.update_function_code(FunctionName=name, ZipFile=_zip(new_code))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert _payload(lam.invoke(FunctionName=name))["greeting"] == "new code"


def test_an_unknown_function_is_not_found(target: Any) -> None:
    lam = target.client("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName=_name("bb-missing"))


# --- Logs --------------------------------------------------------------------------------


def test_output_goes_to_cloudwatch_logs_and_the_log_tail(
    target: Any, deploy: Callable[..., str]
) -> None:
    lam, logs = target.client("lambda"), target.client("logs")
    name = deploy("echo")
    marker = uuid.uuid4().hex
    response = lam.invoke(
        FunctionName=name, Payload=json.dumps({"marker": marker}).encode(), LogType="Tail"
    )
    tail = base64.b64decode(response["LogResult"]).decode()
    assert marker in tail
    assert "START RequestId:" in tail and "REPORT RequestId:" in tail

    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(marker in m for m in messages) and any(m.startswith("REPORT") for m in messages):
            break
        time.sleep(0.1)
    assert any(marker in m for m in messages)
    assert any("[INFO]" in m and "request " in m for m in messages)


def test_the_aws_cli_reads_a_function_log(local_only: Any, deploy: Callable[..., str]) -> None:
    lam = local_only.client("lambda")
    name = deploy("echo")
    marker = uuid.uuid4().hex
    lam.invoke(FunctionName=name, Payload=json.dumps({"marker": marker}).encode())
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=local_only.region,
    )
    output = ""
    deadline = time.monotonic() + 15
    while marker not in output and time.monotonic() < deadline:
        run = subprocess.run(
            # awscli v1 (the dev extra) has no `logs tail`; v2's tail reads the same events.
            [
                aws,
                "--endpoint-url",
                local_only.endpoint,
                "logs",
                "filter-log-events",
                "--log-group-name",
                f"/aws/lambda/{name}",
                "--output",
                "text",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        output = run.stdout
    assert marker in output


# --- SQS event source mappings -----------------------------------------------------------


def test_a_reported_failure_returns_after_the_visibility_timeout_and_lands_in_the_dlq(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = target.client("sqs")
    observer, _ = queues()
    dlq, dlq_arn = queues()
    source, source_arn = queues(visibility=1, dlq_arn=dlq_arn, max_receives=2)
    name = deploy("observe", env={"OBSERVER_URL": observer})
    mappings(name, source_arn, BatchSize=10)

    sqs.send_message(
        QueueUrl=source,
        MessageBody="fail please",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "bad"}},
    )
    reports = sorted(_observed(sqs, observer, 2, within=15), key=lambda r: r["at"])
    records = _records(reports)
    assert [r["body"] for r in records] == ["fail please", "fail please"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]
    # The second delivery came after the visibility timeout (1 s) of the first receive.
    first_receive_ms = int(records[0]["attributes"]["ApproximateFirstReceiveTimestamp"])
    assert reports[1]["at"] * 1000 - first_receive_ms >= 950

    first = records[0]
    assert set(first) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfMessageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert set(first["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert first["messageAttributes"] == {
        "kind": {
            "stringValue": "bad",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == source_arn
    assert first["awsRegion"] == target.region

    moved: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not moved and time.monotonic() < deadline:
        moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in moved] == ["fail please"]
    assert [m["MessageId"] for m in moved] == [first["messageId"]]


def test_successful_records_are_deleted_and_failed_ones_kept(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = target.client("sqs")
    observer, _ = queues()
    # As AWS advises, the visibility timeout is longer than the batching window.
    source, source_arn = queues(visibility=3)
    name = deploy("observe", env={"OBSERVER_URL": observer})
    mappings(name, source_arn, BatchSize=10, MaximumBatchingWindowInSeconds=1)

    sqs.send_message_batch(
        QueueUrl=source,
        Entries=[
            {"Id": "a", "MessageBody": "ok a"},
            {"Id": "b", "MessageBody": "fail b"},
            {"Id": "c", "MessageBody": "ok c"},
        ],
    )
    first = _observed(sqs, observer, 1, within=10)
    # The batching window gathered all three into one invocation.
    assert sorted(r["body"] for r in _records(first)) == ["fail b", "ok a", "ok c"]
    again = _records(_observed(sqs, observer, 1, within=10))
    assert [r["body"] for r in again] == ["fail b"]  # only the reported failure came back


def test_a_function_error_deletes_nothing(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = target.client("sqs")
    observer, _ = queues()
    source, source_arn = queues(visibility=1)
    name = deploy("observe", env={"OBSERVER_URL": observer, "RAISE": "1"})
    mappings(name, source_arn)

    sqs.send_message(QueueUrl=source, MessageBody="ok but the function raises")
    records = _records(_observed(sqs, observer, 2, within=10))
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]


def test_an_invalid_item_identifier_fails_the_whole_batch(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = target.client("sqs")
    observer, _ = queues()
    source, source_arn = queues(visibility=1)
    name = deploy("observe", env={"OBSERVER_URL": observer, "BOGUS_ID": "1"})
    mappings(name, source_arn)

    sqs.send_message(QueueUrl=source, MessageBody="ok, but the response names a stranger")
    records = _records(_observed(sqs, observer, 2, within=10))
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]


def test_a_message_reaches_the_function_within_a_fraction_of_a_second(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = target.client("sqs")
    observer, _ = queues()
    source, source_arn = queues(visibility=5)
    name = deploy("observe", env={"OBSERVER_URL": observer})
    mappings(name, source_arn, BatchSize=1)
    sqs.send_message(QueueUrl=source, MessageBody="warm up")
    assert _observed(sqs, observer, 1, within=10)

    sqs.send_message(QueueUrl=source, MessageBody="timed")
    [report] = _observed(sqs, observer, 1, within=5)
    sent_ms = int(report["event"]["Records"][0]["attributes"]["SentTimestamp"])
    assert report["at"] * 1000 - sent_ms < 500


def test_disabling_enabling_and_deleting_a_mapping_take_effect(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    lam, sqs = target.client("lambda"), target.client("sqs")
    observer, _ = queues()
    # Long enough that a cold start never makes a message visible again mid-test.
    source, source_arn = queues(visibility=5)
    name = deploy("observe", env={"OBSERVER_URL": observer})
    mapping = mappings(name, source_arn)

    lam.update_event_source_mapping(UUID=mapping, Enabled=False)
    time.sleep(0.5)  # the poller notices within one cycle (0.2 s)
    sqs.send_message(QueueUrl=source, MessageBody="while disabled")
    assert _observed(sqs, observer, 1, within=1.5) == []

    lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    records = _records(_observed(sqs, observer, 1, within=10))
    assert [r["body"] for r in records] == ["while disabled"]

    lam.delete_event_source_mapping(UUID=mapping)
    time.sleep(0.5)
    sqs.send_message(QueueUrl=source, MessageBody="after delete")
    assert _observed(sqs, observer, 1, within=1.5) == []
    left = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_several_mappings_deliver_concurrently(
    target: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = target.client("sqs")
    observer, _ = queues()
    name = deploy("observe", env={"OBSERVER_URL": observer})
    sources = [queues(visibility=5) for _ in range(3)]
    for _, arn in sources:
        mappings(name, arn, BatchSize=1)
    for index, (url, _) in enumerate(sources):
        for n in range(2):
            sqs.send_message(QueueUrl=url, MessageBody=f"q{index}-{n}")
    records = _records(_observed(sqs, observer, 6, within=15))
    assert sorted(r["body"] for r in records) == sorted(
        f"q{i}-{n}" for i in range(3) for n in range(2)
    )
    assert {r["eventSourceARN"] for r in records} == {arn for _, arn in sources}


# --- Fault injection ---------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_injected_crash_fails_the_invocation(
    local_only: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    when: str,
) -> None:
    lam, sqs = local_only.client("lambda"), local_only.client("sqs")
    observer, _ = queues()
    name = deploy("observe", env={"OBSERVER_URL": observer})
    _control(local_only, "lambda/crash", {"function": name, "count": 1, "when": when})

    crashed = lam.invoke(FunctionName=name, Payload=b'{"Records": []}')
    assert crashed["FunctionError"] == "Unhandled"
    assert _payload(crashed)["errorType"] == "Runtime.ExitError"
    # "before": the handler never ran; "after": it ran, then the runtime died.
    ran = _observed(local_only.client("sqs"), observer, 1, within=1)
    assert len(ran) == (1 if when == "after" else 0)

    healthy = lam.invoke(FunctionName=name, Payload=b'{"Records": []}')
    assert "FunctionError" not in healthy
    assert len(_observed(sqs, observer, 1, within=5)) == 1


def test_a_crash_makes_the_event_source_mapping_retry_the_batch(
    local_only: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = local_only.client("sqs")
    observer, _ = queues()
    source, source_arn = queues(visibility=2)
    name = deploy("observe", env={"OBSERVER_URL": observer})
    _control(local_only, "lambda/crash", {"function": name, "count": 1, "when": "after"})
    mappings(name, source_arn)

    sqs.send_message(QueueUrl=source, MessageBody="survives a crash")
    records = _records(_observed(sqs, observer, 2, within=10))
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]
    time.sleep(2.5)  # past another visibility timeout: the successful delivery deleted it
    assert _observed(sqs, observer, 1, within=0.5) == []


def test_an_injected_duplicate_delivers_the_message_twice(
    local_only: Any,
    deploy: Callable[..., str],
    queues: Callable[..., tuple[str, str]],
    mappings: Callable[..., str],
) -> None:
    sqs = local_only.client("sqs")
    observer, _ = queues()
    source, source_arn = queues(visibility=5)
    name = deploy("observe", env={"OBSERVER_URL": observer})
    _control(local_only, "lambda/duplicate", {"queue": source_arn, "count": 1})
    mappings(name, source_arn)

    sqs.send_message(QueueUrl=source, MessageBody="say it twice")
    reports = _observed(sqs, observer, 2, within=10)
    records = _records(reports)
    assert [r["body"] for r in records] == ["say it twice", "say it twice"]
    assert records[0]["messageId"] == records[1]["messageId"]
    assert len(reports) == 2  # two invocations, not one batch with two records


def test_health_reports_the_lambda_runtime(local_only: Any) -> None:
    with urllib.request.urlopen(f"{local_only.endpoint}/_batchbridge/health", timeout=5) as r:
        health = json.loads(r.read())
    lam = health["services"]["lambda"]
    assert lam["ready"] is True
    assert {"workers_warm", "mappings_polled", "invocations"} <= set(lam)


def test_a_function_and_mapping_created_by_cloudformation_are_served(
    target: Any, queues: Callable[..., tuple[str, str]]
) -> None:
    sqs, cfn = target.client("sqs"), target.client("cloudformation")
    observer, _ = queues()
    inline = (
        "import json, os, boto3\n"
        "sqs = boto3.client('sqs')\n"
        "def handler(event, context):\n"
        "    sqs.send_message(QueueUrl=os.environ['OBSERVER_URL'], MessageBody=json.dumps("
        "{'at': 0, 'event': event}))\n"
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    template = {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 5}},
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.11",
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Code": {"ZipFile": inline},  # inline source, saved as index.py
                    "Environment": {"Variables": {"OBSERVER_URL": observer}},
                },
            },
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "Function"},
                    "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "BatchSize": 1,
                },
            },
        }
    }
    stack = _name("bb-lambda-stack")
    cfn.create_stack(
        StackName=stack, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
    )
    try:
        cfn.get_waiter("stack_create_complete").wait(
            StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
        queue_url = next(
            r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "Queue"
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody="from a stack")
        records = _records(_observed(sqs, observer, 1, within=10))
        assert [r["body"] for r in records] == ["from a stack"]
    finally:
        cfn.delete_stack(StackName=stack)
