"""Amazon States Language (JSONPath and JSONata, with variables): parse, check and interpret definitions.

``from emulator.asl import run_definition`` is the entry point; ``emulator.asl.ports`` is the
interface service integrations implement (the interpreter owns it, integrations import it).
"""

from __future__ import annotations

from emulator.asl.errors import DefinitionError, StatesError
from emulator.asl.parse import StateMachine, parse_definition
from emulator.asl.run import ExecutionResult, run_definition

__all__ = ["DefinitionError", "ExecutionResult", "StateMachine", "StatesError", "parse_definition", "run_definition"]
