"""The callback message contract: what parses, and what is poison."""

from __future__ import annotations

import json

import pytest

from lambdas.contracts import (
    MessageParseError,
    is_terminal,
    join_job_ids,
    parse_callback_message,
    split_job_ids,
)


def test_a_sagemaker_callback_message_parses() -> None:
    body = json.dumps(
        {
            "token": "Zx8Jq2Lm0P",
            "pipelineExecutionArn": "arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/e",
            "arguments": {"job_ids": "a  b a\tc", "batch_size": 3},
            "status": "Stopping",
        }
    )
    message = parse_callback_message(body)
    assert message.token == "Zx8Jq2Lm0P"
    assert message.job_ids == ("a", "b", "c")
    assert message.arguments["batch_size"] == "3"
    assert message.stopping


@pytest.mark.parametrize("key", ["status", "Status"])
def test_a_stop_message_is_recognised_whichever_way_status_is_spelled(key: str) -> None:
    # StopPipelineExecution's API reference: the stop message "contains a "Status" field
    # which is set to "Stopping""; the CallbackStep guide's example uses "status".
    body = json.dumps({"token": "Zx8Jq2Lm0P", "arguments": {"job_ids": "a"}, key: "Stopping"})
    assert parse_callback_message(body).stopping


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[1, 2]",
        '{"arguments": {}}',
        '{"token": ""}',
        '{"token": 5}',
        '{"token": "t", "arguments": []}',
        '{"token": "t", "status": 1}',
    ],
)
def test_anything_else_is_a_parse_error(body: str) -> None:
    with pytest.raises(MessageParseError):
        parse_callback_message(body)


def test_job_id_helpers_round_trip() -> None:
    assert split_job_ids(join_job_ids(["x", "y"])) == ("x", "y")


def test_a_status_never_seen_is_not_terminal() -> None:
    assert is_terminal("SUCCEEDED") and is_terminal("FAILED")
    assert not is_terminal("RUNNING") and not is_terminal("SOMETHING_NEW")
