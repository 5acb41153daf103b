"""Choice rules: every comparison, the *Path variants, type tests, StringMatches, And/Or/Not."""

import random

import pytest
from asl_testkit import run

from emulator.asl.choice import compile_rule
from emulator.asl.errors import DefinitionError, StatesError
from emulator.asl.paths import Env

DATA = {
    "s": "apple",
    "n": 5,
    "f": 2.5,
    "b": True,
    "t": "2024-01-02T03:04:05Z",
    "t_later": "2024-01-02T04:04:05+01:00",  # the same instant as t, written with an offset
    "z": None,
    "other_s": "apple",
    "other_n": 7,
    "star": "a*b",
    "slash": "a\\b",
}


def check(rule: dict, data=DATA) -> bool:
    return compile_rule(rule, "/rule").evaluate(Env(data, {}, random.Random(0)))


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "apple"}, True),
        ({"Variable": "$.s", "StringLessThan": "banana"}, True),
        ({"Variable": "$.s", "StringGreaterThan": "banana"}, False),
        ({"Variable": "$.s", "StringLessThanEquals": "apple"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "apple"}, True),
        ({"Variable": "$.n", "NumericEquals": 5}, True),
        ({"Variable": "$.n", "NumericEquals": 5.0}, True),
        ({"Variable": "$.f", "NumericLessThan": 3}, True),
        ({"Variable": "$.f", "NumericGreaterThan": 3}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 5}, True),
        ({"Variable": "$.n", "NumericGreaterThanEquals": 6}, False),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.t", "TimestampEquals": "2024-01-02T03:04:05Z"}, True),
        ({"Variable": "$.t_later", "TimestampEquals": "2024-01-02T03:04:05Z"}, True),
        ({"Variable": "$.t", "TimestampLessThan": "2024-01-02T03:04:06Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThan": "2024-01-02T03:04:06Z"}, False),
        ({"Variable": "$.t", "TimestampLessThanEquals": "2024-01-02T03:04:05Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThanEquals": "2023-12-31T23:59:59.5Z"}, True),
        # *Path variants compare against another part of the input
        ({"Variable": "$.s", "StringEqualsPath": "$.other_s"}, True),
        ({"Variable": "$.n", "NumericLessThanPath": "$.other_n"}, True),
        ({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.other_n"}, False),
        ({"Variable": "$.b", "BooleanEqualsPath": "$.b"}, True),
        ({"Variable": "$.t", "TimestampEqualsPath": "$.t_later"}, True),
        ({"Variable": "$.s", "StringLessThanEqualsPath": "$.other_s"}, True),
        # type mismatches are false, never errors
        ({"Variable": "$.s", "NumericEquals": 5}, False),
        ({"Variable": "$.b", "NumericEquals": 1}, False),
        ({"Variable": "$.n", "StringEquals": "5"}, False),
        ({"Variable": "$.s", "TimestampEquals": "2024-01-02T03:04:05Z"}, False),
        ({"Variable": "$.n", "BooleanEquals": True}, False),
    ],
)
def test_comparisons(rule, expected):
    assert check(rule) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "IsPresent": True}, True),
        ({"Variable": "$.missing", "IsPresent": True}, False),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.z", "IsNull": True}, True),
        ({"Variable": "$.s", "IsNull": False}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.n", "IsBoolean": False}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": True}, False),
    ],
)
def test_type_tests(rule, expected):
    assert check(rule) is expected


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("log-2024.txt", "log-*.txt", True),
        ("log-2024.csv", "log-*.txt", False),
        ("anything", "*", True),
        ("", "*", True),
        ("a*b", "a\\*b", True),  # escaped star is literal
        ("axb", "a\\*b", False),
        ("a\\b", "a\\\\b", True),  # escaped backslash
        ("a.b", "a.b", True),  # regex characters are not special
        ("aXb", "a.b", False),
        ("x(1)", "x(*)", True),
    ],
)
def test_string_matches(value, pattern, expected):
    assert check({"Variable": "$.v", "StringMatches": pattern}, {"v": value}) is expected


