"""CloudFormation for ``batchbridge deploy``: change set, execute with progress, outputs, delete.

Plain functions over a boto3 CloudFormation client; printing goes through ``say`` so the
caller decides where progress lines go (stderr, so ``--output json`` stays parseable).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

Say = Callable[[str], None]

#: Statuses a stack can be updated from.
UPDATABLE = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)
#: A stack in one of these never got created: it has to be deleted before a new try.
DEAD = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"})
#: Phrases CloudFormation (and moto) use for a change set with nothing to do.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class StackError(RuntimeError):
    """A stack operation failed; the message says what failed and what to do."""


@dataclass
class ChangeSet:
    arn: str
    stack_id: str
    kind: str  # CREATE | UPDATE
    changes: list[dict[str, Any]] = field(default_factory=list)
    empty: bool = False


def describe(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack, or None when there is none (deleted stacks are not returned by name)."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def create_change_set(
    cfn: Any,
    stack_name: str,
    template: str,
    parameters: dict[str, str],
    *,
    say: Say,
    timeout: float = 300,
) -> ChangeSet:
    existing = describe(cfn, stack_name)
    status = existing["StackStatus"] if existing else None
    if status in DEAD:
        raise StackError(
            f"stack {stack_name!r} is {status}: an earlier create failed and CloudFormation "
            f"cannot update it.{_failed_events_text(cfn, stack_name)}\n"
            f"Fix the cause, run `batchbridge destroy` with the same options, and deploy again."
        )
    if status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise StackError(
            f"stack {stack_name!r} is {status}: another operation is running. Wait for it to "
            f"finish (aws cloudformation describe-stacks --stack-name {stack_name}) and retry."
        )
    kind = "UPDATE" if status in UPDATABLE else "CREATE"
    name = f"batchbridge-{time.strftime('%Y%m%d%H%M%S')}-{int(time.time() * 1000) % 1000:03d}"
    try:
        response = cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=name,
            ChangeSetType=kind,
            TemplateBody=template,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
            Description="batchbridge deploy",
        )
    except ClientError as exc:
        # AWS reports "nothing to do" as a FAILED change set; moto refuses the request.
        if any(phrase in str(exc) for phrase in NO_CHANGES):
            return ChangeSet(
                arn="", stack_id=existing["StackId"] if existing else "", kind=kind, empty=True
            )
        raise
    change_set = ChangeSet(arn=response["Id"], stack_id=response["StackId"], kind=kind)
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set.arn, StackName=stack_name)
        state = described["Status"]
        if state == "CREATE_COMPLETE":
            # Executable even when no resource change is listed: parameters or outputs may
            # still change (and moto lists none for a parameter-only update).
            change_set.changes = [c["ResourceChange"] for c in described.get("Changes", [])]
            return change_set
        if state == "FAILED":
            reason = described.get("StatusReason", "")
            if any(phrase in reason for phrase in NO_CHANGES):
                change_set.empty = True
                cfn.delete_change_set(ChangeSetName=change_set.arn, StackName=stack_name)
                return change_set
            raise StackError(
                f"CloudFormation rejected the template or its parameters: {reason}\n"
                f"(change set {change_set.arn}). Fix the setting it names and deploy again."
            )
        if time.monotonic() > deadline:
            raise StackError(f"change set {change_set.arn} still {state} after {timeout:.0f}s")
        time.sleep(1)


def format_changes(change_set: ChangeSet) -> list[str]:
    if not change_set.changes:
        return ["  (no resource listed: parameter or output values change)"]
    lines = [f"  {'action':<8} {'resource':<24} {'type':<36} replacement"]
    for change in change_set.changes:
        lines.append(
            f"  {change.get('Action', ''):<8} {change.get('LogicalResourceId', ''):<24} "
            f"{change.get('ResourceType', ''):<36} {change.get('Replacement', '-') or '-'}"
        )
    return lines


def execute(
    cfn: Any, stack_name: str, change_set: ChangeSet, *, say: Say, timeout: float = 1800
) -> dict[str, Any]:
    """Execute the change set and follow the stack's events until it settles."""
    seen = {e["EventId"] for e in _events(cfn, stack_name)}
    try:
        cfn.execute_change_set(ChangeSetName=change_set.arn, StackName=stack_name)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        # AWS reports resource failures as stack events; moto fails the request itself (with
        # the failing service's error as the body) and leaves the stack half made.
        raise StackError(
            f"executing the change set failed: {exc}{_failed_events_text(cfn, stack_name)}\n"
            "Fix the setting it names, run `batchbridge destroy` (the stack may be left "
            "half-created), and deploy again."
        ) from exc
    deadline = time.monotonic() + timeout
    poll = 0.2
    while True:
        for event in _events(cfn, stack_name):
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            reason = event.get("ResourceStatusReason") or ""
            say(
                f"  {event['ResourceStatus']:<20} {event['LogicalResourceId']:<24} "
                f"{event.get('ResourceType', '')} {reason}".rstrip()
            )
        stack = describe(cfn, stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            assert stack is not None
            return stack
        # *_IN_PROGRESS (rollbacks included): keep following until the stack settles.
        if not status.endswith("_IN_PROGRESS"):
            advice = (
                "Fix the cause, run `batchbridge destroy`, and deploy again."
                if status in DEAD
                else "The stack is back in its previous state; fix the cause and deploy again."
            )
            raise StackError(
                f"stack {stack_name!r} ended {status}."
                f"{_failed_events_text(cfn, stack_name)}\n{advice}"
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"stack {stack_name!r} still {status} after {timeout:.0f}s; follow it with "
                f"aws cloudformation describe-stack-events --stack-name {stack_name}"
            )
        time.sleep(poll)
        poll = min(poll * 2, 5.0)


def delete(cfn: Any, stack_name: str, *, say: Say, timeout: float = 1800) -> bool:
    """Delete the stack and wait; False when there was none."""
    stack = describe(cfn, stack_name)
    if stack is None:
        return False
    stack_id = stack["StackId"]
    cfn.delete_stack(StackName=stack_name)
    deadline = time.monotonic() + timeout
    poll = 0.2
    while True:
        current = describe(cfn, stack_id)
        status = current["StackStatus"] if current else "DELETE_COMPLETE"
        if status == "DELETE_COMPLETE":
            return True
        if status == "DELETE_FAILED":
            raise StackError(
                f"deleting stack {stack_name!r} failed.{_failed_events_text(cfn, stack_id)}\n"
                "Remove what blocks it (e.g. a non-empty bucket) and run destroy again."
            )
        if time.monotonic() > deadline:
            raise StackError(f"stack {stack_name!r} still {status} after {timeout:.0f}s")
        time.sleep(poll)
        poll = min(poll * 2, 5.0)


def _events(cfn: Any, stack_name: str) -> list[dict[str, Any]]:
    try:
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError:
        return []
    return list(reversed(events))  # oldest first


def failed_events(cfn: Any, stack_name: str) -> list[dict[str, Any]]:
    return [e for e in _events(cfn, stack_name) if e["ResourceStatus"].endswith("FAILED")]


def _failed_events_text(cfn: Any, stack_name: str) -> str:
    failed = failed_events(cfn, stack_name)
    if not failed:
        return ""
    lines = [
        f"\n  {e['LogicalResourceId']} ({e.get('ResourceType', '')}) {e['ResourceStatus']}: "
        f"{e.get('ResourceStatusReason', '')}"
        for e in failed
    ]
    return "\nThe stack events that failed:" + "".join(lines)
