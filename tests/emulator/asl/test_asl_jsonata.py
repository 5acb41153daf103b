"""The JSONata wrapper (emulator/asl/query.py): plain JSON out, named errors, Step Functions' functions."""

from __future__ import annotations

import random

import pytest
from asl_testkit import Scripted, chain, registry, run

from emulator.asl.errors import QUERY_EVALUATION_ERROR, DefinitionError, StatesError
from emulator.asl.parse import parse_definition
from emulator.asl.query import compile_expression, compile_template, functions
from emulator.asl.teststate import run_test_state


def evaluate(text: str, **bindings):
    return compile_expression("{% " + text + " %}", "/x").evaluate({**functions(random.Random(3)), **bindings}, "Output")


def exact_types(value):
    """Every container is a plain list/dict and every leaf a plain JSON type (no engine objects)."""
    if isinstance(value, dict):
        return type(value) is dict and all(exact_types(v) for v in value.values())
    if isinstance(value, list):
        return type(value) is list and all(exact_types(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.mark.parametrize(
    "text",
    ["[1, 2, 3]", "$states.input.xs.name", "{'a': [null, {'b': [1..3]}]}", "$map([1,2], function($v){ {'v': $v} })", "$partition([1,2,3], 2)"],
)
def test_results_are_plain_json(text):
    value = evaluate(text, states={"input": {"xs": [{"name": "a"}, {"name": "b"}]}})
    assert exact_types(value), (text, value)


def test_null_and_undefined_are_told_apart():
    assert evaluate("$states.input.a", states={"input": {"a": None}}) is None
    with pytest.raises(StatesError) as err:
        evaluate("$states.input.b", states={"input": {"a": None}})
    assert err.value.name == QUERY_EVALUATION_ERROR and "returned nothing (undefined)" in err.value.cause


def test_a_function_as_result_is_unsupported():
    with pytest.raises(StatesError) as err:
        evaluate("function($x){ $x }")
    assert err.value.name == QUERY_EVALUATION_ERROR and "unsupported result type" in err.value.cause


def test_engine_errors_name_the_field_and_the_expression():
    with pytest.raises(StatesError) as err:
        compile_template({"a": {"b": "{% 'x' - 1 %}"}}, "/States/S/Output").render({}, "Output")
    assert err.value.name == QUERY_EVALUATION_ERROR
    assert "'Output/a/b'" in err.value.cause and "'x' - 1" in err.value.cause


def test_templates_without_expressions_are_returned_as_written():
    template = compile_template({"a": ["$.not.a.path", "{not an expression}"]}, "/p")
    assert not template.dynamic
    assert template.render({}, "Output") == {"a": ["$.not.a.path", "{not an expression}"]}


@pytest.mark.parametrize(
    ("text", "words"),
    [("{% %}", "empty"), ("{% $eval('1') %}", "$eval"), ("{% (1 + %}", "invalid JSONata"), ("{% [1, 2 %}", "invalid JSONata")],
)
def test_bad_expressions_are_definition_errors(text, words):
    with pytest.raises(DefinitionError) as err:
        compile_expression(text, "/States/A/Output")
    assert err.value.pointer == "/States/A/Output" and words in err.value.message


def test_eval_inside_a_string_literal_is_just_text():
    assert compile_expression("{% '$eval(x)' %}", "/p").evaluate({}, "Output") == "$eval(x)"


def test_random_and_uuid_follow_the_injected_rng():
    first, second = (evaluate("[$random(), $uuid()]") for _ in range(2))
    assert first == second  # the same seed gives the same values: runs are reproducible
    assert 0 <= first[0] < 1 and first[1][14] == "4"
    assert evaluate("$random(42)") == evaluate("$random(42)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$partition([1,2,3,4], 3)", [[1, 2, 3], [4]]),
        ("$range(5, 1, -2)", [5, 3, 1]),
        ("$hash('abc', 'MD5')", "900150983cd24fb0d6963f7d28e17f72"),
        ("$parse('[1, {\"a\": null}]')", [1, {"a": None}]),
        ("$parse('null') = null", True),
    ],
)
def test_step_functions_functions(text, expected):
    assert evaluate(text) == expected


@pytest.mark.parametrize("text", ["$partition([1], 0)", "$range(1, 5000, 1)", "$range(1, 2, 0)", "$parse('{')", "$hash(1, 'MD5')", "$partition()"])
def test_step_functions_function_misuse_is_a_query_evaluation_error(text):
    with pytest.raises(StatesError) as err:
        evaluate(text)
    assert err.value.name == QUERY_EVALUATION_ERROR


def test_top_level_jsonata_machine_runs_nested_states_as_jsonata():
    machine = parse_definition(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "P",
            "States": {"P": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": "{% 1 %}", "End": True}}}]}},
        }
    )
    assert machine.states["P"].branches[0].states["B"].jsonata


def test_jsonata_task_timeout_expression_is_recorded_in_the_history():
    integrations = registry({"lambda:invoke": Scripted({"ok": 1})})
    definition = {**chain(("T", {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "TimeoutSeconds": "{% $states.input.t * 2 %}"})), "QueryLanguage": "JSONata"}
    result = run(definition, {"t": 30}, integrations=integrations)
    scheduled = next(e for e in result.history if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]
    assert result.status == "SUCCEEDED" and scheduled["timeoutInSeconds"] == 60


def test_test_state_calls_local_integrations_without_a_mock():
    """TestState of a Task without a mock calls the integrations it is given, as AWS calls the service."""
    fake = Scripted({"Payload": {"n": 2}})
    response = run_test_state(
        {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f", "Payload.$": "$"}, "End": True},
        input='{"a": 1}',
        integrations=registry({"lambda:invoke": fake}),
        inspection_level="DEBUG",
    )
    assert response["status"] == "SUCCEEDED" and response["output"] == '{"Payload":{"n":2}}'
    assert [r.parameters for r in fake.requests] == [{"FunctionName": "f", "Payload": {"a": 1}}]
    assert response["inspectionData"]["afterParameters"] == '{"FunctionName":"f","Payload":{"a":1}}'
