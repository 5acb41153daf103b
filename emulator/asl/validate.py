"""ValidateStateMachineDefinition: the emulator's definition checks, as AWS's diagnostics response.

``validate_definition`` returns the API's response shape, ``{"result": "OK" | "FAIL",
"diagnostics": [{"severity", "code", "message", "location"}], "truncated"}``, where ``location`` is
the JSON pointer of the offending field (``/States/FailState/ErrorPath``). parse.py stops at the
first error, so a FAIL carries one ERROR diagnostic. A feature AWS accepts but the emulator cannot
run (Distributed Map, Credentials, ...) is a WARNING: the definition is valid, it just will not run
locally. Request checks AWS makes itself (severity, type, maxResults) raise ValidationException.
"""

from __future__ import annotations

from typing import Any

from emulator.asl.errors import UNSUPPORTED_FEATURE, DefinitionError
from emulator.asl.model import Map, Parallel, StateMachine, Task
from emulator.asl.parse import parse_definition

SEVERITIES = ("ERROR", "WARNING")
TYPES = ("STANDARD", "EXPRESS")
MAX_RESULTS = 100
MAX_DEFINITION_BYTES = 1_048_576


class ValidationException(ValueError):
    """The request itself is invalid (AWS's ValidationException, HTTP 400)."""


def validate_definition(
    definition: str | dict, *, type: str = "STANDARD", severity: str = "ERROR", max_results: int = 0
) -> dict[str, Any]:
    """The ValidateStateMachineDefinition response for ``definition`` (JSON text or a dict)."""
    if severity not in SEVERITIES:
        raise ValidationException(f"severity must be one of {list(SEVERITIES)}, got {severity!r}")
    if type not in TYPES:
        raise ValidationException(f"type must be one of {list(TYPES)}, got {type!r}")
    if not isinstance(max_results, int) or isinstance(max_results, bool) or not 0 <= max_results <= MAX_RESULTS:
        raise ValidationException(f"maxResults must be an integer from 0 to {MAX_RESULTS}, got {max_results!r}")
    if isinstance(definition, str) and len(definition.encode()) > MAX_DEFINITION_BYTES:
        raise ValidationException(f"definition is longer than {MAX_DEFINITION_BYTES} bytes")
    diagnostics = _diagnostics(definition, type)
    if severity == "ERROR":
        diagnostics = [d for d in diagnostics if d["severity"] == "ERROR"]
    limit = max_results or MAX_RESULTS
    return {
        "result": "FAIL" if any(d["severity"] == "ERROR" for d in diagnostics) else "OK",
        "diagnostics": diagnostics[:limit],
        "truncated": len(diagnostics) > limit,
    }


def _diagnostics(definition: str | dict, machine_type: str) -> list[dict[str, str]]:
    try:
        machine = parse_definition(definition)
    except DefinitionError as err:
        if err.code == UNSUPPORTED_FEATURE:
            return [_diagnostic("WARNING", err.code, f"{err.message} (valid in AWS; the emulator cannot run it)", err.pointer)]
        return [_diagnostic("ERROR", err.code, err.message, err.pointer)]
    if machine_type == "EXPRESS":
        return _express_checks(machine)
    return []


def _diagnostic(severity: str, code: str, message: str, location: str) -> dict[str, str]:
    return {"severity": severity, "code": code, "message": message, "location": location or "/"}


def _express_checks(machine: StateMachine) -> list[dict[str, str]]:
    """Express workflows run for at most five minutes and cannot wait on a job or a callback:
    AWS rejects the .sync and .waitForTaskToken integration patterns in them."""
    found = []
    for state in _states(machine):
        if isinstance(state, Task) and (".sync" in state.resource or state.resource.endswith(".waitForTaskToken")):
            pattern = ".waitForTaskToken" if state.resource.endswith(".waitForTaskToken") else ".sync"
            found.append(
                _diagnostic(
                    "ERROR",
                    "SCHEMA_VALIDATION_FAILED",
                    f"Express state machines do not support the {pattern} integration pattern (state {state.name!r})",
                    f"{state.pointer}/Resource",
                )
            )
    return found


def _states(block: StateMachine):
    for state in block.states.values():
        yield state
        if isinstance(state, Parallel):
            for branch in state.branches:
                yield from _states(branch)
        elif isinstance(state, Map):
            yield from _states(state.processor)


def format_diagnostics(response: dict[str, Any]) -> str:
    """Lines for a terminal: the result, then one line per diagnostic."""
    lines = [f"result: {response['result']}"]
    for d in response["diagnostics"]:
        lines.append(f"{d['severity']} {d['code']} at {d.get('location', '/')}: {d['message']}")
    if response.get("truncated"):
        lines.append("(more diagnostics were left out: raise maxResults)")
    return "\n".join(lines)

