"""A pipeline definition JSON (as the sagemaker SDK's ``Pipeline.definition()`` writes it),
parsed into the step graph an execution walks. Pure: text in, data out, typed errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.sagemaker.expressions import step_references

#: The step types batchbridge's local SageMaker runs; any other fails the execution at once.
SUPPORTED_STEP_TYPES = ("Lambda", "Callback", "Condition", "Fail")


class DefinitionError(ValueError):
    """A definition (or parameter override) SageMaker would reject with a ValidationException."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # String | Integer | Float | Boolean
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class Branch:
    """A step that sits in a Condition step's IfSteps (outcome True) or ElseSteps (False)."""

    condition: str
    outcome: bool


@dataclass(frozen=True)
class StepSpec:
    name: str
    type: str
    spec: dict[str, Any]  # the step's JSON as written in the definition
    #: Steps that must succeed first: DependsOn, property references and the enclosing
    #: Condition step of a branch.
    depends_on: frozenset[str]
    branch: Branch | None = None

    @property
    def display_name(self) -> str | None:
        value = self.spec.get("DisplayName")
        return value if isinstance(value, str) else None

    @property
    def description(self) -> str | None:
        value = self.spec.get("Description")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Definition:
    parameters: dict[str, Parameter]
    steps: dict[str, StepSpec]  # in definition order, branch steps after their Condition step

    def unsupported_steps(self) -> list[StepSpec]:
        return [s for s in self.steps.values() if s.type not in SUPPORTED_STEP_TYPES]


def parse_definition(text: str) -> Definition:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DefinitionError(f"PipelineDefinition is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DefinitionError("PipelineDefinition must be a JSON object")
    parameters = _parameters(data.get("Parameters", []))
    raw_steps = data.get("Steps", [])
    if not isinstance(raw_steps, list):
        raise DefinitionError("PipelineDefinition's Steps must be a list")
    steps: dict[str, StepSpec] = {}
    _collect(raw_steps, None, steps)
    for step in steps.values():
        missing = sorted(step.depends_on - steps.keys())
        if missing:
            raise DefinitionError(
                f"step {step.name!r} depends on or references {', '.join(missing)}, "
                "which the definition does not contain"
            )
    _check_acyclic(steps)
    return Definition(parameters=parameters, steps=steps)


def _parameters(raw: Any) -> dict[str, Parameter]:
    if not isinstance(raw, list):
        raise DefinitionError("PipelineDefinition's Parameters must be a list")
    parameters: dict[str, Parameter] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise DefinitionError(f"a parameter needs a Name: {item!r}")
        kind = item.get("Type", "String")
        if kind not in ("String", "Integer", "Float", "Boolean"):
            raise DefinitionError(f"parameter {item['Name']!r} has unknown Type {kind!r}")
        parameters[item["Name"]] = Parameter(
            name=item["Name"],
            type=kind,
            default=item.get("DefaultValue"),
            has_default="DefaultValue" in item,
        )
    return parameters


def _collect(raw_steps: Iterable[Any], branch: Branch | None, out: dict[str, StepSpec]) -> None:
    for raw in raw_steps:
        if not isinstance(raw, dict):
            raise DefinitionError(f"a step must be an object, got {raw!r}")
        name, kind = raw.get("Name"), raw.get("Type")
        if not isinstance(name, str) or not name or not isinstance(kind, str):
            raise DefinitionError(f"a step needs a Name and a Type: {json.dumps(raw)[:200]}")
        if name in out:
            raise DefinitionError(f"step name {name!r} is used more than once")
        explicit = raw.get("DependsOn") or []
        if not isinstance(explicit, list) or not all(isinstance(d, str) for d in explicit):
            raise DefinitionError(f"step {name!r}: DependsOn must be a list of step names")
        arguments = raw.get("Arguments", {})
        nested: list[Any] = []
        if kind == "Condition" and isinstance(arguments, dict):
            # Branch steps are listed inside the Condition step; they are not its inputs.
            nested_if = arguments.get("IfSteps", []) or []
            nested_else = arguments.get("ElseSteps", []) or []
            nested = [nested_if, nested_else]
            arguments = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
        depends = set(explicit) | step_references(arguments)
        if branch is not None:
            depends.add(branch.condition)
        depends.discard(name)
        out[name] = StepSpec(name, kind, raw, frozenset(depends), branch)
        if nested:
            _collect(nested[0], Branch(name, True), out)
            _collect(nested[1], Branch(name, False), out)


def _check_acyclic(steps: dict[str, StepSpec]) -> None:
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            raise DefinitionError(
                f"the steps depend on each other in a cycle: {' -> '.join(cycle)}"
            )
        visiting.append(name)
        for dep in sorted(steps[name].depends_on):
            visit(dep)
        visiting.pop()
        done.add(name)

    for name in steps:
        visit(name)


def resolve_parameters(definition: Definition, overrides: list[dict[str, Any]]) -> dict[str, Any]:
    """Defaults overlaid with StartPipelineExecution's ``PipelineParameters`` (string values),
    each converted to its declared type."""
    values = {p.name: p.default for p in definition.parameters.values() if p.has_default}
    for item in overrides:
        name, raw = item.get("Name"), item.get("Value")
        parameter = definition.parameters.get(str(name))
        if parameter is None:
            declared = ", ".join(definition.parameters) or "none"
            raise DefinitionError(
                f"Parameter {name!r} is not declared by the pipeline (declared: {declared})"
            )
        values[parameter.name] = _convert(parameter, str(raw))
    missing = [name for name in definition.parameters if name not in values]
    if missing:
        raise DefinitionError(
            f"Parameters {', '.join(missing)} have no default value and were not given"
        )
    return values


def _convert(parameter: Parameter, raw: str) -> Any:
    try:
        if parameter.type == "Integer":
            return int(raw)
        if parameter.type == "Float":
            return float(raw)
    except ValueError as exc:
        raise DefinitionError(
            f"Parameter {parameter.name!r} is {parameter.type}, but the value {raw!r} is not"
        ) from exc
    if parameter.type == "Boolean":
        if raw.lower() not in ("true", "false"):
            raise DefinitionError(f"Parameter {parameter.name!r} is Boolean; got {raw!r}")
        return raw.lower() == "true"
    return raw
