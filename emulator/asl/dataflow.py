"""Data flow shared by the state handlers in both query languages: Assign, JSONata's $states
bindings, reading a ``*Path`` or ``{% %}`` value, and the tail that ends a state.

Order, as AWS documents it ("Passing data between states with variables", "Transforming data with
JSONata"): JSONPath states run ResultSelector, then Assign (``$`` is the selected result), then
ResultPath and OutputPath; JSONata states evaluate Assign and Output side by side, both seeing
``$states.result`` and the variables from before the state. The new values are committed only
when the state has produced its output, so no expression of a state sees its own assignments.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from emulator.asl import query
from emulator.asl.errors import DefinitionError
from emulator.asl.jsonpath import JsonPath
from emulator.asl.paths import Env, Template, apply_output_path, apply_result_path, compile_template, read_path
from emulator.asl.query import QueryTemplate
from emulator.asl.variables import check_name

_UNSET: Any = object()


@dataclass(frozen=True)
class Assign:
    """A compiled Assign field: variable names and the template that computes their values."""

    pointer: str
    names: tuple[str, ...]
    template: Template | QueryTemplate


def compile_assign(raw: Any, pointer: str, jsonata: bool) -> Assign:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "Assign must be a JSON object mapping variable names to values")
    names = []
    for key in raw:
        name = key[:-2] if not jsonata and key.endswith(".$") else key
        check_name(name, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
        names.append(name)
    template = query.compile_template(raw, pointer) if jsonata else compile_template(raw, pointer)
    return Assign(pointer=pointer, names=tuple(names), template=template)


# -- JSONata bindings ---------------------------------------------------------------------------------

_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _functions(env: Env) -> dict[str, Any]:
    table = _FUNCTIONS.get(env.rng)
    if table is None:
        table = _FUNCTIONS[env.rng] = query.functions(env.rng)
    return table


def jsonata_bindings(env: Env, *, result: Any = _UNSET, error_output: Any = _UNSET) -> dict[str, Any]:
    """The variables a JSONata expression sees: Step Functions' functions, the workflow variables
    (which may shadow a function of the same name) and $states."""
    states: dict[str, Any] = {"input": env.data, "context": env.context}
    if result is not _UNSET:
        states["result"] = result
    if error_output is not _UNSET:
        states["errorOutput"] = error_output
    bindings = dict(_functions(env))
    if env.scope is not None:
        for name, value in env.scope.visible().items():
            bindings[name] = query.binding(value)
    bindings["states"] = states
    return bindings


def read_value(source: Any, env: Env, field: str) -> Any:
    """A *Path field (a JsonPath read from the env) or a JSONata field (an Expression)."""
    if isinstance(source, JsonPath):
        return read_path(source, env, field)
    return source.evaluate(jsonata_bindings(env), field)


def render_payload(payload: Template | QueryTemplate, env: Env, field: str) -> Any:
    """Parameters/ItemSelector (JSONPath template) or Arguments/ItemSelector (JSONata template)."""
    if isinstance(payload, Template):
        return payload.render(env)
    return payload.render(jsonata_bindings(env), field)


# -- Assign --------------------------------------------------------------------------------------------


def evaluate_assign(assign: Assign | None, env: Env, bindings: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The values an Assign sets, computed against the variables from before the state.

    JSONPath: ``env.data`` is what ``$`` means here (the state's result, or its input for states
    without one). JSONata: ``bindings`` (with $states.result/errorOutput where they exist).
    """
    if assign is None:
        return None
    if isinstance(assign.template, Template):
        return assign.template.render(env)
    return assign.template.render(bindings if bindings is not None else jsonata_bindings(env), "Assign")


def commit(env: Env, assigned: dict[str, Any] | None, state_name: str) -> None:
    if assigned and env.scope is not None:
        env.scope.assign(assigned, state_name)


# -- the tail of a state ----------------------------------------------------------------------------


def finish(state: Any, raw_input: Any, result: Any, env: Env) -> Any:
    """From a Task/Parallel/Map result to the state output, assigning variables on the way.

    ``env.data`` is the raw state input.
    """
    if state.jsonata:
        bindings = jsonata_bindings(env, result=result)
        assigned = evaluate_assign(state.assign, env, bindings)
        output = state.output.render(bindings, "Output") if state.output is not None else result
    else:
        if state.result_selector is not None:
            result = state.result_selector.render(env.with_data(result))
        assigned = evaluate_assign(state.assign, env.with_data(result))
        output = apply_output_path(state.output_path, apply_result_path(state.result_path, raw_input, result), env)
    commit(env, assigned, state.name)
    return output


def finish_simple(state: Any, effective: Any, output: Any, env: Env) -> Any:
    """The tail of Pass, Wait, Choice and Succeed: ``output`` is the JSONPath output already
    computed; JSONata's Output (default: the input) replaces it. ``effective`` is what ``$``
    means in a JSONPath Assign."""
    if state.assign is None and state.output is None:
        return output  # the common case: nothing to evaluate
    if state.jsonata:
        bindings = jsonata_bindings(env)
        assigned = evaluate_assign(state.assign, env, bindings)
        if state.output is not None:
            output = state.output.render(bindings, "Output")
    else:
        assigned = evaluate_assign(state.assign, env.with_data(effective))
    commit(env, assigned, state.name)
    return output


def catch_output(state: Any, catcher: Any, raw_input: Any, error_output: dict, env: Env) -> Any:
    """The output of a state whose error a catcher handled: its Assign runs (not the state's),
    then ResultPath (JSONPath) or the catcher's Output (JSONata; default $states.errorOutput)."""
    if state.jsonata:
        bindings = jsonata_bindings(env, error_output=error_output)
        assigned = evaluate_assign(catcher.assign, env, bindings)
        output = catcher.output.render(bindings, "Output") if catcher.output is not None else error_output
    else:
        assigned = evaluate_assign(catcher.assign, env.with_data(error_output))
        output = apply_result_path(catcher.result_path, raw_input, error_output)
    commit(env, assigned, state.name)
    return output
