"""Step Functions API errors: one class per error code (botocore raises ``client.exceptions.<code>``)."""

from __future__ import annotations

from emulator.services.errors import ServiceError


class StepFunctionsError(ServiceError):
    code = "InternalServerError"


class InvalidArn(StepFunctionsError):
    code = "InvalidArn"

    def __init__(self, arn: object):
        super().__init__(f"Invalid Arn: '{arn}'")


class InvalidName(StepFunctionsError):
    code = "InvalidName"

    def __init__(self, name: object):
        super().__init__(f"Invalid Name: '{name}' (1-80 characters without whitespace, brackets, wildcards "
                         f"or any of \" # % \\ ^ | ~ ` $ & , ; : /)")


class InvalidExecutionInput(StepFunctionsError):
    code = "InvalidExecutionInput"

    def __init__(self, why: str):
        super().__init__(f"Invalid State Machine Execution Input: '{why}'")


class InvalidToken(StepFunctionsError):
    code = "InvalidToken"

    def __init__(self, token: object):
        super().__init__(f"Invalid Token: '{token}'")


class StateMachineDoesNotExist(StepFunctionsError):
    code = "StateMachineDoesNotExist"

    def __init__(self, arn: str, known: list[str]):
        super().__init__(f"State Machine Does Not Exist: '{arn}' (deployed: {', '.join(known) or 'none'})")


class ExecutionDoesNotExist(StepFunctionsError):
    code = "ExecutionDoesNotExist"

    def __init__(self, arn: object):
        super().__init__(f"Execution Does Not Exist: '{arn}'")


class ExecutionAlreadyExists(StepFunctionsError):
    code = "ExecutionAlreadyExists"

    def __init__(self, arn: str):
        super().__init__(f"Execution Already Exists: '{arn}'")


class ValidationException(StepFunctionsError):
    code = "ValidationException"


class UnknownOperation(StepFunctionsError):
    code = "UnknownOperationException"


class SerializationException(StepFunctionsError):
    code = "SerializationException"


class InvalidDefinition(StepFunctionsError):
    code = "InvalidDefinition"


class TaskDoesNotExist(StepFunctionsError):
    code = "TaskDoesNotExist"

    def __init__(self, token: str):
        super().__init__(f"Task Does Not Exist: no task waits for token '{token[:80]}' in this state folder "
                         f"(check the token, and the --state-dir the execution ran in)")


class TaskTimedOut(StepFunctionsError):
    code = "TaskTimedOut"

    def __init__(self, why: str):
        super().__init__(f"Task Timed Out: '{why}'")


class InvalidOutput(StepFunctionsError):
    code = "InvalidOutput"

    def __init__(self, why: str):
        super().__init__(f"Invalid Output: '{why}'")
class ExecutionNotRedrivable(StepFunctionsError):
    code = "ExecutionNotRedrivable"

    def __init__(self, arn: str, reason: str):
        super().__init__(f"Execution '{arn}' cannot be redriven: {reason}")


class ResourceNotFound(StepFunctionsError):
    code = "ResourceNotFound"

    def __init__(self, what: str, arn: object):
        super().__init__(f"{what} Does Not Exist: '{arn}'")
