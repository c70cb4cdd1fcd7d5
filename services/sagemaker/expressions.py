"""The expression language of a pipeline definition, as pure functions.

A definition's values are JSON literals or expressions that SageMaker resolves at run time:
``{"Get": "Parameters.X"}``, ``{"Get": "Execution.PipelineExecutionArn"}``,
``{"Get": "Steps.S.OutputParameters['x']"}``, ``{"Std:Join": {"On": ",", "Values": [...]}}``;
Condition steps add comparisons (``Equals``, ``GreaterThan`` …, ``In``, ``Not``, ``Or``).
Nothing here does I/O: a :class:`Scope` carries every value an expression may read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ExpressionError(ValueError):
    """An expression that cannot be resolved; the step that holds it fails with this message."""


@dataclass(frozen=True)
class Scope:
    """What expressions can read while one execution runs."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: ``Execution.*`` variables: PipelineExecutionId, PipelineExecutionArn, PipelineName, …
    execution: Mapping[str, Any] = field(default_factory=dict)
    #: The output parameters of finished steps, by step name.
    step_outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


# Steps.NAME.OutputParameters['key'] (or ["key"]). Step names match [A-Za-z0-9\-_]*, so the
# first dot ends the name.
_STEP_OUTPUT = re.compile(r"^Steps\.([^.]+)\.OutputParameters\[(['\"])(.+)\2\]$")
_STEP_REF = re.compile(r"^Steps\.([^.\[]+)")


def evaluate(expr: Any, scope: Scope) -> Any:
    """Resolve ``expr`` (any JSON value of the definition) against ``scope``."""
    if isinstance(expr, list):
        return [evaluate(item, scope) for item in expr]
    if not isinstance(expr, dict):
        return expr
    if "Get" in expr and len(expr) == 1:
        return _get(expr["Get"], scope)
    if "Std:Join" in expr and len(expr) == 1:
        spec = expr["Std:Join"]
        if not isinstance(spec, dict) or not isinstance(spec.get("Values"), list):
            raise ExpressionError(f"Std:Join needs On and a list of Values, got {spec!r}")
        separator = evaluate(spec.get("On", ""), scope)
        return str(separator).join(to_text(evaluate(v, scope)) for v in spec["Values"])
    if "Std:JsonGet" in expr and len(expr) == 1:
        raise ExpressionError(
            "Std:JsonGet reads a property file written by a Processing step; batchbridge's "
            "local SageMaker runs Lambda, Callback, Condition and Fail steps only"
        )
    return {key: evaluate(value, scope) for key, value in expr.items()}


def _get(path: Any, scope: Scope) -> Any:
    if not isinstance(path, str):
        raise ExpressionError(f"Get needs a string path, got {path!r}")
    head, _, rest = path.partition(".")
    if head == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"{path}: the pipeline declares no parameter {rest!r}")
        return scope.parameters[rest]
    if head == "Execution":
        if rest not in scope.execution:
            known = ", ".join(sorted(scope.execution))
            raise ExpressionError(f"{path}: unknown execution variable (known: {known})")
        return scope.execution[rest]
    if head == "Steps":
        match = _STEP_OUTPUT.match(path)
        if not match:
            raise ExpressionError(
                f"{path}: only Steps.<name>.OutputParameters['<key>'] (Lambda and Callback "
                "outputs) can be read locally"
            )
        step, _, key = match.groups()
        if step not in scope.step_outputs:
            raise ExpressionError(f"{path}: step {step!r} has not produced outputs")
        outputs = scope.step_outputs[step]
        if key not in outputs:
            raise ExpressionError(
                f"{path}: step {step!r} has no output {key!r} (it has: "
                f"{', '.join(sorted(outputs)) or 'none'})"
            )
        return outputs[key]
    raise ExpressionError(f"{path}: a Get reads Parameters.*, Execution.* or Steps.*")


def to_text(value: Any) -> str:
    """A resolved value as SageMaker writes it into a string (Join, output parameters)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def step_references(expr: Any) -> set[str]:
    """The names of the steps whose properties ``expr`` reads (its implicit dependencies)."""
    found: set[str] = set()
    if isinstance(expr, list):
        for item in expr:
            found |= step_references(item)
    elif isinstance(expr, dict):
        path = expr.get("Get")
        if isinstance(path, str) and len(expr) == 1:
            match = _STEP_REF.match(path)
            if match:
                found.add(match.group(1))
            return found
        for value in expr.values():
            found |= step_references(value)
    return found


# --- conditions ----------------------------------------------------------------------------

_COMPARISONS = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def evaluate_conditions(conditions: Any, scope: Scope) -> bool:
    """A Condition step's ``Conditions`` list: true when every condition holds."""
    if not isinstance(conditions, list):
        raise ExpressionError(f"Conditions must be a list, got {conditions!r}")
    return all(evaluate_condition(c, scope) for c in conditions)


def evaluate_condition(condition: Any, scope: Scope) -> bool:
    if not isinstance(condition, dict) or "Type" not in condition:
        raise ExpressionError(f"a condition is an object with a Type, got {condition!r}")
    kind = condition["Type"]
    if kind in _COMPARISONS:
        left = evaluate(condition.get("LeftValue"), scope)
        right = evaluate(condition.get("RightValue"), scope)
        left, right = _comparable(left, right)
        try:
            return bool(_COMPARISONS[kind](left, right))
        except TypeError as exc:
            raise ExpressionError(f"{kind} cannot compare {left!r} with {right!r}") from exc
    if kind == "In":
        value = evaluate(condition.get("QueryValue"), scope)
        candidates = evaluate(condition.get("Values", []), scope)
        return any(_comparable(value, c)[0] == _comparable(value, c)[1] for c in candidates)
    if kind == "Not":
        return not evaluate_condition(condition.get("Condition"), scope)
    if kind == "Or":
        parts = condition.get("Conditions")
        if not isinstance(parts, list):
            raise ExpressionError(f"Or needs a list of Conditions, got {parts!r}")
        return any(evaluate_condition(c, scope) for c in parts)
    raise ExpressionError(f"unknown condition type {kind!r}")


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Lambda and Callback outputs are strings; compare them with numbers as numbers."""
    if _is_number(left) and isinstance(right, str):
        return left, _number(right, fallback=right)
    if _is_number(right) and isinstance(left, str):
        return _number(left, fallback=left), right
    return left, right


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(text: str, fallback: Any) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return fallback
