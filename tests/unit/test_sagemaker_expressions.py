"""The pipeline definition's expression language and step graph, table-tested (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.sagemaker.definition import (
    DefinitionError,
    parse_definition,
    resolve_parameters,
)
from services.sagemaker.expressions import (
    ExpressionError,
    Scope,
    evaluate,
    evaluate_conditions,
    step_references,
)

SCOPE = Scope(
    parameters={"InputUri": "s3://in", "MaxJobs": 3, "Ratio": 0.5, "Dry": False},
    execution={
        "PipelineExecutionId": "abc123def456",
        "PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc",
    },
    step_outputs={"Submit": {"jobIds": "j1 j2", "jobCount": "2"}},
)


def get(path: str) -> dict[str, str]:
    return {"Get": path}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("plain", "plain"),
        (7, 7),
        (None, None),
        (get("Parameters.InputUri"), "s3://in"),
        (get("Parameters.MaxJobs"), 3),
        (get("Execution.PipelineExecutionId"), "abc123def456"),
        (get("Steps.Submit.OutputParameters['jobIds']"), "j1 j2"),
        (get('Steps.Submit.OutputParameters["jobCount"]'), "2"),
        ({"Std:Join": {"On": "/", "Values": [get("Parameters.InputUri"), "x", 1]}}, "s3://in/x/1"),
        ({"Std:Join": {"On": ",", "Values": []}}, ""),
        (
            {"a": get("Parameters.MaxJobs"), "b": [get("Parameters.Dry"), "c"]},
            {"a": 3, "b": [False, "c"]},
        ),
    ],
)
def test_evaluate_resolves_values(expr: Any, expected: Any) -> None:
    assert evaluate(expr, SCOPE) == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (get("Parameters.Missing"), "no parameter 'Missing'"),
        (get("Execution.Nope"), "unknown execution variable"),
        (get("Steps.Later.OutputParameters['x']"), "'Later' has not produced outputs"),
        (get("Steps.Submit.OutputParameters['nope']"), "has no output 'nope'"),
        (get("Steps.Train.Properties.ModelArtifacts"), "only Steps.<name>.OutputParameters"),
        (get("Somewhere.Else"), "a Get reads"),
        ({"Std:JsonGet": {"PropertyFile": "f", "Path": "p"}}, "Std:JsonGet"),
        ({"Std:Join": {"On": "/"}}, "Std:Join needs"),
    ],
)
def test_evaluate_explains_what_it_cannot_resolve(expr: Any, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        evaluate(expr, SCOPE)


def cmp(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (cmp("Equals", get("Parameters.InputUri"), "s3://in"), True),
        (cmp("Equals", get("Parameters.InputUri"), "s3://other"), False),
        (cmp("GreaterThan", get("Parameters.MaxJobs"), 2), True),
        (cmp("GreaterThan", get("Parameters.MaxJobs"), 3), False),
        (cmp("GreaterThanOrEqualTo", get("Parameters.MaxJobs"), 3), True),
        (cmp("LessThan", get("Parameters.Ratio"), 1), True),
        (cmp("LessThanOrEqualTo", get("Parameters.Ratio"), 0.4), False),
        # Lambda/Callback outputs are strings; compared with a number they compare as numbers.
        (cmp("GreaterThan", get("Steps.Submit.OutputParameters['jobCount']"), 1), True),
        (cmp("Equals", get("Steps.Submit.OutputParameters['jobCount']"), 2), True),
        (cmp("Equals", get("Parameters.Dry"), False), True),
        ({"Type": "In", "QueryValue": get("Parameters.MaxJobs"), "Values": [1, 3]}, True),
        ({"Type": "In", "QueryValue": get("Parameters.InputUri"), "Values": ["a"]}, False),
        ({"Type": "Not", "Condition": cmp("Equals", 1, 1)}, False),
        ({"Type": "Or", "Conditions": [cmp("Equals", 1, 2), cmp("Equals", 2, 2)]}, True),
        ({"Type": "Or", "Conditions": [cmp("Equals", 1, 2)]}, False),
    ],
)
def test_conditions(condition: dict[str, Any], holds: bool) -> None:
    assert evaluate_conditions([condition], SCOPE) is holds


def test_a_condition_list_holds_only_when_every_condition_does() -> None:
    assert evaluate_conditions([cmp("Equals", 1, 1), cmp("Equals", 1, 1)], SCOPE) is True
    assert evaluate_conditions([cmp("Equals", 1, 1), cmp("Equals", 1, 2)], SCOPE) is False
    assert evaluate_conditions([], SCOPE) is True


@pytest.mark.parametrize(
    "condition",
    [
        {"Type": "Between", "LeftValue": 1},
        cmp("GreaterThan", "text", [1]),
        {"Type": "Or", "Conditions": "nope"},
        "Equals",
    ],
)
def test_bad_conditions_are_expression_errors(condition: Any) -> None:
    with pytest.raises(ExpressionError):
        evaluate_conditions([condition], SCOPE)


def test_step_references_are_the_implicit_dependencies() -> None:
    expr = {
        "a": get("Steps.Submit.OutputParameters['jobIds']"),
        "b": {"Std:Join": {"On": " ", "Values": [get("Steps.Other.OutputParameters['x']")]}},
        "c": get("Parameters.InputUri"),
    }
    assert step_references(expr) == {"Submit", "Other"}


# --- the definition's step graph ------------------------------------------------------------


def definition(*steps: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> str:
    return json.dumps({"Version": "2020-12-01", "Parameters": parameters or [], "Steps": steps})


LAMBDA = {"Name": "Submit", "Type": "Lambda", "Arguments": {}, "FunctionArn": "arn"}
CALLBACK = {
    "Name": "Wait",
    "Type": "Callback",
    "Arguments": {"job_ids": get("Steps.Submit.OutputParameters['jobIds']")},
    "SqsQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
}


def test_dependencies_come_from_depends_on_references_and_branches() -> None:
    fail = {"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "x"}}
    check = {
        "Name": "Check",
        "Type": "Condition",
        "DependsOn": ["Wait"],
        "Arguments": {"Conditions": [], "IfSteps": [fail], "ElseSteps": []},
    }
    parsed = parse_definition(definition(LAMBDA, CALLBACK, check))
    assert list(parsed.steps) == ["Submit", "Wait", "Check", "Stop"]
    assert parsed.steps["Wait"].depends_on == {"Submit"}
    assert parsed.steps["Check"].depends_on == {"Wait"}
    assert parsed.steps["Stop"].depends_on == {"Check"}
    branch = parsed.steps["Stop"].branch
    assert branch is not None and (branch.condition, branch.outcome) == ("Check", True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        (definition(CALLBACK), "references Submit"),
        (definition(LAMBDA, LAMBDA), "used more than once"),
        (definition({"Name": "A"}), "needs a Name and a Type"),
        (
            definition(
                {"Name": "A", "Type": "Fail", "DependsOn": ["B"]},
                {"Name": "B", "Type": "Fail", "DependsOn": ["A"]},
            ),
            "cycle",
        ),
    ],
)
def test_invalid_definitions_are_rejected(text: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        parse_definition(text)


def test_unsupported_step_types_are_listed() -> None:
    parsed = parse_definition(definition(LAMBDA, {"Name": "Train", "Type": "Training"}))
    assert [s.name for s in parsed.unsupported_steps()] == ["Train"]


PARAMETERS = [
    {"Name": "InputUri", "Type": "String", "DefaultValue": "s3://in"},
    {"Name": "MaxJobs", "Type": "Integer", "DefaultValue": 1},
    {"Name": "Ratio", "Type": "Float", "DefaultValue": 0.5},
    {"Name": "Dry", "Type": "Boolean", "DefaultValue": False},
]


def test_parameter_overrides_are_converted_to_their_declared_type() -> None:
    parsed = parse_definition(definition(LAMBDA, parameters=PARAMETERS))
    assert resolve_parameters(parsed, []) == {
        "InputUri": "s3://in",
        "MaxJobs": 1,
        "Ratio": 0.5,
        "Dry": False,
    }
    overrides = [
        {"Name": "MaxJobs", "Value": "7"},
        {"Name": "Ratio", "Value": "0.25"},
        {"Name": "Dry", "Value": "true"},
    ]
    assert resolve_parameters(parsed, overrides) == {
        "InputUri": "s3://in",
        "MaxJobs": 7,
        "Ratio": 0.25,
        "Dry": True,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([{"Name": "Nope", "Value": "1"}], "not declared"),
        ([{"Name": "MaxJobs", "Value": "many"}], "is Integer"),
        ([{"Name": "Dry", "Value": "yes"}], "Boolean"),
    ],
)
def test_bad_overrides_are_rejected(overrides: list[dict[str, Any]], message: str) -> None:
    parsed = parse_definition(definition(LAMBDA, parameters=PARAMETERS))
    with pytest.raises(DefinitionError, match=message):
        resolve_parameters(parsed, overrides)


def test_a_parameter_without_default_must_be_given() -> None:
    parsed = parse_definition(definition(LAMBDA, parameters=[{"Name": "Run", "Type": "String"}]))
    with pytest.raises(DefinitionError, match="Run"):
        resolve_parameters(parsed, [])
    assert resolve_parameters(parsed, [{"Name": "Run", "Value": "r1"}]) == {"Run": "r1"}
