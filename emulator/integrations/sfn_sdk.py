"""Step Functions through the AWS SDK integration: "aws-sdk:sfn:describeExecution" over the local
Step Functions backend (a workflow asking whether another execution still runs: the deploy lock's
holder). Parameters and output members are the API's with the first letter capitalised, as AWS SDK
integrations give them (``ExecutionArn`` -> ``Status``); errors are ``Sfn.<Code>Exception``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.services.stepfunctions.backend import StepFunctionsBackend
from emulator.services.stepfunctions.exceptions import StepFunctionsError

ACTIONS = ("describeExecution",)


def _sdk_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: _sdk_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sdk_shape(item) for item in value]
    return value


def _iso(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


class SfnSdk(Integration):
    def __init__(self, backend: StepFunctionsBackend, action: str):
        self.backend = backend
        self.action = action

    def start(self, request: TaskRequest) -> Any:
        params = request.parameters if isinstance(request.parameters, dict) else {}
        if "ExecutionArn" not in params:
            raise StatesError("States.Runtime", f"State {request.state_name!r}: aws-sdk:sfn:{self.action} needs ExecutionArn")
        try:
            described = self.backend.describe_execution(executionArn=params["ExecutionArn"])
        except StepFunctionsError as error:
            raise StatesError(f"Sfn.{error.code}Exception", f"{error.message} (Service: Sfn, Status Code: 400, "
                                                            f"Request ID: {uuid.uuid4()})") from None
        out = _sdk_shape(described)
        for key in ("StartDate", "StopDate"):
            if key in out:
                out[key] = _iso(out[key])
        return out

    def poll(self, handle: Any) -> TaskOutcome:
        return TaskOutcome(handle)


def register(integrations: Integrations, backend: StepFunctionsBackend) -> None:
    for action in ACTIONS:
        integrations.register(f"aws-sdk:sfn:{action}", SfnSdk(backend, action))
