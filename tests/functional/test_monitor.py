"""The monitor handler, record by record, against moto's Batch and SQS and a fake SageMaker."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from aws_world import TOKEN, World, client_error, load_event

from lambdas.contracts import OUTPUT_JOB_COUNT, OUTPUT_JOB_STATUS, OUTPUT_SUCCEEDED_COUNT
from lambdas.monitor.act import client_request_token
from lambdas.monitor.handler import handler
from lambdas.retry import NO_WAIT_RETRY
from lambdas.settings import SQS_MAX_CHANGED_VISIBILITY_SECONDS

pytestmark = pytest.mark.timeout(60)


def test_success_with_250_jobs_never_describes_more_than_100_ids(world: World) -> None:
    job_ids = world.submit(250)
    world.send_callback(job_ids)

    response = handler(world.receive_event(), None, world.runtime())

    assert response["batchItemFailures"] == []
    describe_calls = world.batch.calls_to("describe_jobs")
    assert [len(call["jobs"]) for call in describe_calls] == [100, 100, 50]
    (success,) = world.sagemaker.successes
    outputs = {p["Name"]: p["Value"] for p in success["OutputParameters"]}
    assert outputs == {
        OUTPUT_JOB_STATUS: "Completed",
        OUTPUT_JOB_COUNT: "250",
        OUTPUT_SUCCEEDED_COUNT: "250",
    }
    assert success["CallbackToken"] == TOKEN
    assert world.visible_messages() == 0  # not requeued: the ESM deletes it


def test_failed_job_fails_the_step_naming_it_and_terminates_the_rest(world: World) -> None:
    ok, bad, running = world.submit(3, name="copy")
    world.set_job(bad, "FAILED", exit_code=1, reason="Essential container in task exited")
    world.set_job(running, "RUNNING")
    world.send_callback([ok, bad, running])

    response = handler(world.receive_event(), None, world.runtime())

    assert response["batchItemFailures"] == []
    (failure,) = world.sagemaker.failures
    assert failure["FailureReason"] == (
        "1 of 3 jobs failed: copy-01 exit 1 (Essential container in task exited)"
    )
    assert [c["jobId"] for c in world.batch.calls_to("terminate_job")] == [running]
    assert world.terminated(running) and not world.terminated(ok)


def test_failure_without_terminate_on_failure_leaves_running_jobs(world: World) -> None:
    bad, running = world.submit(2)
    world.set_job(bad, "FAILED", exit_code=2)
    world.set_job(running, "RUNNING")
    world.settings = replace(world.settings, terminate_on_failure=False)
    world.send_callback([bad, running])

    handler(world.receive_event(), None, world.runtime())

    assert len(world.sagemaker.failures) == 1
    assert world.batch.calls_to("terminate_job") == []


def test_running_job_is_requeued_with_a_visibility_change(world: World) -> None:
    (job,) = world.submit(1)
    world.set_job(job, "RUNNING")
    world.send_callback([job])
    event = world.receive_event()

    response = handler(event, None, world.runtime())

    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    (change,) = world.sqs.calls_to("change_message_visibility")
    # attempt 1: d = floor = 30, equal jitter picks in [15, 30] but never below the floor
    assert change["VisibilityTimeout"] == 30
    assert change["ReceiptHandle"] == event["Records"][0]["receiptHandle"]
    assert world.sagemaker.calls == []


def test_backoff_grows_with_the_receive_count(world: World) -> None:
    (job,) = world.submit(1)
    world.set_job(job, "RUNNABLE")
    world.send_callback([job])
    event = world.receive_event()
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "4"

    handler(event, None, world.runtime())

    (change,) = world.sqs.calls_to("change_message_visibility")
    assert change["VisibilityTimeout"] == 240  # 30·2³, the jitter source picks the top


def test_stopping_message_terminates_the_running_jobs_then_fails(world: World) -> None:
    done, running, queued = world.submit(3)
    world.set_job(running, "RUNNING")
    world.set_job(queued, "RUNNABLE")
    world.send_callback([done, running, queued], status="Stopping")

    response = handler(world.receive_event(), None, world.runtime())

    assert response["batchItemFailures"] == []
    assert sorted(c["jobId"] for c in world.batch.calls_to("terminate_job")) == sorted(
        [running, queued]
    )
    assert world.terminated(running) and world.terminated(queued)
    (failure,) = world.sagemaker.failures
    assert "stopping" in failure["FailureReason"]


def test_malformed_records_go_to_the_dlq_without_disturbing_the_good_one(world: World) -> None:
    (job,) = world.submit(1)
    world.send_raw("this is not json")
    world.send_callback([job])
    world.send_raw(json.dumps({"pipelineExecutionArn": "x", "arguments": {"job_ids": job}}))
    event = world.receive_event(expect=3)

    response = handler(event, None, world.runtime())

    assert response["batchItemFailures"] == []
    assert len(world.sagemaker.successes) == 1
    dlq = world.sqs._inner.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10)
    bodies = [m["Body"] for m in dlq["Messages"]]
    assert len(bodies) == 2 and "this is not json" in bodies


def test_throttling_is_absorbed_inside_the_invocation(world: World) -> None:
    (job,) = world.submit(1)
    world.send_callback([job])
    world.batch.fail_next("describe_jobs", 2)
    world.sagemaker.faults = [client_error("ThrottlingException", 400, "x")] * 2

    response = handler(world.receive_event(), None, world.runtime())

    assert response["batchItemFailures"] == []
    assert len(world.batch.calls_to("describe_jobs")) == 3
    # Three tries, one token: SageMaker resolves the step once.
    tokens = {call["ClientRequestToken"] for call in world.sagemaker.successes}
    assert len(world.sagemaker.successes) == 3 and tokens == {client_request_token(TOKEN)}


def test_persistent_5xx_requeues_only_that_record(world: World) -> None:
    first, second = world.submit(2)
    world.send_callback([first], token="AAAAAAAAA1")
    world.send_callback([second], token="BBBBBBBBB2")
    event = world.receive_event(expect=2)
    world.sagemaker.faults = [client_error("InternalFailure", 500, "x")] * NO_WAIT_RETRY.attempts

    response = handler(event, None, world.runtime())

    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [event["Records"][0]["messageId"]]
    assert world.sagemaker.finished == {"BBBBBBBBB2"}


def test_refused_callback_ends_the_message_instead_of_looping(world: World) -> None:
    (job,) = world.submit(1)
    world.sagemaker.finished.add(TOKEN)  # the step already finished (e.g. a duplicate)
    world.send_callback([job])

    rt = world.runtime()
    response = handler(world.receive_event(), None, rt)

    assert response["batchItemFailures"] == []
    assert rt.decisions[0]["outcome"] == "refused"
    assert len(world.sagemaker.calls) == 1  # not retried


def test_duplicate_delivery_resolves_the_step_once(world: World) -> None:
    (job,) = world.submit(1)
    world.send_callback([job])
    world.send_callback([job])
    event = world.receive_event(expect=2)

    rt = world.runtime()
    response = handler(event, None, rt)

    assert response["batchItemFailures"] == []
    assert [d["outcome"] for d in rt.decisions] == ["done", "refused"]


def test_deadline_passed_fails_the_step_and_terminates(world: World) -> None:
    (job,) = world.submit(1)
    world.set_job(job, "RUNNING")
    world.send_callback([job])
    event = world.receive_event()
    world.clock = lambda: time.time() + world.settings.max_wait_seconds + 5

    response = handler(event, None, world.runtime())

    assert response["batchItemFailures"] == []
    (failure,) = world.sagemaker.failures
    assert failure["FailureReason"].startswith("timed out after")
    assert world.terminated(job)


def test_unknown_job_waits_out_the_grace_period_then_fails_by_name(world: World) -> None:
    ghost = "0b4c9d3e-0000-4000-8000-00000000dead"
    world.send_callback([ghost])
    event = world.receive_event()

    early = handler(event, None, world.runtime())
    assert len(early["batchItemFailures"]) == 1 and world.sagemaker.calls == []

    world.clock = lambda: time.time() + world.settings.unknown_job_grace_seconds + 5
    late = handler(event, None, world.runtime())
    assert late["batchItemFailures"] == []
    (failure,) = world.sagemaker.failures
    assert ghost in failure["FailureReason"] and "unknown" in failure["FailureReason"]


def test_array_parent_with_a_failed_child_fails_the_step(world: World) -> None:
    (parent,) = world.submit(1, name="render", array_size=4)
    world.set_job(f"{parent}:2", "FAILED", exit_code=3)
    world.set_job(f"{parent}:3", "RUNNING")
    world.set_job(parent, "RUNNING")
    world.send_callback([parent])

    handler(world.receive_event(), None, world.runtime())

    (failure,) = world.sagemaker.failures
    assert "render-00 1 of 4 children failed" in failure["FailureReason"]
    assert [c["jobs"] for c in world.batch.calls_to("describe_jobs")] == [[parent]]
    assert world.terminated(parent)


def test_array_parent_with_all_children_succeeded_succeeds(world: World) -> None:
    (parent,) = world.submit(1, name="render", array_size=3)
    world.send_callback([parent])

    handler(world.receive_event(), None, world.runtime())

    assert len(world.sagemaker.successes) == 1


def test_reaper_fails_a_well_formed_dlq_message_and_keeps_an_unreadable_one_for_a_person(
    world: World,
) -> None:
    (job,) = world.submit(1)
    world.set_job(job, "RUNNING")
    body = json.dumps(
        {"token": TOKEN, "pipelineExecutionArn": "arn", "arguments": {"job_ids": job}}
    )
    world.sqs._inner.send_message(QueueUrl=world.dlq_url, MessageBody=body)
    broken = world.sqs._inner.send_message(QueueUrl=world.dlq_url, MessageBody="{broken")
    event = world.receive_event(queue="dlq", expect=2)
    # No configuration: the monitor sees that another queue redrives to this one.

    response = handler(event, None, world.runtime())

    # The unreadable one stays in the DLQ, hidden for half a day, instead of being dropped.
    assert response["batchItemFailures"] == [{"itemIdentifier": broken["MessageId"]}]
    (parked,) = world.sqs.calls_to("change_message_visibility")
    assert parked["QueueUrl"] == world.dlq_url
    assert parked["VisibilityTimeout"] >= 12 * 3600 - 1200  # SQS's 12 h, less the cap's margin
    (failure,) = world.sagemaker.failures
    assert failure["FailureReason"].startswith("batchbridge monitor gave up after 1 receives")
    assert world.terminated(job)
    assert world.visible_messages("dlq") == 0  # nothing re-sent to the DLQ


def test_one_json_log_line_per_decision(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    running, done = world.submit(2)
    world.set_job(running, "RUNNING")
    world.send_callback([running, done])

    handler(world.receive_event(), None, world.runtime())

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [entry for entry in lines if entry["message"] == "decision"]
    assert line["decision"] == "WAIT"
    assert line["delay_seconds"] == 30
    assert line["counts"] == {"RUNNING": 1, "SUCCEEDED": 1}
    assert line["token"] == TOKEN[:4] + "…" and TOKEN not in json.dumps(line)
    assert line["execution_arn"].endswith("/execution/4q9w8e7r6t5y")


def test_sample_event_from_aws_is_handled(world: World) -> None:
    """The AWS-shaped sample event: its jobs are unknown and the message was sent long ago."""
    event = load_event("sqs_callback.json")

    response = handler(event, None, world.runtime())

    assert response["batchItemFailures"] == []
    (failure,) = world.sagemaker.failures
    assert "2 of 2 jobs unknown" in failure["FailureReason"]


def test_reaper_is_inferred_from_a_configured_dlq_url(world: World) -> None:
    (job,) = world.submit(1)
    body = json.dumps(
        {"token": TOKEN, "pipelineExecutionArn": "arn", "arguments": {"job_ids": job}}
    )
    world.sqs._inner.send_message(QueueUrl=world.dlq_url, MessageBody=body)
    event = world.receive_event(queue="dlq")
    world.settings = replace(world.settings, dlq_url=world.dlq_url)

    rt = world.runtime()
    handler(event, None, rt)

    assert rt.decisions[0]["mode"] == "reaper"
    assert world.sqs.calls_to("list_dead_letter_source_queues") == []
    assert len(world.sagemaker.failures) == 1


def test_a_live_queue_is_not_mistaken_for_a_dlq(world: World) -> None:
    (job,) = world.submit(1)
    world.set_job(job, "RUNNING")
    world.send_callback([job])

    rt = world.runtime()
    response = handler(world.receive_event(), None, rt)

    assert rt.decisions[0]["mode"] == "monitor"
    assert len(response["batchItemFailures"]) == 1


def test_a_failing_dlq_check_does_not_block_the_work(world: World) -> None:
    (job,) = world.submit(1)
    world.send_callback([job])
    world.sqs.fail_next("list_dead_letter_source_queues", 1, code="AccessDenied", status=403)
    rt = world.runtime()

    response = handler(world.receive_event(), None, rt)

    assert response["batchItemFailures"] == []
    assert rt.decisions[0]["mode"] == "monitor"
    assert len(world.sagemaker.successes) == 1


def test_a_refused_terminate_does_not_keep_the_failed_step_unanswered(world: World) -> None:
    bad, running = world.submit(2)
    world.set_job(bad, "FAILED", exit_code=1)
    world.set_job(running, "RUNNING")
    world.send_callback([bad, running])
    world.batch.fail_next("terminate_job", 1, code="AccessDeniedException", status=403)

    rt = world.runtime()
    response = handler(world.receive_event(), None, rt)

    # Asking again cannot help, so the step is answered now and the refusal is logged.
    assert response["batchItemFailures"] == []
    assert len(world.sagemaker.failures) == 1
    assert rt.decisions[0]["terminate_refused"] == {running: "AccessDeniedException"}


def test_a_throttled_terminate_comes_back_before_answering(world: World) -> None:
    bad, running = world.submit(2)
    world.set_job(bad, "FAILED", exit_code=1)
    world.set_job(running, "RUNNING")
    world.send_callback([bad, running])
    world.batch.fail_next("terminate_job", NO_WAIT_RETRY.attempts)

    response = handler(world.receive_event(), None, world.runtime())

    assert len(response["batchItemFailures"]) == 1
    assert world.sagemaker.calls == []


@pytest.mark.parametrize(
    ("operation", "code"),
    [("describe_jobs", "AccessDeniedException"), ("terminate_job", "ClientException")],
)
def test_the_reaper_fails_the_step_even_when_cleanup_fails(
    world: World, operation: str, code: str
) -> None:
    (job,) = world.submit(1)
    world.set_job(job, "RUNNING")
    body = json.dumps(
        {"token": TOKEN, "pipelineExecutionArn": "arn", "arguments": {"job_ids": job}}
    )
    world.sqs._inner.send_message(QueueUrl=world.dlq_url, MessageBody=body)
    event = world.receive_event(queue="dlq")
    world.batch.fail_next(operation, 1, code=code, status=400)

    response = handler(event, None, world.runtime())

    assert response["batchItemFailures"] == []
    (failure,) = world.sagemaker.failures
    assert failure["FailureReason"].startswith("batchbridge monitor gave up")


def test_a_12_hour_poll_ceiling_never_asks_sqs_for_more_than_it_allows(world: World) -> None:
    # SQS counts the 12-hour visibility limit from the ReceiveMessage, which the event source
    # mapping made before the function ran: asking for the full 43,200 s is rejected.
    (job,) = world.submit(1)
    world.set_job(job, "RUNNING")
    world.settings = replace(world.settings, poll_floor_seconds=43_200, poll_ceiling_seconds=43_200)
    world.send_callback([job])

    rt = world.runtime()
    response = handler(world.receive_event(), None, rt)

    assert len(response["batchItemFailures"]) == 1
    (change,) = world.sqs.calls_to("change_message_visibility")
    assert 0 < change["VisibilityTimeout"] <= SQS_MAX_CHANGED_VISIBILITY_SECONDS < 43_200
    assert rt.decisions[0]["delay_seconds"] == change["VisibilityTimeout"]


class _LambdaContext:
    """The one context method the monitor reads, as AWS's Python runtime provides it."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_records_are_not_started_close_to_the_lambda_timeout(world: World) -> None:
    first, second = world.submit(2)
    world.send_callback([first], token="AAAAAAAAA1")
    world.send_callback([second], token="BBBBBBBBB2")
    event = world.receive_event(expect=2)

    rt = world.runtime()
    response = handler(event, _LambdaContext(remaining_ms=3_000), rt)

    # The first record always runs; the second would risk a timeout, which fails the whole
    # batch (the answered record included), so it is handed back untouched.
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][1]["messageId"]}]
    assert world.sagemaker.finished == {"AAAAAAAAA1"}
    assert len(world.batch.calls_to("describe_jobs")) == 1
    assert rt.decisions[1]["deferred"]


def test_a_long_termination_stops_before_the_timeout_and_resumes(world: World) -> None:
    bad, *running = world.submit(4)
    world.set_job(bad, "FAILED", exit_code=1)
    for job in running:
        world.set_job(job, "RUNNING")
    world.send_callback([bad, *running])
    event = world.receive_event()
    seconds_left = iter([60.0, 60.0, 1.0])

    first = handler(event, None, world.runtime(time_left=lambda: next(seconds_left, 1.0)))

    assert len(first["batchItemFailures"]) == 1 and world.sagemaker.calls == []
    assert sum(world.terminated(job) for job in running) == 2
    second = handler(event, None, world.runtime(time_left=lambda: 60.0))
    assert second["batchItemFailures"] == [] and len(world.sagemaker.failures) == 1
    assert all(world.terminated(job) for job in running)
