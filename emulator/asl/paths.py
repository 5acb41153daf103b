"""The input/output processing fields: InputPath, Parameters (payload templates), ResultSelector,
ResultPath and OutputPath, compiled once at parse time.

Data flows: raw input -> InputPath -> Parameters -> (task) -> ResultSelector -> ResultPath (merged into
the raw input) -> OutputPath. JSON values are treated as immutable: results share structure with their
inputs and nothing here mutates a value in place.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.asl.errors import (
    REFERENCE_PATH_CONFLICT,
    RUNTIME,
    DefinitionError,
    StatesError,
)
from emulator.asl.intrinsics import (
    Call,
    IntrinsicEnv,
    IntrinsicSyntaxError,
    evaluate,
    parse_intrinsic,
)
from emulator.asl.jsonpath import (
    JsonPath,
    PathError,
    PathSyntaxError,
    compile_path,
    compile_reference_path,
    set_path,
    short_json,
)
from emulator.asl.variables import Scope

ROOT = compile_path("$")


class Env:
    """What a payload template or path can read: the data, the context object ($$), the workflow
    variables ($name) and randomness."""

    __slots__ = ("_context", "_context_fn", "data", "rng", "scope")

    def __init__(self, data: Any, context: Callable[[], dict] | dict, rng: random.Random, scope: Scope | None = None):
        self.data = data
        self._context = context if isinstance(context, dict) else None
        self._context_fn = None if isinstance(context, dict) else context
        self.rng = rng
        self.scope = scope

    @property
    def context(self) -> dict:
        if self._context is None:
            self._context = self._context_fn()  # built only when a $$ path needs it
        return self._context

    def with_data(self, data: Any) -> Env:
        return Env(data, self._context if self._context is not None else self._context_fn, self.rng, self.scope)

    def variable(self, name: str, what: str) -> Any:
        if self.scope is None:
            raise StatesError(RUNTIME, f"The variable '${name}' used in '{what}' is not defined: no earlier state assigned it")
        return self.scope.get(name, what)


def read_path(path: JsonPath, env: Env, field: str) -> Any:
    """The value at a path, or States.Runtime in AWS's words, naming the field that asked for it."""
    if path.variable is not None:
        data = env.variable(path.variable, field)
    else:
        data = env.context if path.context else env.data
    try:
        return path.find(data)
    except PathError:
        raise StatesError(
            RUNTIME,
            f"The JSONPath '{path.text}' specified for the field '{field}' could not be found in the input '{short_json(data)}'",
        ) from None


def path_exists(path: JsonPath, env: Env) -> bool:
    """Whether a path selects something (Choice IsPresent); an undefined variable is not present."""
    if path.variable is not None:
        if env.scope is None or not env.scope.defined(path.variable):
            return False
        return path.exists(env.scope.lookup(path.variable))
    return path.exists(env.context if path.context else env.data)


# -- path fields ---------------------------------------------------------------------------------


def compile_optional_path(value: Any, pointer: str, reference: bool = False) -> JsonPath | None:
    """A path field that may be null (null means 'nothing' / 'discard')."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise DefinitionError(pointer, f"must be a JSONPath string or null, got {value!r}")
    try:
        return compile_reference_path(value) if reference else compile_path(value)
    except PathSyntaxError as exc:
        raise DefinitionError(pointer, str(exc)) from None


def apply_input_path(path: JsonPath | None, env: Env) -> Any:
    if path is None:
        return {}
    if path is ROOT:
        return env.data
    return read_path(path, env, "InputPath")


def apply_result_path(path: JsonPath | None, raw_input: Any, result: Any) -> Any:
    """The raw input with the result placed at ResultPath.

    The spec calls a failure here States.ResultPathMatchFailure; AWS executions report
    States.ReferencePathConflict ("Unable to apply step ... to input ..."), so that is what a
    Catch in the deployed pipeline sees and what we raise.
    """
    if path is None:
        return raw_input
    try:
        return set_path(raw_input, path, result)
    except PathError as exc:
        raise StatesError(REFERENCE_PATH_CONFLICT, str(exc)) from None


def apply_output_path(path: JsonPath | None, data: Any, env: Env) -> Any:
    if path is None:
        return {}
    if path is ROOT:
        return data
    return read_path(path, env.with_data(data), "OutputPath")


# -- payload templates -----------------------------------------------------------------------------

Render = Callable[[Env], Any]


@dataclass(frozen=True)
class Template:
    """A compiled payload template (Parameters, ResultSelector, ItemSelector)."""

    source: Any
    render_fn: Render

    def render(self, env: Env) -> Any:
        return self.render_fn(env)


def compile_template(value: Any, pointer: str) -> Template:
    if not isinstance(value, dict):
        raise DefinitionError(pointer, f"a payload template must be a JSON object, got {type(value).__name__}")
    return Template(source=value, render_fn=_compile_node(value, pointer))


def _compile_node(value: Any, pointer: str) -> Render:
    if isinstance(value, dict):
        items: list[tuple[str, Render]] = []
        for key, item in value.items():
            child = f"{pointer}/{_escape(key)}"
            if key.endswith(".$"):
                items.append((key[:-2], _compile_dynamic(key, item, child)))
            else:
                items.append((key, _compile_node(item, child)))
        names = [k for k, _ in items]
        duplicates = {k for k in names if names.count(k) > 1}
        if duplicates:
            raise DefinitionError(pointer, f"field(s) {sorted(duplicates)} appear both with and without '.$'")
        frozen = tuple(items)
        return lambda env: {key: render(env) for key, render in frozen}
    if isinstance(value, list):
        parts = tuple(_compile_node(item, f"{pointer}/{i}") for i, item in enumerate(value))
        return lambda env: [render(env) for render in parts]
    return lambda env: value  # scalars are immutable


def _compile_dynamic(key: str, value: Any, pointer: str) -> Render:
    if not isinstance(value, str):
        raise DefinitionError(pointer, f"the value of {key!r} must be a JSONPath or intrinsic function string")
    if value.startswith("$"):
        try:
            path = compile_path(value)
        except PathSyntaxError as exc:
            raise DefinitionError(pointer, str(exc)) from None
        return lambda env: read_path(path, env, key)
    if value.startswith("States."):
        try:
            call = parse_intrinsic(value)
        except IntrinsicSyntaxError as exc:
            raise DefinitionError(pointer, f"invalid intrinsic function: {exc}") from None
        return lambda env: _run_intrinsic(call, env)
    raise DefinitionError(
        pointer, f"the value of {key!r} must start with '$', '$$' or 'States.' (a path or intrinsic), got {value!r}"
    )


def _run_intrinsic(call: Call, env: Env) -> Any:
    return evaluate(call, IntrinsicEnv(env.data, env.context, env.rng, env.scope))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
