"""Intrinsic functions: parsing (incl. the escaping rules) and every States.* function."""

import hashlib
import json
import random
import uuid

import pytest
from asl_testkit import chain, run

from emulator.asl.errors import DefinitionError, StatesError
from emulator.asl.intrinsics import (
    Call,
    IntrinsicEnv,
    IntrinsicSyntaxError,
    Literal,
    PathArg,
    evaluate,
    parse_intrinsic,
)

DATA = {"s": "a,b,,c", "n": 3, "arr": [1, 2, 2, "2", True, 1.0, {"k": 1}, {"k": 1}], "obj": {"x": 1}, "obj2": {"y": 2, "x": 0}}


def ev(text: str, data=DATA, seed=1):
    return evaluate(parse_intrinsic(text), IntrinsicEnv(data, {"Execution": {"Name": "e"}}, random.Random(seed)))


def test_parse_tree():
    call = parse_intrinsic("States.Format('x {}', States.ArrayLength($.arr), 5, -1.5, true, null)")
    assert call.name == "States.Format"
    assert isinstance(call.args[0], Literal) and call.args[0].value == "x {}"
    assert isinstance(call.args[1], Call) and isinstance(call.args[1].args[0], PathArg)
    assert [a.value for a in call.args[2:]] == [5, -1.5, True, None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"States.Format('it\'s {}', $.n)", "it's 3"),
        (r"States.Format('\{\} literal, {} placeholder', $.n)", "{} literal, 3 placeholder"),
        (r"States.Format('back\\slash {}', 'v')", "back\\slash v"),
        ("States.Format('{} and {}', 'a', $.obj)", 'a and {"x":1}'),
        ("States.Format('{}{}', true, null)", "truenull"),
        ("States.Format('name={}', $$.Execution.Name)", "name=e"),
        ("States.Format('plain')", "plain"),
    ],
)
def test_format_and_escapes(text, expected):
    assert ev(text) == expected


def test_format_placeholder_count_must_match():
    with pytest.raises(StatesError) as info:
        ev("States.Format('{} {}', 1)")
    assert info.value.name == "States.IntrinsicFailure"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("States.StringToJson('{\"a\": [1, 2]}')", {"a": [1, 2]}),
        ("States.JsonToString($.obj)", '{"x":1}'),
        ("States.Array(1, 'two', $.obj)", [1, "two", {"x": 1}]),
        ("States.Array()", []),
        ("States.ArrayPartition(States.ArrayRange(1, 5, 1), 2)", [[1, 2], [3, 4], [5]]),
        ("States.ArrayContains($.arr, '2')", True),
        ("States.ArrayContains($.arr, 99)", False),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayGetItem($.arr, 1)", 2),
        ("States.ArrayLength($.arr)", 8),
        ("States.ArrayUnique($.arr)", [1, 2, "2", True, 1.0, {"k": 1}]),
        ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        ("States.Hash('input data', 'SHA-256')", hashlib.sha256(b"input data").hexdigest()),
        ("States.Hash('input data', 'MD5')", hashlib.md5(b"input data").hexdigest()),
        ("States.JsonMerge($.obj, $.obj2, false)", {"x": 0, "y": 2}),
        ("States.MathAdd(111, -1)", 110),
        ("States.MathAdd($.n, 2)", 5),
        ("States.StringSplit($.s, ',')", ["a", "b", "c"]),
        ("States.StringSplit('This.is+a,test=string', '.+,=')", ["This", "is", "a", "test", "string"]),
        ("States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit('a/b.c/d', '/'), 1), '.'), 0)", "b"),
    ],
)
def test_functions(text, expected):
    assert ev(text) == expected


def test_math_random_is_in_range_and_seedable():
    values = {ev("States.MathRandom(1, 10)", seed=s) for s in range(50)}
    assert values <= set(range(1, 10)) and len(values) > 3
    assert ev("States.MathRandom(1, 1000, 42)") == ev("States.MathRandom(1, 1000, 42)", seed=99)


def test_uuid_is_a_v4_uuid_from_the_injected_rng():
    first, again = ev("States.UUID()", seed=5), ev("States.UUID()", seed=5)
    assert first == again
    assert uuid.UUID(first).version == 4


@pytest.mark.parametrize(
    "text",
    [
        "States.ArrayGetItem($.arr, 100)",
        "States.ArrayPartition($.arr, 0)",
        "States.ArrayRange(1, 5000, 1)",
        "States.StringToJson('{not json')",
        "States.JsonMerge($.obj, $.obj2, true)",
        "States.Hash('x', 'SHA-3')",
        "States.Base64Decode('***')",
        "States.MathAdd('a', 1)",
        "States.ArrayLength($.obj)",
        "States.MathRandom(5, 1)",
    ],
)
def test_bad_arguments_fail_with_intrinsic_failure(text):
    with pytest.raises(StatesError) as info:
        ev(text)
    assert info.value.name == "States.IntrinsicFailure"


def test_missing_path_argument_is_states_runtime():
    with pytest.raises(StatesError) as info:
        ev("States.Array($.missing)")
    assert info.value.name == "States.Runtime"


@pytest.mark.parametrize(
    "text",
    [
        "States.Nope(1)",
        "States.Format('unterminated)",
        "States.ArrayLength($.a, $.b)",
        "States.UUID(1)",
        "States.Array(1,)",
        "States.Array(1) trailing",
        "States.Array(bogus)",
    ],
)
def test_syntax_errors(text):
    with pytest.raises(IntrinsicSyntaxError):
        parse_intrinsic(text)


def test_nesting_limit():
    nested = "States.Array(" * 11 + ")" * 11
    with pytest.raises(IntrinsicSyntaxError, match="nested"):
        parse_intrinsic(nested)
    parse_intrinsic("States.Array(" * 10 + ")" * 10)


def test_intrinsics_in_a_state_machine_with_json_escaping():
    # In the JSON document the escape backslash itself is escaped: "\\{" reaches the parser as \{
    definition = json.loads(
        r"""{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Parameters": {
            "msg.$": "States.Format('Hello \\{{}\\} it\\'s {}', $.who, States.MathAdd($.n, 1))",
            "parts.$": "States.StringSplit($.csv, ',')"}}}}"""
    )
    result = run(definition, {"who": "Ada", "n": 1, "csv": "x,y"})
    assert result.output == {"msg": "Hello {Ada} it's 2", "parts": ["x", "y"]}


def test_intrinsic_failure_can_be_caught_by_a_task_free_state_machine_failure():
    result = run(chain(("P", {"Type": "Pass", "Parameters": {"v.$": "States.ArrayGetItem($.a, 5)"}})), {"a": []})
    assert (result.status, result.error) == ("FAILED", "States.IntrinsicFailure")


def test_invalid_intrinsic_is_a_definition_error_with_pointer():
    with pytest.raises(DefinitionError) as info:
        run(chain(("P", {"Type": "Pass", "Parameters": {"inner": {"v.$": "States.Unknown()"}}})))
    assert info.value.pointer == "/States/P/Parameters/inner/v.$"
