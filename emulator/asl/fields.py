"""What the parser checks in many places: Retry and Catch, transitions and reachability, unique
state names, the query language of a state, unknown fields, paths, templates and numbers."""

from __future__ import annotations

from typing import Any

from emulator.asl import query
from emulator.asl.dataflow import compile_assign
from emulator.asl.errors import ALL, DefinitionError
from emulator.asl.jsonpath import JsonPath
from emulator.asl.model import (
    JSONATA,
    JSONPATH,
    Catcher,
    Choice,
    Map,
    Retrier,
    State,
    StateMachine,
)
from emulator.asl.paths import ROOT, Template, compile_optional_path, compile_template

# -- Retry / Catch -----------------------------------------------------------------------------------


def error_equals(raw: dict, pointer: str, is_last: bool, what: str) -> tuple[str, ...]:
    names = raw.get("ErrorEquals")
    where = f"{pointer}/ErrorEquals"
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise DefinitionError(where, "ErrorEquals must be a non-empty array of error name strings")
    if ALL in names:
        if len(names) != 1:
            raise DefinitionError(where, "States.ALL must appear alone in its ErrorEquals array")
        if not is_last:
            raise DefinitionError(where, f"States.ALL must be in the last {what}")
    return tuple(names)


def retriers(raw: dict, pointer: str) -> tuple[Retrier, ...]:
    if "Retry" not in raw:
        return ()
    items = raw["Retry"]
    if not isinstance(items, list):
        raise DefinitionError(f"{pointer}/Retry", "Retry must be an array of retriers")
    out = []
    for i, item in enumerate(items):
        where = f"{pointer}/Retry/{i}"
        if not isinstance(item, dict):
            raise DefinitionError(where, "a retrier must be a JSON object")
        reject_unknown(
            item,
            {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy", "Comment"},
            where,
            "a retrier",
        )
        names = error_equals(item, where, i == len(items) - 1, "retrier")
        interval = item.get("IntervalSeconds", 1)
        if not is_int(interval) or interval < 1:
            raise DefinitionError(f"{where}/IntervalSeconds", "must be a positive integer")
        attempts = item.get("MaxAttempts", 3)
        if not is_int(attempts) or attempts < 0:
            raise DefinitionError(f"{where}/MaxAttempts", "must be a non-negative integer (0 means never retry)")
        backoff = item.get("BackoffRate", 2.0)
        if not is_number(backoff) or backoff < 1.0:
            raise DefinitionError(f"{where}/BackoffRate", "must be a number >= 1.0")
        max_delay = item.get("MaxDelaySeconds")
        if max_delay is not None and (not is_int(max_delay) or max_delay < 1):
            raise DefinitionError(f"{where}/MaxDelaySeconds", "must be a positive integer")
        jitter = item.get("JitterStrategy", "NONE")
        if jitter not in ("FULL", "NONE"):
            raise DefinitionError(f"{where}/JitterStrategy", f"must be FULL or NONE, got {jitter!r}")
        out.append(
            Retrier(
                error_equals=names,
                interval_seconds=float(interval),
                max_attempts=int(attempts),
                backoff_rate=float(backoff),
                max_delay_seconds=float(max_delay) if max_delay is not None else None,
                jitter_strategy=jitter,
                pointer=where,
            )
        )
    return tuple(out)


def catchers(raw: dict, pointer: str, language: str) -> tuple[Catcher, ...]:
    if "Catch" not in raw:
        return ()
    items = raw["Catch"]
    if not isinstance(items, list):
        raise DefinitionError(f"{pointer}/Catch", "Catch must be an array of catchers")
    out = []
    jsonata = language == JSONATA
    for i, item in enumerate(items):
        where = f"{pointer}/Catch/{i}"
        if not isinstance(item, dict):
            raise DefinitionError(where, "a catcher must be a JSON object")
        if jsonata and "ResultPath" in item:
            raise DefinitionError(
                f"{where}/ResultPath", "ResultPath is a JSONPath field; a JSONata catcher uses Output with $states.errorOutput, or Assign"
            )
        if not jsonata and "Output" in item:
            raise DefinitionError(f"{where}/Output", "Output is a JSONata field; a JSONPath catcher uses ResultPath")
        reject_unknown(item, {"ErrorEquals", "Next", "ResultPath", "Comment", "Assign", "Output"}, where, "a catcher")
        names = error_equals(item, where, i == len(items) - 1, "catcher")
        if not isinstance(item.get("Next"), str):
            raise DefinitionError(f"{where}/Next", "a catcher needs Next: the state to go to")
        out.append(
            Catcher(
                error_equals=names,
                next=item["Next"],
                result_path=ROOT if jsonata else opt_path(item, "ResultPath", where, reference=True),
                pointer=where,
                assign=compile_assign(item["Assign"], f"{where}/Assign", jsonata) if "Assign" in item else None,
                output=query.compile_template(item["Output"], f"{where}/Output") if "Output" in item else None,
            )
        )
    return tuple(out)


# -- whole-block checks ------------------------------------------------------------------------------


def targets(state: State) -> list[tuple[str, str]]:
    """(target state name, pointer of the field naming it) for every transition out of a state."""
    out = []
    if state.next is not None:
        out.append((state.next, f"{state.pointer}/Next"))
    if isinstance(state, Choice):
        out += [(c.next, f"{c.pointer}/Next") for c in state.choices]
        if state.default is not None:
            out.append((state.default, f"{state.pointer}/Default"))
    for catcher in getattr(state, "catch", ()):
        out.append((catcher.next, f"{catcher.pointer}/Next"))
    return out


def check_transitions(states: dict[str, State], pointer: str) -> None:
    for state in states.values():
        for target, where in targets(state):
            if target not in states:
                scope = "this branch" if pointer else "the state machine"
                raise DefinitionError(
                    where, f"{target!r} is not a state in {scope} (states: {sorted(states)})", code="MISSING_TRANSITION_TARGET"
                )


def check_reachable(start_at: str, states: dict[str, State], pointer: str) -> None:
    seen, todo = {start_at}, [start_at]
    while todo:
        for target, _ in targets(states[todo.pop()]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for name, state in states.items():
        if name not in seen:
            raise DefinitionError(state.pointer, f"state {name!r} is unreachable from StartAt {start_at!r}", code="UNREACHABLE_STATE")


# -- small helpers -------------------------------------------------------------------------------------


def check_unique_names(machine: StateMachine) -> None:
    """State names are unique across the whole machine, branches and item processors included."""
    seen: dict[str, str] = {}

    def visit(block: StateMachine) -> None:
        for name, state in block.states.items():
            if name in seen:
                raise DefinitionError(
                    state.pointer,
                    f"state name {name!r} is already used at {seen[name]}; names must be unique in the whole state machine",
                    code="DUPLICATE_STATE_NAME",
                )
            seen[name] = state.pointer
            for child in getattr(state, "branches", ()):
                visit(child)
            if isinstance(state, Map):
                visit(state.processor)

    visit(machine)


def query_language(raw: dict, pointer: str, inherited: str, what: str) -> str:
    """The QueryLanguage of a machine or state: its own, else the machine's. AWS lets JSONata
    states into a JSONPath machine (to convert it a state at a time) but not the reverse."""
    language = raw.get("QueryLanguage", inherited)
    if language not in (JSONPATH, JSONATA):
        raise DefinitionError(f"{pointer}/QueryLanguage", f"QueryLanguage must be JSONPath or JSONata, got {language!r}")
    if inherited == JSONATA and language == JSONPATH:
        raise DefinitionError(
            f"{pointer}/QueryLanguage",
            f"{what} sets QueryLanguage JSONPath inside a state machine whose QueryLanguage is JSONata; "
            "a JSONata state machine cannot contain JSONPath states (set JSONPath at the top and JSONata per state instead)",
        )
    return language


def reject_unknown(raw: dict, allowed: set[str], pointer: str, what: str) -> None:
    for key in raw:
        if key not in allowed:
            raise DefinitionError(f"{pointer}/{escape(key)}", f"{key!r} is not a field of {what}; allowed: {sorted(allowed)}")


def opt_path(raw: dict, key: str, pointer: str, reference: bool = False) -> JsonPath | None:
    if key not in raw:
        return ROOT
    return compile_optional_path(raw[key], f"{pointer}/{key}", reference=reference)


def req_path(value: Any, pointer: str, reference: bool = False) -> JsonPath:
    if value is None:
        raise DefinitionError(pointer, "must be a JSONPath string")
    path = compile_optional_path(value, pointer, reference=reference and not str(value).startswith("$$"))
    assert path is not None
    return path


def payload(raw: dict, pointer: str, common: dict) -> Any:
    """Parameters (a JSONPath payload template) or Arguments (a JSONata template)."""
    if common["query_language"] == JSONATA:
        if "Arguments" not in raw:
            return None
        return query.compile_template(raw["Arguments"], f"{pointer}/Arguments")
    return opt_template(raw, "Parameters", pointer)


def opt_template(raw: dict, key: str, pointer: str) -> Template | None:
    if key not in raw:
        return None
    return compile_template(raw[key], f"{pointer}/{key}")


def positive_int(value: Any, pointer: str) -> int:
    if not is_int(value) or value < 1:
        raise DefinitionError(pointer, f"must be a positive integer, got {value!r}")
    return int(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def exclusive_number(
    raw: dict, key: str, pointer: str, *, integer: bool, low: float, high: float | None
) -> tuple[Any, JsonPath | None]:
    path_key = key + "Path"
    if key in raw and path_key in raw:
        raise DefinitionError(pointer, f"a state cannot have both {key} and {path_key}")
    if path_key in raw:
        return None, req_path(raw[path_key], f"{pointer}/{path_key}", reference=True)
    if key not in raw:
        return None, None
    value = raw[key]
    if query.is_expression(value):
        return None, query.compile_expression(value, f"{pointer}/{key}")
    ok = is_int(value) if integer else is_number(value)
    if not ok or value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f">= {low}"
        raise DefinitionError(f"{pointer}/{key}", f"must be {'an integer' if integer else 'a number'} {span}, got {value!r}")
    return value, None




def exclusive(raw: dict, key: str, pointer: str) -> tuple[float | None, Any]:
    path_key = key + "Path"
    if key in raw and path_key in raw:
        raise DefinitionError(pointer, f"a state cannot have both {key} and {path_key}")
    if key in raw and query.is_expression(raw[key]):
        return None, query.compile_expression(raw[key], f"{pointer}/{key}")
    if key in raw:
        return positive_int(raw[key], f"{pointer}/{key}"), None
    if path_key in raw:
        return None, req_path(raw[path_key], f"{pointer}/{path_key}", reference=True)
    return None, None
