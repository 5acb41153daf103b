"""Amazon States Language (JSONPath query language): parse, check and interpret definitions."""

from emulator.asl.errors import DefinitionError, StatesError
from emulator.asl.parse import StateMachine, parse_definition
from emulator.asl.run import ExecutionResult, run_definition

__all__ = ["DefinitionError", "ExecutionResult", "StateMachine", "StatesError", "parse_definition", "run_definition"]
