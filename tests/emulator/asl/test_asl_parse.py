"""Definition checks: what AWS's validation rejects is a DefinitionError with a JSON pointer."""

import json

import pytest

from emulator.asl import parse_definition
from emulator.asl.errors import DefinitionError
from emulator.asl.interpret import HANDLERS
from emulator.asl.parse import (
    STATE_CLASSES,
    Choice,
    Fail,
    Map,
    Parallel,
    Pass,
    Succeed,
    Task,
    Wait,
)

TASK = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}


def machine(**states) -> dict:
    return {"StartAt": next(iter(states)), "States": states}


def error_of(definition) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        parse_definition(definition)
    return info.value


def test_parses_every_state_type_into_its_class():
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Next": "T"},
            "T": {**TASK, "End": False, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "W"}], "Default": "F"},
            "W": {"Type": "Wait", "Seconds": 1, "Next": "Par"},
            "Par": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}], "Next": "M"},
            "M": {"Type": "Map", "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}, "Next": "S"},
            "S": {"Type": "Succeed"},
            "F": {"Type": "Fail", "Error": "E"},
        },
    }
    parsed = parse_definition(json.dumps(definition))
    kinds = {name: type(state) for name, state in parsed.states.items()}
    assert kinds == {"P": Pass, "T": Task, "C": Choice, "W": Wait, "Par": Parallel, "M": Map, "S": Succeed, "F": Fail}
    assert parsed.states["T"].pointer == "/States/T"
    assert parsed.states["M"].processor.states["I"].pointer == "/States/M/Iterator/States/I"
    assert parsed.has_task and parsed.has_wait


def test_every_state_class_has_a_handler():
    assert set(HANDLERS) == set(STATE_CLASSES)


