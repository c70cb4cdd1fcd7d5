"""The CloudFormation template: lint clean, least privilege, and wired as DESIGN.md says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.deploy_config import MONITOR_TIMEOUTS, DeployConfig

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "batchbridge.yaml"

#: Actions that have no resource-level permissions, so "*" is the only possible Resource.
UNSCOPABLE = {
    "batch:DescribeJobs",
    "batch:ListJobs",
    "sagemaker:SendPipelineExecutionStepSuccess",
    "sagemaker:SendPipelineExecutionStepFailure",
}
#: The one AWS-managed policy the template may attach (Batch's own service-role policy,
#: used only when the service-linked role is not).
ALLOWED_MANAGED_POLICIES = {"service-role/AWSBatchServiceRole"}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub …) read as their long form."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else ("Condition" if suffix == "Condition" else f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def _resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, role in _resources(template, "AWS::IAM::Role").items():
        policies = role["Properties"].get("Policies", [])
        if isinstance(policies, dict):  # Fn::If [cond, [policies], NoValue]
            policies = [
                p for branch in policies["Fn::If"][1:] if isinstance(branch, list) for p in branch
            ]
        for policy in policies:
            for statement in policy["PolicyDocument"]["Statement"]:
                found.append((name, statement))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_template_passes_cfn_lint() -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint, "cfn-lint is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_wildcard_actions_and_star_resources_only_where_aws_allows_nothing_else(
    template: dict[str, Any],
) -> None:
    statements = _statements(template)
    assert statements
    for role, statement in statements:
        actions = _as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, f"{role}: wildcard action {action}"
        if statement["Resource"] == "*":
            assert set(actions) <= UNSCOPABLE, f"{role}: {actions} on '*'"


def test_no_full_access_managed_policies(template: dict[str, Any]) -> None:
    for name, role in _resources(template, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
            assert "FullAccess" not in text, name
            assert text.split(":policy/", 1)[1] in ALLOWED_MANAGED_POLICIES, (name, text)


def test_queue_visibility_is_at_least_six_monitor_timeouts(template: dict[str, Any]) -> None:
    rows = template["Mappings"]["QueueVisibility"]
    allowed = template["Parameters"]["MonitorTimeoutSeconds"]["AllowedValues"]
    assert set(rows) == set(allowed) == set(MONITOR_TIMEOUTS)
    for timeout, row in rows.items():
        assert row["Seconds"] >= 6 * int(timeout)
    monitor = template["Resources"]["MonitorFunction"]["Properties"]
    assert monitor["Timeout"] == {"Ref": "MonitorTimeoutSeconds"}
    for queue in ("CallbackQueue", "DeadLetterQueue"):
        visibility = template["Resources"][queue]["Properties"]["VisibilityTimeout"]
        assert visibility == {
            "Fn::FindInMap": ["QueueVisibility", {"Ref": "MonitorTimeoutSeconds"}, "Seconds"]
        }


def test_callback_queue_redrives_to_the_dlq_after_the_derived_receive_count(
    template: dict[str, Any],
) -> None:
    redrive = template["Resources"]["CallbackQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert template["Parameters"]["MaxReceiveCount"]["MaxValue"] == 1000


def test_monitor_and_reaper_mappings_report_batch_item_failures(template: dict[str, Any]) -> None:
    mappings = {
        m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
        for m in _resources(template, "AWS::Lambda::EventSourceMapping").values()
    }
    assert mappings["MonitorFunction"]["EventSourceArn"] == {"Fn::GetAtt": ["CallbackQueue", "Arn"]}
    assert mappings["ReaperFunction"]["EventSourceArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }
    for properties in mappings.values():
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_handlers_name_functions_that_exist(template: dict[str, Any]) -> None:
    root = TEMPLATE.parents[1]
    for name, function in _resources(template, "AWS::Lambda::Function").items():
        module, _, attribute = function["Properties"]["Handler"].rpartition(".")
        source = root / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source} is missing"
        assert f"def {attribute}(" in source.read_text(), f"{name}: no {attribute} in {source}"


def test_reaper_runs_the_monitor_in_reaper_mode(template: dict[str, Any]) -> None:
    reaper = template["Resources"]["ReaperFunction"]["Properties"]
    for branch in reaper["Environment"]["Variables"]["Fn::If"][1:]:
        assert branch["BATCHBRIDGE_MODE"] == "reaper"


def test_submitter_defaults_to_the_stacks_job_queue_and_definition(
    template: dict[str, Any],
) -> None:
    variables = template["Resources"]["SubmitterFunction"]["Properties"]["Environment"]
    outputs = template["Outputs"]
    for branch in variables["Variables"]["Fn::If"][1:]:
        assert branch["BATCHBRIDGE_JOB_QUEUE"] == outputs["JobQueue"]["Value"]
        assert branch["BATCHBRIDGE_JOB_DEFINITION"] == outputs["JobDefinition"]["Value"]
    queue = template["Resources"]["JobQueue"]["Properties"]["JobQueueName"]
    assert outputs["JobQueue"]["Value"]["Fn::If"][1] == queue


def test_copy_job_definition_is_the_tutorials(template: dict[str, Any]) -> None:
    definition = template["Resources"]["CopyJobDefinition"]["Properties"]
    container = definition["ContainerProperties"]
    assert container["Image"] == "public.ecr.aws/aws-cli/aws-cli"
    assert container["Command"] == ["s3", "cp", "Ref::s3Input", "Ref::s3Output"]
    assert definition["PlatformCapabilities"] == ["FARGATE"]
    compute = template["Resources"]["ComputeEnvironment"]["Properties"]["ComputeResources"]
    assert compute["Type"] == "FARGATE"


def test_deploy_passes_exactly_the_templates_parameters(template: dict[str, Any]) -> None:
    config = DeployConfig(command="deploy", target="aws")
    passed = config.template_parameters("bucket", "key", ["subnet-1"], ["sg-1"])
    assert set(passed) == set(template["Parameters"])