def test_and_or_not():
    rule = {
        "And": [
            {"Variable": "$.n", "NumericGreaterThan": 1},
            {"Or": [{"Variable": "$.s", "StringEquals": "pear"}, {"Not": {"Variable": "$.b", "BooleanEquals": False}}]},
        ]
    }
    assert check(rule) is True
    assert check({"Not": rule}) is False


def test_missing_variable_is_a_runtime_error():
    with pytest.raises(StatesError) as info:
        check({"Variable": "$.missing", "StringEquals": "x"})
    assert info.value.name == "States.Runtime"


@pytest.mark.parametrize(
    ("rule", "pointer"),
    [
        ({"Variable": "$.n", "NumericEquals": "5"}, "/rule/NumericEquals"),
        ({"Variable": "$.n", "TimestampEquals": "yesterday"}, "/rule/TimestampEquals"),
        ({"Variable": "$.n", "NumericEquals": 1, "StringEquals": "x"}, "/rule"),
        ({"Variable": "$.n"}, "/rule"),
        ({"Variable": "$.n", "NumericEqualz": 1}, "/rule/NumericEqualz"),
        ({"NumericEquals": 1}, "/rule"),
        ({"And": []}, "/rule/And"),
        ({"Variable": "$.n", "IsNull": "yes"}, "/rule/IsNull"),
        ({"Variable": "$.n", "NumericEqualsPath": "n"}, "/rule/NumericEqualsPath"),
        ({"Not": {"Variable": "$.n", "IsNull": True, "Next": "X"}}, "/rule/Not/Next"),
    ],
)
def test_rule_definition_errors(rule, pointer):
    with pytest.raises(DefinitionError) as info:
        compile_rule(rule, "/rule")
    assert info.value.pointer == pointer


CHOICE = {
    "StartAt": "C",
    "States": {
        "C": {
            "Type": "Choice",
            "InputPath": "$.in",
            "OutputPath": "$.keep",
            "Choices": [
                {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"},
                {"Variable": "$.n", "NumericGreaterThan": 5, "Next": "Medium"},
            ],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": "big", "End": True},
        "Medium": {"Type": "Pass", "Result": "medium", "End": True},
        "Small": {"Type": "Pass", "Result": "small", "End": True},
    },
}


@pytest.mark.parametrize(("n", "expected"), [(11, "big"), (7, "medium"), (1, "small")])
def test_choice_state_picks_first_matching_rule_or_default(n, expected):
    result = run(CHOICE, {"in": {"n": n, "keep": 1}})
    assert result.output == expected


def test_choice_passes_its_effective_input_on():
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "InputPath": "$.in", "OutputPath": "$.keep", "Choices": [{"Variable": "$.n", "IsPresent": True, "Next": "End"}]},
            "End": {"Type": "Succeed"},
        },
    }
    assert run(definition, {"in": {"n": 1, "keep": {"k": 2}}}).output == {"k": 2}


def test_no_match_and_no_default_fails_with_no_choice_matched():
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Done"}]},
            "Done": {"Type": "Succeed"},
        },
    }
    result = run(definition, {"n": 2})
    assert (result.status, result.error) == ("FAILED", "States.NoChoiceMatched")
    assert [e["type"] for e in result.history] == ["ExecutionStarted", "ChoiceStateEntered", "ExecutionFailed"]


def test_strings_order_by_utf16_code_units_like_aws():
    # U+1F600 is a surrogate pair (0xD83D...) in UTF-16, so it sorts before U+FF5E; by code point it is after
    assert check({"Variable": "$.v", "StringLessThan": "\uff5e"}, {"v": "\U0001f600"}) is True
    assert check({"Variable": "$.v", "StringGreaterThan": "a"}, {"v": "\u00e9"}) is True