@pytest.mark.parametrize(
    ("definition", "pointer", "words"),
    [
        ({"States": {"A": {"Type": "Succeed"}}}, "/", "StartAt"),
        ({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}, "/StartAt", "not in States"),
        (machine(A={"Type": "Pass", "Next": "Nowhere"}), "/States/A/Next", "'Nowhere'"),
        (machine(A={"Type": "Pass"}), "/States/A", "Next"),
        (machine(A={"Type": "Pass", "Next": "B", "End": True}, B={"Type": "Succeed"}), "/States/A", "both"),
        (machine(A={"Type": "Pass", "End": True}, B={"Type": "Succeed"}), "/States/B", "unreachable"),
        (machine(A={"Type": "Pass", "End": True, "Retry": [{"ErrorEquals": ["States.ALL"]}]}), "/States/A/Retry", "cannot have Retry"),
        (machine(A={"Type": "Fail", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "A"}]}), "/States/A/Catch", "cannot have Catch"),
        (machine(A={"Type": "Succeed", "Retry": []}), "/States/A/Retry", "cannot have Retry"),
        (machine(A={"Type": "Wait", "Seconds": 1, "End": True, "Catch": []}), "/States/A/Catch", "cannot have Catch"),
        (machine(A={**TASK, "Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}), "/States/A/Retry/0/ErrorEquals", "alone"),
        (
            machine(A={**TASK, "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}),
            "/States/A/Retry/0/ErrorEquals",
            "last",
        ),
        (
            machine(A={**TASK, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}, {"ErrorEquals": ["X"], "Next": "B"}]}, B={"Type": "Succeed"}),
            "/States/A/Catch/0/ErrorEquals",
            "last",
        ),
        (machine(A={**TASK, "Catch": [{"ErrorEquals": ["X"], "Next": "Gone"}]}), "/States/A/Catch/0/Next", "'Gone'"),
        (machine(A={**TASK, "Retry": [{"ErrorEquals": []}]}), "/States/A/Retry/0/ErrorEquals", "non-empty"),
        (machine(A={**TASK, "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}), "/States/A/Retry/0/BackoffRate", ">= 1.0"),
        (machine(A={**TASK, "Retry": [{"ErrorEquals": ["X"], "MaxAttempts": -1}]}), "/States/A/Retry/0/MaxAttempts", "non-negative"),
        (machine(A={**TASK, "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}]}), "/States/A/Retry/0/JitterStrategy", "FULL"),
        (machine(A={**TASK, "TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t"}), "/States/A", "both"),
        (machine(A={**TASK, "TimeoutSeconds": 5, "HeartbeatSeconds": 5}), "/States/A/HeartbeatSeconds", "smaller"),
        (machine(A={**TASK, "TimeoutSeconds": 0}), "/States/A/TimeoutSeconds", "positive"),
        (machine(A={"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}), "/States/A", "exactly one"),
        (machine(A={"Type": "Wait", "End": True}), "/States/A", "exactly one"),
        (machine(A={"Type": "Wait", "Timestamp": "tomorrow", "End": True}), "/States/A/Timestamp", "RFC 3339"),
        (machine(A={"Type": "Pass", "ResultPath": "$.a[*]", "End": True}), "/States/A/ResultPath", "reference path"),
        (machine(A={"Type": "Pass", "InputPath": "$.a[", "End": True}), "/States/A/InputPath", "not a valid JSONPath"),
        (machine(A={"Type": "Pass", "Resource": "x", "End": True}), "/States/A/Resource", "not a field of a Pass state"),
        (machine(A={"Type": "Task", "Resource": "my-function", "End": True}), "/States/A/Resource", "ARN"),
        (machine(A={"Type": "Pass", "End": True, "Bogus": 1}), "/States/A/Bogus", "not a field"),
        (machine(A={"Type": "Dance", "End": True}), "/States/A/Type", "unknown state Type"),
        (machine(A={"Type": "Choice", "Choices": []}), "/States/A/Choices", "non-empty"),
        (machine(A={"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "A"}], "End": True}), "/States/A/End", "cannot have End"),
        (machine(A={"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}), "/States/A/ErrorPath", "both Error and ErrorPath"),
        (machine(A={"Type": "Succeed", "Next": "A"}), "/States/A/Next", "cannot have Next"),
        (machine(A={"Type": "Parallel", "Branches": [], "End": True}), "/States/A/Branches", "non-empty"),
        (
            machine(A={"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Outer"}}}], "Next": "Outer"}, Outer={"Type": "Succeed"}),
            "/States/A/Branches/0/States/X/Next",
            "not a state in this branch",
        ),
        (machine(A={"Type": "Map", "End": True}), "/States/A", "ItemProcessor"),
        (
            machine(A={"Type": "Map", "End": True, "ItemSelector": {}, "Parameters": {}, "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}),
            "/States/A",
            "both ItemSelector",
        ),
        (
            machine(A={"Type": "Map", "End": True, "MaxConcurrency": -1, "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}),
            "/States/A/MaxConcurrency",
            ">= 0",
        ),
        (
            machine(A={"Type": "Map", "End": True, "ToleratedFailurePercentage": 101, "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}),
            "/States/A/ToleratedFailurePercentage",
            "between 0 and 100",
        ),
        ({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "Extra": 1}, "/Extra", "not a field"),
        ({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "TimeoutSeconds": 0}, "/TimeoutSeconds", "positive"),
        ({"StartAt": "A", "States": {"A" * 81: {"Type": "Succeed"}}}, "/States/" + "A" * 81, "80"),
    ],
)
def test_definition_errors(definition, pointer, words):
    err = error_of(definition)
    assert err.pointer == pointer, err
    assert words in err.message, err


@pytest.mark.parametrize(
    ("definition", "pointer", "words"),
    [
        (
            machine(A={"Type": "Map", "End": True, "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "PARQUET"}, "Parameters": {"Bucket": "b", "Key": "k"}},
                       "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}),
            "/States/A/ItemReader/ReaderConfig/InputType",
            "PARQUET is not read by the emulator",
        ),
        (
            machine(A={"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {"RoleArn": "arn:aws:iam::1:role/x"}, "End": True}),
            "/States/A/Credentials",
            "state 'A' uses Credentials",
        ),
    ],
)
def test_unsupported_features_are_rejected_naming_the_state(definition, pointer, words):
    err = error_of(definition)
    assert err.pointer == pointer
    assert words in err.message
    # AWS accepts these definitions: ValidateStateMachineDefinition reports them as a warning.
    assert err.code == "EMULATOR_UNSUPPORTED_FEATURE"


@pytest.mark.parametrize("field", [
    {"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Bucket": "b", "Key": "k"}}},
    {"ItemBatcher": {"MaxItemsPerBatch": 2}},
    {"ResultWriter": {"WriterConfig": {"OutputType": "JSON"}}},
    {"Label": "L"},
])
def test_distributed_fields_need_a_distributed_map(field):
    err = error_of(machine(A={"Type": "Map", "End": True, **field, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}))
    assert err.pointer == f"/States/A/{next(iter(field))}"
    assert "only valid in a Distributed Map" in err.message


def test_distributed_map_is_parsed():
    parsed = parse_definition(machine(A={
        "Type": "Map", "End": True, "Label": "Rows", "MaxConcurrency": 3, "ToleratedFailureCount": 1,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k.csv"},
                       "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"], "MaxItems": 5}},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"run.$": "$.run"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b", "Prefix": "out"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}},
    }))
    dist = parsed.states["A"].distributed
    assert dist.execution_type == "EXPRESS" and dist.label == "Rows"
    assert dist.item_reader.csv_headers == ("a", "b") and dist.item_reader.max_items == 5
    assert dist.item_batcher.max_items_per_batch == 2
    assert dist.result_writer.resource.endswith("s3:putObject")


def test_inline_processor_config_is_accepted():
    parsed = parse_definition(
        machine(A={"Type": "Map", "End": True, "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}})
    )
    assert isinstance(parsed.states["A"], Map)


def test_invalid_json_text():
    assert "not valid JSON" in error_of("{nope").message


def test_retry_defaults_and_zero_attempts():
    parsed = parse_definition(machine(A={**TASK, "Retry": [{"ErrorEquals": ["X"]}, {"ErrorEquals": ["Y"], "MaxAttempts": 0}]}))
    first, second = parsed.states["A"].retry
    assert (first.interval_seconds, first.max_attempts, first.backoff_rate, first.jitter_strategy) == (1.0, 3, 2.0, "NONE")
    assert second.max_attempts == 0


def test_state_names_are_unique_across_branches():
    definition = machine(
        A={"Type": "Parallel", "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}], "End": True}
    )
    err = error_of(definition)
    assert err.pointer == "/States/A/Branches/0/States/A"
    assert "unique" in err.message
