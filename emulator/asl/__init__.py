"""Amazon States Language (JSONPath query language): parse, check and interpret definitions.

``from emulator.asl import run_definition`` is the entry point. The names are loaded lazily so
that ``emulator.asl.errors`` (which ``emulator.asl.ports`` imports) never drags in the
interpreter, which itself imports ``emulator.asl.ports``: no import cycle either way.
"""

from __future__ import annotations

import importlib
from typing import Any

from emulator.asl.errors import DefinitionError, StatesError

_LAZY = {
    "run_definition": "emulator.asl.run",
    "ExecutionResult": "emulator.asl.run",
    "parse_definition": "emulator.asl.parse",
    "StateMachine": "emulator.asl.parse",
}

__all__ = ["DefinitionError", "ExecutionResult", "StateMachine", "StatesError", "parse_definition", "run_definition"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emulator.asl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
