"""The two error families of the interpreter.

StatesError is an execution failure: `name` is the ASL error string (``States.TaskFailed``,
``ModelQualityBelowThreshold``, ``ValueError``...) so Retry/Catch ``ErrorEquals`` is a plain string
match. DefinitionError is raised before anything runs and carries the JSON pointer of the offending
field.
"""

from __future__ import annotations


class StatesError(Exception):
    def __init__(self, name: str, cause: str | None = None):
        super().__init__(f"{name}: {cause}" if cause else name)
        self.name = name
        self.cause = cause


class DefinitionError(Exception):
    def __init__(self, pointer: str, message: str):
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message
