"""Choice rules: compiled at parse time into small frozen dataclasses that evaluate against the
effective input. Type mismatches make a comparison false (as AWS does); a Variable that is not in
the input is a States.Runtime error, except for IsPresent. In JSONata states a rule is a
``Condition`` expression instead; a top-level rule of either language may carry an ``Assign``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.asl.errors import DefinitionError
from emulator.asl.jsonpath import JsonPath, PathSyntaxError, compile_path
from emulator.asl.paths import Env, path_exists, read_path
from emulator.asl.query import Expression, compile_expression, is_expression

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (uppercase T, Z or a numeric offset), or None."""
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string_matches(value: str, pattern: str) -> bool:
    return _glob_regex(pattern).fullmatch(value) is not None


_GLOBS: dict[str, re.Pattern] = {}


def _glob_regex(pattern: str) -> re.Pattern:
    # Only '*' is special; '\' escapes the next character ('\*' is a literal star, '\\' a backslash).
    compiled = _GLOBS.get(pattern)
    if compiled is None:
        out, i = [], 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and i + 1 < len(pattern):
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            out.append(".*" if char == "*" else re.escape(char))
            i += 1
        compiled = _GLOBS[pattern] = re.compile("".join(out), re.DOTALL)
    return compiled


# operator -> (kind of the literal value, test(variable, value) -> bool)
def _cmp(kind: str, test: Callable[[Any, Any], bool]) -> tuple[str, Callable[[Any, Any], bool]]:
    return kind, test


def _str_test(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    # AWS orders strings by UTF-16 code units (Java's compareTo), not by code points: the
    # big-endian UTF-16 bytes compare the same way.
    def test(a: Any, b: Any) -> bool:
        if not isinstance(a, str) or not isinstance(b, str):
            return False
        if a.isascii() and b.isascii():
            return op(a, b)
        return op(a.encode("utf-16-be"), b.encode("utf-16-be"))

    return test


def _num_test(op: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: _is_number(a) and _is_number(b) and op(a, b)


def _ts_test(op: Callable[[datetime, datetime], bool]) -> Callable[[Any, Any], bool]:
    def test(a: Any, b: Any) -> bool:
        left, right = parse_timestamp(a), parse_timestamp(b)
        return left is not None and right is not None and op(left, right)

    return test


_EQ = (lambda a, b: a == b, lambda a, b: a < b, lambda a, b: a > b, lambda a, b: a <= b, lambda a, b: a >= b)
_SUFFIXES = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")

COMPARISONS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {}
for _suffix, _op in zip(_SUFFIXES, _EQ):
    COMPARISONS["String" + _suffix] = _cmp("string", _str_test(_op))
    COMPARISONS["Numeric" + _suffix] = _cmp("number", _num_test(_op))
    COMPARISONS["Timestamp" + _suffix] = _cmp("timestamp", _ts_test(_op))
COMPARISONS["BooleanEquals"] = _cmp(
    "boolean", lambda a, b: isinstance(a, bool) and isinstance(b, bool) and a == b
)
COMPARISONS["StringMatches"] = _cmp(
    "string", lambda a, b: isinstance(a, str) and isinstance(b, str) and _string_matches(a, b)
)
for _name in list(COMPARISONS):
    if _name != "StringMatches":
        COMPARISONS[_name + "Path"] = ("path", COMPARISONS[_name][1])

TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}
OPERATORS = frozenset(COMPARISONS) | frozenset(TYPE_TESTS) | {"IsPresent"}


class Rule:
    def evaluate(self, env: Env) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Comparison(Rule):
    variable: JsonPath
    operator: str
    value: Any  # a literal, or a JsonPath for the *Path operators

    def evaluate(self, env: Env) -> bool:
        left = read_path(self.variable, env, "Variable")
        right = self.value
        if isinstance(right, JsonPath):
            right = read_path(right, env, self.operator)
        return COMPARISONS[self.operator][1](left, right)


@dataclass(frozen=True)
class TypeTest(Rule):
    variable: JsonPath
    operator: str
    expected: bool

    def evaluate(self, env: Env) -> bool:
        if self.operator == "IsPresent":
            return path_exists(self.variable, env) == self.expected
        value = read_path(self.variable, env, "Variable")
        return TYPE_TESTS[self.operator](value) == self.expected


@dataclass(frozen=True)
class And(Rule):
    rules: tuple[Rule, ...]

    def evaluate(self, env: Env) -> bool:
        return all(rule.evaluate(env) for rule in self.rules)


@dataclass(frozen=True)
class Or(Rule):
    rules: tuple[Rule, ...]

    def evaluate(self, env: Env) -> bool:
        return any(rule.evaluate(env) for rule in self.rules)


@dataclass(frozen=True)
class Not(Rule):
    rule: Rule

    def evaluate(self, env: Env) -> bool:
        return not self.rule.evaluate(env)


@dataclass(frozen=True)
class TopLevelRule:
    """A top-level rule with the state to go to when it matches (and the variables it assigns then).

    JSONPath rules have ``rule``; JSONata rules have ``condition``. ``assign`` is a
    dataflow.Assign, set by parse.py.
    """

    rule: Rule | None
    next: str
    pointer: str
    condition: Expression | None = None
    assign: Any = None


def compile_choice(raw: Any, pointer: str, jsonata: bool = False) -> TopLevelRule:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "a choice rule must be a JSON object")
    if "Next" not in raw:
        raise DefinitionError(pointer, "a top-level choice rule needs 'Next'")
    if not isinstance(raw["Next"], str):
        raise DefinitionError(f"{pointer}/Next", "must be a state name string")
    if jsonata:
        return _compile_condition(raw, pointer)
    if "Condition" in raw:
        raise DefinitionError(
            f"{pointer}/Condition", "Condition is a JSONata field; set QueryLanguage JSONata on the state or use Variable and a comparison"
        )
    body = {k: v for k, v in raw.items() if k not in ("Next", "Assign")}
    return TopLevelRule(rule=compile_rule(body, pointer), next=raw["Next"], pointer=pointer)


