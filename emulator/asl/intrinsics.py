"""Intrinsic functions (``States.Format(...)`` and friends): a parser run at definition time and an
evaluator run per state.

String literals are single-quoted; inside them ``\\'``, ``\\{``, ``\\}`` and ``\\\\`` are escapes, and an
unescaped ``{}`` in the first argument of States.Format is a placeholder. Arguments are literals
(strings, numbers, true/false/null), JSONPaths (``$.x``, ``$$.Execution.Id``) or nested calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.asl.errors import INTRINSIC_FAILURE, RUNTIME, StatesError
from emulator.asl.jsonpath import JsonPath, PathError, PathSyntaxError, compile_path


class IntrinsicSyntaxError(ValueError):
    """The text is not a well-formed intrinsic function call."""


@dataclass(frozen=True)
class Literal:
    value: Any
    raw: str | None = None  # a string literal's text with escapes kept (States.Format needs it)


@dataclass(frozen=True)
class PathArg:
    path: JsonPath


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    text: str


# name -> (min args, max args or None)
_ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}

_NAME = re.compile(r"States\.[A-Za-z0-9]+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_ESCAPES = {"'": "'", "{": "{", "}": "}", "\\": "\\"}
MAX_NESTING = 10


def is_intrinsic(text: str) -> bool:
    return isinstance(text, str) and _NAME.match(text) is not None and "(" in text


def parse_intrinsic(text: str) -> Call:
    parser = _Parser(text)
    call = parser.call(depth=1)
    parser.skip_ws()
    if parser.pos != len(text):
        parser.fail("unexpected text after the closing ')'")
    return call


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> None:
        raise IntrinsicSyntaxError(f"{self.text!r} at character {self.pos + 1}: {message}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        self.skip_ws()
        if self.peek() != char:
            self.fail(f"expected {char!r}")
        self.pos += 1

    def call(self, depth: int) -> Call:
        if depth > MAX_NESTING:
            self.fail(f"intrinsic functions can be nested at most {MAX_NESTING} deep")
        start = self.pos
        match = _NAME.match(self.text, self.pos)
        if not match:
            self.fail("expected an intrinsic function name like States.Format")
        name = match.group(0)
        if name not in _ARITY:
            self.fail(f"unknown intrinsic function {name}; supported: {', '.join(sorted(_ARITY))}")
        self.pos = match.end()
        self.expect("(")
        args: list[Any] = []
        self.skip_ws()
        if self.peek() == ")":
            self.pos += 1
        else:
            while True:
                args.append(self.argument(depth))
                self.skip_ws()
                if self.peek() == ",":
                    self.pos += 1
                    continue
                if self.peek() == ")":
                    self.pos += 1
                    break
                self.fail("expected ',' or ')'")
        low, high = _ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            wanted = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
            self.fail(f"{name} takes {wanted} argument(s), got {len(args)}")
        return Call(name=name, args=tuple(args), text=self.text[start : self.pos])

    def argument(self, depth: int) -> Any:
        self.skip_ws()
        char = self.peek()
        if char == "'":
            return self.string()
        if char == "$":
            return self.path()
        if self.text.startswith("States.", self.pos):
            return self.call(depth + 1)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return Literal(value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            number = match.group(0)
            return Literal(float(number) if match.group(1) or match.group(2) else int(number))
        self.fail("expected a string literal, number, true/false/null, JSONPath or States.* call")
        raise AssertionError  # unreachable

    def string(self) -> Literal:
        self.pos += 1  # opening quote
        value: list[str] = []
        start = self.pos
        while True:
            if self.pos >= len(self.text):
                self.fail("unterminated string literal")
            char = self.text[self.pos]
            if char == "\\":
                nxt = self.text[self.pos + 1 : self.pos + 2]
                if nxt in _ESCAPES:
                    value.append(_ESCAPES[nxt])
                    self.pos += 2
                    continue
                value.append(char)  # a lone backslash stands for itself
                self.pos += 1
                continue
            if char == "'":
                raw = self.text[start : self.pos]
                self.pos += 1
                return Literal("".join(value), raw)
            value.append(char)
            self.pos += 1

    def path(self) -> PathArg:
        start = self.pos
        depth = 0
        quote = ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                if char == quote:
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        text = self.text[start : self.pos].strip()
        try:
            return PathArg(compile_path(text))
        except PathSyntaxError as exc:
            self.fail(str(exc))
            raise AssertionError from exc  # unreachable


# -- evaluation ---------------------------------------------------------------------------------


@dataclass
class IntrinsicEnv:
    data: Any
    context: dict
    rng: random.Random
    variables: Any = None  # a variables.Scope: $name arguments read workflow variables


def evaluate(call: Call, env: IntrinsicEnv) -> Any:
    args = [_arg(a, env) for a in call.args]
    if call.name == "States.Format":
        return _format(call, args)
    try:
        return _FUNCTIONS[call.name](args, env)
    except StatesError:
        raise
    except _Bad as exc:
        raise StatesError(INTRINSIC_FAILURE, f"{call.text}: {exc}") from None


def _arg(arg: Any, env: IntrinsicEnv) -> Any:
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, PathArg):
        if arg.path.variable is not None:
            if env.variables is None:
                raise StatesError(RUNTIME, f"The variable '${arg.path.variable}' is not defined: no earlier state assigned it")
            root = env.variables.get(arg.path.variable, "intrinsic function argument")
        else:
            root = env.context if arg.path.context else env.data
        try:
            return arg.path.find(root)
        except PathError as exc:
            raise StatesError(RUNTIME, str(exc)) from None
    return evaluate(arg, env)


class _Bad(Exception):
    pass


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or (
        isinstance(value, float) and value.is_integer()
    )


def _int(value: Any, what: str) -> int:
    if not _is_int(value):
        raise _Bad(f"{what} must be an integer, got {json.dumps(value)}")
    return int(value)


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise _Bad(f"{what} must be a JSON array, got {json.dumps(value)}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{what} must be a string, got {json.dumps(value)}")
    return value


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _format(call: Call, args: list[Any]) -> str:
    template_arg = call.args[0]
    if isinstance(template_arg, Literal) and template_arg.raw is not None:
        pieces = _split_template(template_arg.raw)
    elif isinstance(args[0], str):
        pieces = args[0].split("{}")
    else:
        raise StatesError(INTRINSIC_FAILURE, f"{call.text}: the template must be a string")
    values = args[1:]
    if len(pieces) - 1 != len(values):
        raise StatesError(
            INTRINSIC_FAILURE,
            f"{call.text}: the template has {len(pieces) - 1} placeholder(s) but {len(values)} value(s) were given",
        )
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:]):
        out.append(_render(value))
        out.append(piece)
    return "".join(out)


def _split_template(raw: str) -> list[str]:
    """Split a raw literal at unescaped ``{}``, resolving escapes in the pieces."""
    pieces: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and raw[i + 1 : i + 2] in _ESCAPES:
            current.append(raw[i + 1])
            i += 2
        elif raw.startswith("{}", i):
            pieces.append("".join(current))
            current = []
            i += 2
        else:
            current.append(char)
            i += 1
    pieces.append("".join(current))
    return pieces


def _json_key(value: Any) -> str:
    # bool and number must stay distinct (True == 1 in Python)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _array_partition(args: list, env: IntrinsicEnv) -> list:
    items, size = _list(args[0], "the array"), _int(args[1], "the chunk size")
    if size <= 0:
        raise _Bad("the chunk size must be greater than 0")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_range(args: list, env: IntrinsicEnv) -> list:
    start, end, step = (_int(a, name) for a, name in zip(args, ("start", "end", "step")))
    if step == 0:
        raise _Bad("the step must not be 0")
    stop = end + (1 if step > 0 else -1)  # the end is inclusive
    out = list(range(start, stop, step))
    if len(out) > 1000:
        raise _Bad(f"the range has {len(out)} items; at most 1000 are allowed")
    return out


def _array_get_item(args: list, env: IntrinsicEnv) -> Any:
    items, index = _list(args[0], "the array"), _int(args[1], "the index")
    if not 0 <= index < len(items):
        raise _Bad(f"index {index} is out of bounds for an array of length {len(items)}")
    return items[index]


def _array_unique(args: list, env: IntrinsicEnv) -> list:
    seen: set[str] = set()
    out = []
    for item in _list(args[0], "the array"):
        key = _json_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _base64_encode(args: list, env: IntrinsicEnv) -> str:
    text = _str(args[0], "the data")
    if len(text) > 10000:
        raise _Bad("the data must be at most 10000 characters")
    return base64.b64encode(text.encode()).decode()


def _base64_decode(args: list, env: IntrinsicEnv) -> str:
    text = _str(args[0], "the data")
    if len(text) > 10000:
        raise _Bad("the data must be at most 10000 characters")
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _Bad(f"{text!r} is not valid base64 of UTF-8 text ({exc})") from None


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list, env: IntrinsicEnv) -> str:
    data = args[0] if isinstance(args[0], str) else _render(args[0])
    if len(data) > 10000:
        raise _Bad("the data must be at most 10000 characters")
    algorithm = _str(args[1], "the algorithm")
    if algorithm not in _HASHES:
        raise _Bad(f"unknown hash algorithm {algorithm!r}; use one of {', '.join(_HASHES)}")
    return hashlib.new(_HASHES[algorithm], data.encode()).hexdigest()


def _json_merge(args: list, env: IntrinsicEnv) -> dict:
    left, right, deep = args
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise _Bad("both values to merge must be JSON objects")
    if deep is not False:
        raise _Bad("only shallow merges are supported: the third argument must be false")
    return {**left, **right}


def _math_random(args: list, env: IntrinsicEnv) -> int:
    start, end = _int(args[0], "the start"), _int(args[1], "the end")
    if end <= start:
        raise _Bad("the end must be greater than the start")
    rng = random.Random(_int(args[2], "the seed")) if len(args) == 3 else env.rng
    return rng.randrange(start, end)


def _math_add(args: list, env: IntrinsicEnv) -> int:
    return _int(args[0], "the first value") + _int(args[1], "the second value")


def _string_split(args: list, env: IntrinsicEnv) -> list:
    text, delimiters = _str(args[0], "the string"), _str(args[1], "the delimiter")
    if not delimiters:
        raise _Bad("the delimiter must not be empty")
    # Every character of the delimiter splits, empty tokens are dropped (as AWS does).
    pattern = "[" + re.escape(delimiters) + "]"
    return [token for token in re.split(pattern, text) if token]


def _string_to_json(args: list, env: IntrinsicEnv) -> Any:
    text = _str(args[0], "the value")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Bad(f"{text!r} is not valid JSON ({exc})") from None


def _uuid(args: list, env: IntrinsicEnv) -> str:
    return str(uuid.UUID(int=env.rng.getrandbits(128), version=4))


_FUNCTIONS: dict[str, Callable[[list, IntrinsicEnv], Any]] = {
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda args, env: json.dumps(args[0], separators=(",", ":")),
    "States.Array": lambda args, env: list(args),
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": lambda args, env: any(
        _json_key(item) == _json_key(args[1]) for item in _list(args[0], "the array")
    ),
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": lambda args, env: len(_list(args[0], "the array")),
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}
assert set(_FUNCTIONS) | {"States.Format"} == set(_ARITY), "every intrinsic needs an implementation"
