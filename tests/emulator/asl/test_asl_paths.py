"""InputPath, Parameters, ResultSelector, ResultPath, OutputPath and the JSONPath layer."""

import pytest
from asl_testkit import chain, run

from emulator.asl.errors import DefinitionError
from emulator.asl.jsonpath import (
    PathError,
    PathSyntaxError,
    compile_path,
    compile_reference_path,
    set_path,
)

INPUT = {"a": {"b": [10, 20, {"c": "deep"}]}, "name": "x", "items": [{"p": 1}, {"p": 5}, {"p": 9}]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$", INPUT),
        ("$.name", "x"),
        ("$.a.b[1]", 20),
        ("$.a.b[2].c", "deep"),
        ("$['name']", "x"),
        ("$.a.b[-1]", {"c": "deep"}),
    ],
)
def test_definite_paths_return_one_value(text, expected):
    path = compile_path(text)
    assert path.definite
    assert path.find(INPUT) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$.items[*].p", [1, 5, 9]),
        ("$.items[?(@.p > 2)].p", [5, 9]),
        ("$..c", ["deep"]),
        ("$.items[0:2]", [{"p": 1}, {"p": 5}]),
    ],
)
def test_indefinite_paths_return_lists(text, expected):
    path = compile_path(text)
    assert not path.definite
    assert path.find(INPUT) == expected


def test_missing_field_raises_path_error():
    with pytest.raises(PathError, match=r"\$\.nope"):
        compile_path("$.nope").find(INPUT)
    with pytest.raises(PathError):
        compile_path("$.a.b[7]").find(INPUT)


@pytest.mark.parametrize("bad", ["name", "$.a[", "$..", ""])
def test_invalid_paths_are_rejected(bad):
    with pytest.raises(PathSyntaxError):
        compile_path(bad)


@pytest.mark.parametrize("bad", ["$.items[*]", "$..c", "$$.Execution.Id", "$.items[?(@.p > 1)]"])
def test_reference_paths_must_be_definite(bad):
    with pytest.raises(PathSyntaxError, match="reference path"):
        compile_reference_path(bad)


def test_set_path_copies_and_creates_intermediate_objects():
    original = {"a": {"keep": 1}}
    updated = set_path(original, compile_reference_path("$.a.b.c"), 5)
    assert updated == {"a": {"keep": 1, "b": {"c": 5}}}
    assert original == {"a": {"keep": 1}}  # never mutated in place


def test_pass_data_flow_through_every_field():
    definition = chain(
        (
            "P",
            {
                "Type": "Pass",
                "InputPath": "$.a",
                "Parameters": {"first.$": "$.b[0]", "static": {"nested": [1, {"k.$": "$.b[1]"}]}, "exec.$": "$$.Execution.Name"},
                "ResultPath": "$.a.result",
                "OutputPath": "$.a",
            },
        )
    )
    result = run(definition, INPUT, execution_name="exec-1")
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "b": [10, 20, {"c": "deep"}],
        "result": {"first": 10, "static": {"nested": [1, {"k": 20}]}, "exec": "exec-1"},
    }


def test_result_path_null_keeps_input_and_output_path_null_gives_empty_object():
    keep = run(chain(("P", {"Type": "Pass", "Result": {"x": 1}, "ResultPath": None})), {"in": 1})
    assert keep.output == {"in": 1}
    empty = run(chain(("P", {"Type": "Pass", "OutputPath": None})), {"in": 1})
    assert empty.output == {}
    nothing = run(chain(("P", {"Type": "Pass", "InputPath": None})), {"in": 1})
    assert nothing.output == {}


def test_result_path_into_a_non_object_fails_with_reference_path_conflict():
    result = run(chain(("P", {"Type": "Pass", "Result": 1, "ResultPath": "$.x.y"})), {"x": "a string"})
    assert result.status == "FAILED"
    assert result.error == "States.ReferencePathConflict"
    assert result.cause == 'Unable to apply step "y" to input "a string"'


def test_parameter_path_that_matches_nothing_fails_with_states_runtime():
    result = run(chain(("P", {"Type": "Pass", "Parameters": {"v.$": "$.missing"}})), {"x": 1})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "$.missing" in result.cause and "'v.$'" in result.cause


def test_input_path_that_matches_nothing_fails_with_states_runtime():
    result = run(chain(("P", {"Type": "Pass", "InputPath": "$.missing"})), {"x": 1})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_context_object_fields():
    definition = chain(
        (
            "Ctx",
            {
                "Type": "Pass",
                "Parameters": {
                    "id.$": "$$.Execution.Id",
                    "name.$": "$$.Execution.Name",
                    "input.$": "$$.Execution.Input",
                    "start.$": "$$.Execution.StartTime",
                    "role.$": "$$.Execution.RoleArn",
                    "state.$": "$$.State.Name",
                    "entered.$": "$$.State.EnteredTime",
                    "retries.$": "$$.State.RetryCount",
                    "sm.$": "$$.StateMachine.Id",
                    "smName.$": "$$.StateMachine.Name",
                },
            },
        )
    )
    result = run(definition, {"k": 1}, execution_name="e1", state_machine_name="Pipeline", role_arn="arn:aws:iam::1:role/r")
    assert result.output == {
        "id": "arn:aws:states:us-east-1:000000000000:execution:Pipeline:e1",
        "name": "e1",
        "input": {"k": 1},
        "start": "2024-01-02T03:04:05.678Z",
        "role": "arn:aws:iam::1:role/r",
        "state": "Ctx",
        "entered": "2024-01-02T03:04:05.678Z",
        "retries": 0,
        "sm": "arn:aws:states:us-east-1:000000000000:stateMachine:Pipeline",
        "smName": "Pipeline",
    }
    assert result.execution_arn == "arn:aws:states:us-east-1:000000000000:execution:Pipeline:e1"


def test_dynamic_value_must_be_a_path_or_intrinsic():
    with pytest.raises(DefinitionError) as info:
        run(chain(("P", {"Type": "Pass", "Parameters": {"v.$": "plain"}})))
    assert info.value.pointer == "/States/P/Parameters/v.$"


def test_invalid_jsonpath_in_parameters_is_a_definition_error():
    with pytest.raises(DefinitionError) as info:
        run(chain(("P", {"Type": "Pass", "Parameters": {"v.$": "$.a["}})))
    assert info.value.pointer == "/States/P/Parameters/v.$"


def test_names_jsonpath_ng_reserves_or_cannot_read_still_work_as_definite_paths():
    data = {"where": {"é": [0, {"1a": "found"}]}}
    path = compile_path("$.where.é[1].1a")
    assert path.steps == ("where", "é", 1, "1a")
    assert path.find(data) == "found"
    with pytest.raises(PathSyntaxError):
        compile_path("$.where[*] x")