def _compile_condition(raw: dict, pointer: str) -> TopLevelRule:
    for key in raw:
        if key not in ("Condition", "Next", "Assign", "Comment"):
            hint = " (a JSONPath field: write the test as a Condition expression)" if key in OPERATORS | {"Variable", "And", "Or", "Not"} else ""
            raise DefinitionError(
                f"{pointer}/{key}", f"{key!r} is not a field of a JSONata choice rule{hint}; allowed: Condition, Next, Assign, Comment"
            )
    condition = raw.get("Condition")
    if condition is None:
        raise DefinitionError(pointer, "a JSONata choice rule needs a Condition: '{% <boolean expression> %}'")
    if isinstance(condition, bool):  # a literal true/false is allowed as well
        condition = "{% " + ("true" if condition else "false") + " %}"
    if not is_expression(condition):
        raise DefinitionError(f"{pointer}/Condition", "must be a JSONata expression '{% ... %}' (or true/false)")
    return TopLevelRule(rule=None, next=raw["Next"], pointer=pointer, condition=compile_expression(condition, f"{pointer}/Condition"))


def compile_rule(raw: Any, pointer: str, nested: bool = False) -> Rule:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "a choice rule must be a JSON object")
    if nested and "Next" in raw:
        raise DefinitionError(f"{pointer}/Next", "only top-level choice rules may have 'Next'")
    if "Assign" in raw:
        raise DefinitionError(f"{pointer}/Assign", "only top-level choice rules (the ones with Next) may have Assign")
    known = OPERATORS | {"And", "Or", "Not", "Variable", "Comment"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DefinitionError(f"{pointer}/{unknown[0]}", f"unknown field in a choice rule; expected one of {sorted(OPERATORS | {'And', 'Or', 'Not'})}")
    ops = [k for k in raw if k in OPERATORS or k in ("And", "Or", "Not")]
    if len(ops) != 1:
        raise DefinitionError(pointer, f"a choice rule needs exactly one operator (And, Or, Not or a comparison), found {ops or 'none'}")
    op = ops[0]
    if op in ("And", "Or"):
        if "Variable" in raw:
            raise DefinitionError(f"{pointer}/Variable", f"{op} rules take no Variable")
        items = raw[op]
        if not isinstance(items, list) or not items:
            raise DefinitionError(f"{pointer}/{op}", "must be a non-empty array of choice rules")
        rules = tuple(compile_rule(item, f"{pointer}/{op}/{i}", nested=True) for i, item in enumerate(items))
        return And(rules) if op == "And" else Or(rules)
    if op == "Not":
        if "Variable" in raw:
            raise DefinitionError(f"{pointer}/Variable", "Not rules take no Variable")
        return Not(compile_rule(raw["Not"], f"{pointer}/Not", nested=True))
    if "Variable" not in raw:
        raise DefinitionError(pointer, f"the {op} rule needs a Variable")
    variable = _path(raw["Variable"], f"{pointer}/Variable")
    value = raw[op]
    where = f"{pointer}/{op}"
    if op == "IsPresent" or op in TYPE_TESTS:
        if not isinstance(value, bool):
            raise DefinitionError(where, "must be true or false")
        return TypeTest(variable, op, value)
    kind = COMPARISONS[op][0]
    if kind == "path":
        return Comparison(variable, op, _path(value, where))
    if kind == "string" and not isinstance(value, str):
        raise DefinitionError(where, "must be a string")
    if kind == "number" and not _is_number(value):
        raise DefinitionError(where, "must be a number")
    if kind == "boolean" and not isinstance(value, bool):
        raise DefinitionError(where, "must be true or false")
    if kind == "timestamp" and parse_timestamp(value) is None:
        raise DefinitionError(where, f"{value!r} is not an RFC 3339 timestamp like 2016-03-14T01:59:00Z")
    return Comparison(variable, op, value)


def _path(value: Any, pointer: str) -> JsonPath:
    if not isinstance(value, str):
        raise DefinitionError(pointer, "must be a JSONPath string")
    try:
        return compile_path(value)
    except PathSyntaxError as exc:
        raise DefinitionError(pointer, str(exc)) from None
