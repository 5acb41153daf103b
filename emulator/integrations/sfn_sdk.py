"""Step Functions from a state machine: "aws-sdk:sfn:describeExecution" over the local Step Functions
backend (a workflow asking whether another execution still runs: the deploy lock's holder), and the
optimized "states:startExecution" (fire and forget: the monitoring loop starting a retraining).
Parameters and output members are the API's with the first letter capitalised, as the integrations
give them (``ExecutionArn`` -> ``Status``); errors are ``Sfn.<Code>Exception`` (AWS SDK) and
``StepFunctions.<Code>Exception`` (optimized)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.integrations.sdk import http_metadata
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


class StartExecution(Integration):
    """states:startExecution (request-response): the child runs on its own; the answer is its ARN."""

    def __init__(self, backend: StepFunctionsBackend):
        self.backend = backend

    def start(self, request: TaskRequest) -> Any:
        params = request.parameters if isinstance(request.parameters, dict) else {}
        request_id = str(uuid.uuid4())
        if "StateMachineArn" not in params:
            raise StatesError("States.Runtime", f"State {request.state_name!r}: states:startExecution needs StateMachineArn")
        value = params.get("Input", {})
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            started = self.backend.start_execution(stateMachineArn=params["StateMachineArn"], name=params.get("Name"),
                                                   input=text)
        except StepFunctionsError as error:
            raise StatesError(f"StepFunctions.{error.code}Exception",
                              f"{error.message} (Service: AWSStepFunctions, Status Code: 400, Request ID: {request_id})") from None
        return {"ExecutionArn": started["executionArn"], "StartDate": _iso(started["startDate"]),
                **http_metadata(request_id, content_type="application/x-amz-json-1.0")}

    def poll(self, handle: Any) -> TaskOutcome:
        return TaskOutcome(handle)


def register(integrations: Integrations, backend: StepFunctionsBackend) -> None:
    for action in ACTIONS:
        integrations.register(f"aws-sdk:sfn:{action}", SfnSdk(backend, action))
    integrations.register("states:startExecution", StartExecution(backend))
