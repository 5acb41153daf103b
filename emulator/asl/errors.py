"""The two error families of the interpreter.

StatesError is an execution failure: `name` is the ASL error string (``States.TaskFailed``,
``ModelQualityBelowThreshold``, ``ValueError``...) so Retry/Catch ``ErrorEquals`` is a plain string
match. DefinitionError is raised before anything runs and carries the JSON pointer of the offending
field.
"""

from __future__ import annotations


class StatesError(Exception):
    """``location`` names the field of a JSONata expression that failed (an EvaluationFailed event)."""

    def __init__(self, name: str, cause: str | None = None, location: str | None = None):
        super().__init__(f"{name}: {cause}" if cause else name)
        self.name = name
        self.cause = cause
        self.location = location


class DefinitionError(Exception):
    """``code`` is the ValidateStateMachineDefinition diagnostic code it is reported under."""

    def __init__(self, pointer: str, message: str, code: str = "SCHEMA_VALIDATION_FAILED"):
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message
        self.code = code


# Diagnostic code of a DefinitionError for a valid ASL feature the emulator cannot run: AWS would
# accept the definition, so ValidateStateMachineDefinition reports it as a WARNING, not an ERROR.
UNSUPPORTED_FEATURE = "EMULATOR_UNSUPPORTED_FEATURE"


# Predefined error names (States Language appendix A plus the ones AWS reports).
ALL = "States.ALL"
RUNTIME = "States.Runtime"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
TASK_FAILED = "States.TaskFailed"
PERMISSIONS = "States.Permissions"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"  # the spec's name; AWS reports the next one
REFERENCE_PATH_CONFLICT = "States.ReferencePathConflict"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"  # a JSONata expression failed or returned nothing

# AWS never lets Retry or Catch (not even States.ALL) handle these: the execution fails.
UNCATCHABLE = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})
