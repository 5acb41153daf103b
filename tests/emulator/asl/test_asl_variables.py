"""Workflow variables beyond the conformance corpus: AWS's size limits, scopes under threads, history.

Limits are from AWS's "Passing data between states with variables": 256 KiB for one variable and for
all the variables of one Assign, 10 MiB stored per execution.
"""

from __future__ import annotations

import pytest
from asl_testkit import Scripted, chain, registry, run

from emulator.asl.errors import DATA_LIMIT_EXCEEDED, RUNTIME, StatesError
from emulator.asl.variables import MAX_TOTAL_BYTES, MAX_VALUE_BYTES, Scope

LAMBDA = "arn:aws:states:::lambda:invoke"


def jsonata(*states):
    return {**chain(*states), "QueryLanguage": "JSONata"}


def pad(size: int) -> str:
    """A JSONata expression building a string of ``size`` bytes (no big literal in the test)."""
    return "{% $pad('', " + str(size) + ", 'x') %}"


def test_one_variable_over_256_kib_fails_with_data_limit():
    result = run(jsonata(("A", {"Type": "Pass", "Assign": {"big": pad(MAX_VALUE_BYTES)}})))
    assert (result.status, result.error) == ("FAILED", DATA_LIMIT_EXCEEDED)
    assert "'$big'" in result.cause and "one variable" in result.cause


def test_one_variable_just_under_the_limit_is_fine():
    result = run(jsonata(("A", {"Type": "Pass", "Assign": {"big": pad(MAX_VALUE_BYTES - 10)}}), ("B", {"Type": "Pass", "Output": "{% $length($big) %}"})))
    assert (result.status, result.output) == ("SUCCEEDED", MAX_VALUE_BYTES - 10)


def test_one_assign_over_256_kib_together_fails():
    half = MAX_VALUE_BYTES // 2 + 100
    result = run(jsonata(("A", {"Type": "Pass", "Assign": {"a": pad(half), "b": pad(half)}})))
    assert (result.status, result.error) == ("FAILED", DATA_LIMIT_EXCEEDED)
    assert "one Assign" in result.cause


def test_execution_total_over_10_mib_fails_naming_the_state():
    size = MAX_VALUE_BYTES - 100
    count = MAX_TOTAL_BYTES // size + 1
    states = [(f"S{i}", {"Type": "Pass", "Assign": {f"v{i}": pad(size)}}) for i in range(count)]
    result = run(jsonata(*states))
    assert (result.status, result.error) == ("FAILED", DATA_LIMIT_EXCEEDED)
    assert f"'S{count - 1}'" in result.cause and "one execution" in result.cause


def test_reassigning_does_not_count_twice_towards_the_total():
    size = MAX_VALUE_BYTES - 100
    count = MAX_TOTAL_BYTES // size + 5  # more assignments than fit, but always to the same name
    states = [(f"S{i}", {"Type": "Pass", "Assign": {"same": pad(size)}}) for i in range(count)]
    assert run(jsonata(*states)).status == "SUCCEEDED"


def test_scope_reads_outer_and_refuses_outer_writes():
    outer = Scope(values={"x": 1})
    inner = outer.child()
    inner.assign({"y": 2}, "I")
    assert inner.get("x", "f") == 1 and inner.visible() == {"x": 1, "y": 2}
    assert not outer.defined("y")
    with pytest.raises(StatesError) as err:
        inner.assign({"x": 3}, "I")
    assert err.value.name == RUNTIME and "outer scope" in err.value.cause
    with pytest.raises(StatesError) as err:
        outer.get("y", "Parameters")
    assert err.value.name == RUNTIME and "'$y'" in err.value.cause


def test_threaded_map_iterations_keep_their_own_variables():
    """Iterations that wait on a task run in threads; each one's variables stay its own."""
    slow = Scripted(("slow", 0.05, None))
    integrations = registry({"lambda:invoke": slow})
    definition = chain(
        (
            "M",
            {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "MaxConcurrency": 4,
                "ItemProcessor": {
                    "StartAt": "Mine",
                    "States": {
                        "Mine": {"Type": "Pass", "Assign": {"mine.$": "$"}, "Next": "Call"},
                        "Call": {"Type": "Task", "Resource": LAMBDA, "Parameters": {"v.$": "$"}, "ResultPath": None, "Next": "Read"},
                        "Read": {"Type": "Pass", "Parameters": {"mine.$": "$mine"}, "End": True},
                    },
                },
            },
        )
    )
    result = run(definition, {"xs": list(range(12))}, integrations=integrations)
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"mine": i} for i in range(12)]
    assert len(slow.requests) == 12


def test_jsonata_arguments_reach_the_integration_like_parameters():
    """The same Task in both languages sends the same payload and records the same TaskScheduled."""
    seen = Scripted(lambda request: {"ok": True})
    integrations = registry({"lambda:invoke": seen})
    jsonpath = chain(("T", {"Type": "Task", "Resource": LAMBDA, "Parameters": {"FunctionName": "f", "Payload": {"id.$": "$.id"}}}))
    as_jsonata = jsonata(("T", {"Type": "Task", "Resource": LAMBDA, "Arguments": {"FunctionName": "f", "Payload": {"id": "{% $states.input.id %}"}}}))
    first = run(jsonpath, {"id": 7}, integrations=integrations)
    second = run(as_jsonata, {"id": 7}, integrations=integrations)
    assert first.status == second.status == "SUCCEEDED"
    assert [r.parameters for r in seen.requests] == [{"FunctionName": "f", "Payload": {"id": 7}}] * 2
    scheduled = [next(e for e in r.history if e["type"] == "TaskScheduled")["taskScheduledEventDetails"] for r in (first, second)]
    assert scheduled[0] == scheduled[1]
    # Output defaults differ by language: JSONPath merges at ResultPath '$' (the result), JSONata is $states.result.
    assert first.output == second.output == {"ok": True}


def test_exited_event_lists_the_assigned_variables():
    """AWS's StateExited details carry assignedVariables (values as JSON text), output unchanged."""
    result = run(chain(("A", {"Type": "Pass", "Assign": {"n": 1, "s.$": "$.a"}}), ("B", {"Type": "Pass"})), {"a": "x"})
    exits = [e["stateExitedEventDetails"] for e in result.history if e["type"] == "PassStateExited"]
    assert exits[0]["output"] == '{"a":"x"}'
    assert exits[0]["assignedVariables"] == {"n": "1", "s": '"x"'}
    assert exits[0]["assignedVariablesDetails"] == {"truncated": False}
    assert "assignedVariables" not in exits[1]


def test_failed_jsonata_expression_records_evaluation_failed():
    """AWS records an EvaluationFailed event (state, field, error, cause) for a failing JSONata expression."""
    result = run(jsonata(("A", {"Type": "Pass", "Output": {"v": "{% $states.input.nope %}"}})), {"a": 1})
    failed = [e for e in result.history if e["type"] == "EvaluationFailed"]
    assert len(failed) == 1
    details = failed[0]["evaluationFailedEventDetails"]
    assert details["state"] == "A" and details["location"] == "Output/v" and details["error"] == "States.QueryEvaluationError"
    assert [e["type"] for e in result.history][-2:] == ["EvaluationFailed", "ExecutionFailed"]
