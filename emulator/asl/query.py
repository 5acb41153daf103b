"""JSONata (QueryLanguage JSONata): ``{% %}`` templates compiled once, evaluated with $states and variables.

The engine is jsonata-python (a port of the reference implementation, JSONata 2.x). It is wrapped
here so that none of its objects (sequences, its null marker, functions) ever reach an ASL value:
every result is converted to plain JSON, and any engine exception becomes
``States.QueryEvaluationError`` naming the field, as AWS reports it. Step Functions evaluates
expressions without a root document (``$`` is not the state input: use ``$states.input``), adds
``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid`` and ``$parse``, and removes ``$eval``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonata import Jsonata, Utils

from emulator.asl.errors import QUERY_EVALUATION_ERROR, DefinitionError, StatesError

_EXPRESSION = re.compile(r"^\{%(.*)%\}$", re.DOTALL)
# A call of $eval outside string literals: Step Functions does not offer it (use $parse).
_STRINGS = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")
_EVAL_CALL = re.compile(r"\$eval\s*\(")
_MAX_SAFE = 2**53


def is_expression(value: Any) -> bool:
    """Whether a definition string is a JSONata expression: ``{% ... %}``."""
    return isinstance(value, str) and _EXPRESSION.match(value) is not None


@dataclass(frozen=True)
class Expression:
    """One compiled ``{% %}`` expression; ``text`` is what sits between the delimiters."""

    text: str
    pointer: str
    engine: Any = field(compare=False, repr=False)

    def evaluate(self, bindings: dict[str, Any], what: str) -> Any:
        """The plain-JSON value, or States.QueryEvaluationError naming the field ``what``."""
        try:
            raw = self.engine.evaluate(None, bindings)
        except StatesError as err:  # one of Step Functions' functions refused its arguments
            if err.location is None:
                err.location = what
            raise
        except Exception as exc:  # noqa: BLE001 - the engine raises JException and plain errors alike
            raise StatesError(
                QUERY_EVALUATION_ERROR,
                f"An error occurred while evaluating the JSONata expression '{self.text.strip()}' specified for "
                f"the field '{what}': {_message(exc)}",
                location=what,
            ) from None
        if raw is None:
            raise StatesError(
                QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.text.strip()}' specified for the field '{what}' returned nothing (undefined).",
                location=what,
            )
        try:
            return to_json(raw)
        except _Unsupported:
            raise StatesError(
                QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.text.strip()}' specified for the field '{what}' returned an unsupported result type.",
                location=what,
            ) from None


def compile_expression(value: str, pointer: str) -> Expression:
    """Parse the expression inside ``{% %}``; a syntax error or $eval is a DefinitionError."""
    match = _EXPRESSION.match(value)
    if match is None:
        raise DefinitionError(pointer, f"{value!r} is not a JSONata expression: write it as '{{% expression %}}'")
    text = match.group(1)
    if not text.strip():
        raise DefinitionError(pointer, "the JSONata expression between '{%' and '%}' is empty")
    if _EVAL_CALL.search(_STRINGS.sub("''", text)):
        raise DefinitionError(pointer, "the JSONata function $eval is not available in Step Functions; use $parse")
    try:
        engine = Jsonata(text)
    except Exception as exc:  # noqa: BLE001 - JException carries the position and the reason
        raise DefinitionError(pointer, f"invalid JSONata expression {text.strip()!r}: {_message(exc)}") from None
    engine.set_output_convert_nulls(False)  # keep JSONata null apart from undefined
    return Expression(text=text, pointer=pointer, engine=engine)


# -- templates: JSON values whose strings may be expressions ---------------------------------------

Render = Callable[[dict[str, Any], str], Any]


@dataclass(frozen=True)
class QueryTemplate:
    """A JSON value (Arguments, Output, ItemSelector, an Assign value...) with ``{% %}`` strings."""

    source: Any
    render_fn: Render
    dynamic: bool  # False: no expression inside, the value is the source itself

    def render(self, bindings: dict[str, Any], what: str) -> Any:
        return self.render_fn(bindings, what)


def compile_template(value: Any, pointer: str) -> QueryTemplate:
    render, dynamic = _compile_node(value, pointer)
    return QueryTemplate(source=value, render_fn=render, dynamic=dynamic)


def _compile_node(value: Any, pointer: str) -> tuple[Render, bool]:
    if isinstance(value, str) and is_expression(value):
        expression = compile_expression(value, pointer)
        return (lambda bindings, what: expression.evaluate(bindings, what)), True
    if isinstance(value, dict):
        items = [(key, _compile_node(item, f"{pointer}/{_escape(key)}")) for key, item in value.items()]
        if not any(dynamic for _, (_, dynamic) in items):
            return (lambda bindings, what: value), False
        frozen = tuple((key, render) for key, (render, _) in items)
        return (lambda bindings, what: {key: render(bindings, f"{what}/{key}") for key, render in frozen}), True
    if isinstance(value, list):
        parts = [_compile_node(item, f"{pointer}/{i}") for i, item in enumerate(value)]
        if not any(dynamic for _, dynamic in parts):
            return (lambda bindings, what: value), False
        renders = tuple(render for render, _ in parts)
        return (lambda bindings, what: [render(bindings, f"{what}/{i}") for i, render in enumerate(renders)]), True
    return (lambda bindings, what: value), False  # JSON values are never mutated, so sharing is safe


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


# -- values in and out ------------------------------------------------------------------------------


class _Unsupported(Exception):
    pass


def to_json(value: Any) -> Any:
    """A plain JSON copy of an engine value: lists, dicts, str, int/float, bool, None."""
    if value is Utils.NULL_VALUE or value is None:
        return None
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # JSONata numbers are doubles; JSON has no 3.0, so whole numbers print as integers.
        if value.is_integer() and abs(value) < _MAX_SAFE:
            return int(value)
        if math.isnan(value) or math.isinf(value):
            raise _Unsupported()
        return value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    raise _Unsupported()  # functions, regexes


def binding(value: Any) -> Any:
    """How a JSON value is bound to a JSONata variable: a top-level null must be JSONata's null,
    because an unbound (None) variable reads as undefined."""
    return Utils.NULL_VALUE if value is None else value


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    code = getattr(exc, "error", None)
    return f"{text} ({code})" if isinstance(code, str) and code else text


# -- the functions Step Functions adds ---------------------------------------------------------------


class _FunctionError(Exception):
    pass


def _plain(value: Any) -> Any:
    try:
        return to_json(value)
    except _Unsupported:
        raise _FunctionError("arguments must be JSON values") from None


def _integer(value: Any, what: str) -> int:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise _FunctionError(f"{what} must be an integer, got {json.dumps(value)}")
    return int(value)


def _partition(array: Any = None, size: Any = None) -> list:
    items = _plain(array)
    if not isinstance(items, list):
        raise _FunctionError("$partition expects an array as its first argument")
    chunk = _integer(size, "the chunk size of $partition")
    if chunk < 1:
        raise _FunctionError("the chunk size of $partition must be a positive integer")
    return [items[i : i + chunk] for i in range(0, len(items), chunk)]


_RANGE_LIMIT = 1000  # the same cap as States.ArrayRange


def _range(start: Any = None, end: Any = None, step: Any = None) -> list:
    first, last, by = _integer(start, "start"), _integer(end, "end"), _integer(step, "step")
    if by == 0:
        raise _FunctionError("the step of $range cannot be 0")
    values = list(range(first, last + (1 if by > 0 else -1), by))
    if len(values) > _RANGE_LIMIT:
        raise _FunctionError(f"$range would produce {len(values)} items; at most {_RANGE_LIMIT} are allowed")
    return values


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(data: Any = None, algorithm: Any = None) -> str:
    text, name = _plain(data), _plain(algorithm)
    if not isinstance(text, str):
        raise _FunctionError("$hash expects a string to hash as its first argument")
    if name not in _HASHES:
        raise _FunctionError(f"$hash supports the algorithms {sorted(_HASHES)}, got {json.dumps(name)}")
    return hashlib.new(_HASHES[name], text.encode()).hexdigest()


def _parse(text: Any = None) -> Any:
    value = _plain(text)
    if not isinstance(value, str):
        raise _FunctionError("$parse expects a JSON string")
    try:
        return binding(json.loads(value))
    except ValueError as exc:
        raise _FunctionError(f"$parse could not parse {value[:100]!r}: {exc}") from None


def _guard(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except _FunctionError as exc:
            raise StatesError(QUERY_EVALUATION_ERROR, f"The function ${name} failed: {exc}") from None
        except TypeError:
            raise StatesError(QUERY_EVALUATION_ERROR, f"${name} was called with the wrong number of arguments") from None

    return call


def functions(rng: random.Random) -> dict[str, Any]:
    """The bindings for Step Functions' own functions, drawing randomness from ``rng``."""

    def _random(seed: Any = None) -> float:
        if seed is None:
            return rng.random()
        return random.Random(_integer(seed, "the seed of $random")).random()

    def _uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    table = {"partition": _partition, "range": _range, "hash": _hash, "parse": _parse, "random": _random, "uuid": _uuid}
    return {name: Jsonata.JLambda(_guard(name, fn)) for name, fn in table.items()}
