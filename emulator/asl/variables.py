"""Workflow variables (``Assign``): name rules, scopes and AWS's size limits.

Scopes follow AWS's "Passing data between states with variables": the top-level states share one
scope; each Parallel branch and Map iteration runs in a child scope that reads every outer
variable but cannot assign one (an assignment to a name an outer scope holds fails the state),
and whatever it assigns is dropped when the branch or iteration ends. A state evaluates all its
assignments against the values from before the state and commits them together afterwards, so
``{"x": "$y", "y": "$x"}`` swaps.
"""

from __future__ import annotations

import json
from typing import Any

from emulator.asl.errors import DATA_LIMIT_EXCEEDED, RUNTIME, DefinitionError, StatesError

MAX_NAME = 80  # characters in a variable name
MAX_VALUE_BYTES = 262_144  # one variable, and all the variables one Assign sets together
MAX_TOTAL_BYTES = 10 * 1024 * 1024  # everything stored in one execution
RESERVED = frozenset({"states"})  # $states is Step Functions' reserved variable

_ABSENT: Any = object()


def check_name(name: str, pointer: str) -> None:
    """A variable name is a Unicode identifier (ID_Start then ID_Continue) of at most 80 characters."""
    if not name or not name.isidentifier():
        raise DefinitionError(
            pointer,
            f"{name!r} is not a valid variable name: use a letter or '_' followed by letters, digits or '_'",
        )
    if len(name) > MAX_NAME:
        raise DefinitionError(pointer, f"variable name {name[:20]!r}... is longer than {MAX_NAME} characters")
    if name in RESERVED:
        raise DefinitionError(pointer, f"'{name}' is reserved by Step Functions ($states) and cannot be assigned")


class Scope:
    """The variables one thread of control (the top level, a branch, an iteration) can see."""

    __slots__ = ("_assigned", "_sizes", "parent", "values")

    def __init__(self, parent: Scope | None = None, values: dict[str, Any] | None = None):
        self.parent = parent
        self.values: dict[str, Any] = dict(values or {})
        self._sizes: dict[str, int] = {name: _size(value) for name, value in self.values.items()}
        self._assigned: dict[str, Any] | None = None  # the last state's assignments, for its Exited event

    def child(self) -> Scope:
        return Scope(self)

    def restore(self, values: dict[str, Any]) -> None:
        """Put back a redriven block's own variables (as they were before the state that failed)."""
        self.values.update(values)
        self._sizes.update({name: _size(value) for name, value in values.items()})

    def lookup(self, name: str) -> Any:
        """The value of ``$name``, or _ABSENT (see ``defined``)."""
        scope: Scope | None = self
        while scope is not None:
            value = scope.values.get(name, _ABSENT)
            if value is not _ABSENT:
                return value
            scope = scope.parent
        return _ABSENT

    def get(self, name: str, what: str) -> Any:
        """The value of ``$name``; an undefined variable fails the state with States.Runtime."""
        value = self.lookup(name)
        if value is _ABSENT:
            raise StatesError(
                RUNTIME, f"The variable '${name}' used in '{what}' is not defined: no earlier state assigned it"
            )
        return value

    def defined(self, name: str) -> bool:
        return self.lookup(name) is not _ABSENT

    def visible(self) -> dict[str, Any]:
        """Every variable this scope can read (inner values hide outer ones)."""
        chain = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope.values)
            scope = scope.parent
        merged: dict[str, Any] = {}
        for values in reversed(chain):
            merged.update(values)
        return merged

    def assign(self, bindings: dict[str, Any], state_name: str) -> None:
        """Commit one state's assignments, after checking scope and AWS's size limits."""
        if not bindings:
            return
        outer = self.parent
        sizes: dict[str, int] = {}
        for name, value in bindings.items():
            if outer is not None and outer.defined(name):
                raise StatesError(
                    RUNTIME,
                    f"State {state_name!r} cannot assign the variable '${name}': it belongs to an outer scope; "
                    "states inside a Parallel branch or Map iteration can read outer variables but not assign "
                    "them (return the value in the branch output instead)",
                )
            size = sizes[name] = _size(value)
            if size > MAX_VALUE_BYTES:
                raise StatesError(
                    DATA_LIMIT_EXCEEDED,
                    f"State {state_name!r} assigns {size} bytes to the variable '${name}', more than the "
                    f"{MAX_VALUE_BYTES}-byte limit of one variable",
                )
        together = sum(sizes.values())
        if together > MAX_VALUE_BYTES:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"State {state_name!r} assigns {together} bytes of variables at once, more than the "
                f"{MAX_VALUE_BYTES}-byte limit of one Assign",
            )
        total = self._total() - sum(self._sizes.get(name, 0) for name in bindings) + together
        if total > MAX_TOTAL_BYTES:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"State {state_name!r} would bring the stored variables to {total} bytes, more than the "
                f"{MAX_TOTAL_BYTES}-byte limit of one execution",
            )
        self.values.update(bindings)
        self._sizes.update(sizes)
        self._assigned = dict(bindings)

    def take_assigned(self) -> dict[str, Any] | None:
        """The variables the current state assigned (once: the history reports them on its exit)."""
        assigned, self._assigned = self._assigned, None
        return assigned

    def _total(self) -> int:
        total, scope = 0, self
        while scope is not None:
            total += sum(scope._sizes.values())
            scope = scope.parent
        return total


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
