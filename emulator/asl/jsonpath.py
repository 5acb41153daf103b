"""JSONPath for the States Language, parsed once by jsonpath-ng and evaluated fast.

A *definite* path (only field names and single indexes: ``$.a.b[0]['c d']``) is compiled to a
tuple of steps and returns a single value; anything else (wildcards, slices, filters, ``..``)
is evaluated by jsonpath-ng and returns the list of matches. A *reference path* (ResultPath) must
be definite. Paths starting with ``$$`` read the context object; ``$name`` and ``$name.field...``
read the workflow variable ``name`` (variables.py) and go on from its value.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from jsonpath_ng import jsonpath as jp
from jsonpath_ng.ext import parse as _jsonpath_parse


class PathError(Exception):
    """A path did not match the data; callers turn it into the right States error."""


class PathSyntaxError(ValueError):
    """The text is not a JSONPath the States Language accepts."""


@dataclass(frozen=True)
class JsonPath:
    text: str
    context: bool  # starts with $$: evaluated against the context object
    steps: tuple[str | int, ...] | None  # None when the path is not definite
    expr: Any = field(default=None, compare=False, repr=False)  # jsonpath-ng AST
    variable: str | None = None  # $name...: evaluated against the value of that variable

    @property
    def definite(self) -> bool:
        return self.steps is not None

    def find(self, data: Any) -> Any:
        """The value at this path (definite) or the list of matches; raises PathError."""
        if self.steps is None:
            return [match.value for match in self.expr.find(data)]
        value = data
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(value, dict) or step not in value:
                    raise PathError(f"The JSONPath {self.text!r} could not be found in the input {short_json(data)}")
                value = value[step]
            else:
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    raise PathError(f"The JSONPath {self.text!r} could not be found in the input {short_json(data)}")
                value = value[step]
        return value

    def exists(self, data: Any) -> bool:
        try:
            found = self.find(data)
        except PathError:
            return False
        return self.steps is not None or bool(found)

    def __str__(self) -> str:
        return self.text


def short_json(data: Any, limit: int = 2000) -> str:
    import json

    try:
        text = json.dumps(data, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _definite_steps(node: Any) -> list[str | int] | None:
    if isinstance(node, jp.Root):
        return []
    if isinstance(node, jp.Child):
        left = _definite_steps(node.left)
        right = _definite_steps(node.right) if left is not None else None
        if left is None or right is None:
            return None
        return left + right
    if isinstance(node, jp.Fields) and len(node.fields) == 1 and node.fields[0] != "*":
        return [node.fields[0]]
    if isinstance(node, jp.Index) and len(node.indices) == 1:
        return [node.indices[0]]
    return None


@functools.lru_cache(maxsize=4096)
def compile_path(text: str) -> JsonPath:
    """Parse ``$...`` or ``$$...``; raises PathSyntaxError."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(f"{text!r} is not a JSONPath: it must start with '$'")
    variable = _VARIABLE.match(text)
    if variable is not None:
        # $name.rest is the path $.rest applied to the variable's value.
        inner = compile_path("$" + text[variable.end() :])
        return JsonPath(text=text, context=False, steps=inner.steps, expr=inner.expr, variable=variable.group(1))
    context = text.startswith("$$")
    body = text[1:] if context else text
    try:
        expr = _jsonpath_parse(body)
    except Exception as exc:  # noqa: BLE001 - jsonpath-ng raises plain Exceptions with line:col
        # jsonpath-ng reserves some words ('where') and only takes ASCII names after a dot; AWS
        # accepts them, so a plain definite path is still read step by step.
        simple = _simple_steps(body)
        if simple is None:
            raise PathSyntaxError(f"{text!r} is not a valid JSONPath: {exc}") from None
        return JsonPath(text=text, context=context, steps=tuple(simple), expr=None)
    if not _rooted(expr):
        raise PathSyntaxError(f"{text!r} is not a valid JSONPath: it must start at the root '$'")
    steps = _definite_steps(expr)
    return JsonPath(text=text, context=context, steps=tuple(steps) if steps is not None else None, expr=expr)


_VARIABLE = re.compile(r"\$([^\W\d]\w*)")  # $name: a workflow variable (not $, $$, $. or $[)
_SIMPLE_STEP = re.compile(r"""\.([^.\[\]\s'"*@?()$]+)|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]|\[(-?\d+)\]""")


def _simple_steps(body: str) -> list[str | int] | None:
    """Steps of ``$.name['quoted'][0]...`` (names in any script), or None if it is anything else."""
    if not body.startswith("$"):
        return None
    steps: list[str | int] = []
    pos = 1
    while pos < len(body):
        match = _SIMPLE_STEP.match(body, pos)
        if not match:
            return None
        name, single, double, index = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(name if name is not None else (single if single is not None else double))
        pos = match.end()
    return steps


def _rooted(node: Any) -> bool:
    while isinstance(node, (jp.Child, jp.Descendants, jp.Where)):
        node = node.left
    return isinstance(node, jp.Root)


def compile_reference_path(text: str) -> JsonPath:
    """A path that names one location (ResultPath): no wildcards, filters or context."""
    path = compile_path(text)
    if path.variable is not None:
        raise PathSyntaxError(f"{text!r} is not a valid reference path: it cannot name a variable; use Assign to set one")
    if path.context or not path.definite:
        raise PathSyntaxError(
            f"{text!r} is not a valid reference path: it must name a single location "
            "(field names and indexes only, no '*', '..', slices or filters)"
        )
    return path


def set_path(data: Any, path: JsonPath, value: Any) -> Any:
    """A copy of ``data`` with ``value`` at ``path``; containers along the way are copied, not mutated."""
    steps = path.steps or ()
    if not steps:
        return value
    return _set(data, steps, 0, value, path)


def _set(node: Any, steps: tuple, i: int, value: Any, path: JsonPath) -> Any:
    step = steps[i]
    last = i == len(steps) - 1
    if isinstance(step, str):
        if not isinstance(node, dict):
            # AWS's wording for a ResultPath step into something that is not an object
            raise PathError(f'Unable to apply step "{step}" to input {short_json(node)}')
        copy = dict(node)
        if last:
            copy[step] = value
        else:
            child = node.get(step)
            copy[step] = _set({} if child is None and step not in node else child, steps, i + 1, value, path)
        return copy
    if not isinstance(node, list) or not -len(node) <= step < len(node):
        raise PathError(f'Unable to apply step "{step}" to input {short_json(node)}')
    copy = list(node)
    copy[step] = value if last else _set(node[step], steps, i + 1, value, path)
    return copy
