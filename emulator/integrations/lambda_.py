"""Step Functions' Lambda integrations: "lambda:invoke" and the bare function ARN ("lambda:function").

Each invocation runs through the local Lambda service (emulator.services.lambda_.invoke). Output and
failures have the shapes Step Functions records for Lambda:
- lambda:invoke returns {"ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata",
  "StatusCode"}; the bare ARN form returns the handler's result itself.
- an exception fails the task with error = the exception class name and cause = the JSON string
  {"errorMessage", "errorType", "requestId", "stackTrace"}; a timeout with "Sandbox.Timedout".
Handler output goes to the execution's log folder (START/END/REPORT lines as CloudWatch shows them).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.aws.arns import parse_execution_arn
from emulator.integrations.sdk import http_metadata, trace_id
from emulator.services.lambda_.functions import Functions, FunctionSpec, ResourceNotFoundException
from emulator.services.lambda_.invoke import Invocation, LambdaRunner
from emulator.storage.layout import Layout


@dataclass
class _Handle:
    invocation: Invocation | None
    request: TaskRequest
    function: FunctionSpec
    asynchronous: bool = False


def log_file(layout: Layout, execution_arn: str, fn: FunctionSpec) -> Path:
    """An execution's Lambda logs live beside its history; others in the state folder's logs/."""
    parts = parse_execution_arn(execution_arn)
    folder = (layout.execution_dir(parts.state_machine_name, parts.execution_name) / "logs" if parts
              else layout.lambda_logs_dir)
    return folder / f"{fn.name}.log"


class LambdaIntegration(Integration):
    """``bare=True`` for a function ARN as Resource: the state's input is the event."""

    def __init__(self, functions: Functions, runner: LambdaRunner, *, bare: bool = False):
        self.functions = functions
        self.runner = runner
        self.bare = bare

    def _function(self, name: str) -> FunctionSpec:
        try:
            return self.functions.get(name)
        except ResourceNotFoundException as error:
            raise StatesError("Lambda.ResourceNotFoundException",
                              f"{error} (Service: Lambda, Status Code: 404, Request ID: {uuid.uuid4()})") from None

    def start(self, request: TaskRequest) -> _Handle:
        params = request.parameters
        if self.bare:
            fn = self._function(request.resource)
            event = params
            invocation_type = "RequestResponse"
        else:
            if not isinstance(params, dict) or "FunctionName" not in params:
                raise StatesError("States.Runtime", f"{request.state_name}: lambda:invoke needs Parameters."
                                                    f"FunctionName (a name or ARN)")
            fn = self._function(str(params["FunctionName"]))
            event = params.get("Payload", {})
            invocation_type = params.get("InvocationType", "RequestResponse")
            if invocation_type not in ("RequestResponse", "Event", "DryRun"):
                raise StatesError("Lambda.InvalidParameterValueException",
                                  f"InvocationType {invocation_type!r} is not one of RequestResponse, Event, DryRun")
        if invocation_type == "DryRun":
            return _Handle(None, request, fn)
        invocation = self.runner.start(fn, event, log_file(self.runner.layout, request.execution_arn, fn))
        if invocation_type == "Event":
            # Nobody waits for an Event invocation: a thread reaps it (timeout, log, folder).
            threading.Thread(target=invocation.wait, name=f"lambda-{invocation.request_id}", daemon=True).start()
        return _Handle(invocation, request, fn, asynchronous=invocation_type == "Event")

    def poll(self, handle: _Handle) -> TaskOutcome | None:
        if handle.invocation is None:  # DryRun
            return TaskOutcome(self._response(str(uuid.uuid4()), "", 204))
        if handle.asynchronous:
            # Event: Lambda queues the event and answers 202 at once; the process runs on.
            return TaskOutcome(self._response(handle.invocation.request_id, "", 202))
        result = handle.invocation.poll()
        if result is None:
            return None
        if not result["ok"]:
            error = result["error"]
            raise StatesError(error["errorType"], json.dumps(error, separators=(",", ":")))
        payload = json.loads(result["payload"])
        if self.bare:
            return TaskOutcome(payload)
        return TaskOutcome(self._response(handle.invocation.request_id, payload, 200, len(result["payload"])))

    def _response(self, request_id: str, payload: Any, status: int, length: int = 0) -> dict:
        headers = {"Connection": "keep-alive", "Content-Length": str(length), "X-Amz-Executed-Version": "$LATEST",
                   "x-amzn-Remapped-Content-Length": "0", "X-Amzn-Trace-Id": trace_id()}
        return {"ExecutedVersion": "$LATEST", "Payload": payload, **http_metadata(request_id, extra_headers=headers),
                "StatusCode": status}

    def stop(self, handle: _Handle) -> None:
        if handle.invocation is not None:
            handle.invocation.kill()
            handle.invocation.poll()

    def poll_interval(self, handle: _Handle) -> float:
        return 0.02


def register(integrations: Integrations, functions: Functions, runner: LambdaRunner) -> None:
    integrations.register("lambda:invoke", LambdaIntegration(functions, runner))
    integrations.register("lambda:function", LambdaIntegration(functions, runner, bare=True))
