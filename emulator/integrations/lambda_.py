"""Lambda: "lambda:invoke" and the bare function ARN form ("lambda:function").

Each invocation runs the function's real handler from its staged asset folder in its own process
(emulator/lambda_bootstrap.py), with the template's environment, the Lambda runtime variables, dummy
credentials and AWS_ENDPOINT_URL_S3 pointing at the local S3 server. The function's Timeout is
enforced. Output and failures have the shapes Step Functions records for Lambda:

- lambda:invoke returns {"ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata",
  "StatusCode"}; the bare ARN form returns the handler's result itself.
- an exception fails the task with error = the exception class name and cause = the JSON string
  {"errorMessage", "errorType", "requestId", "stackTrace"}; a timeout with "Sandbox.Timedout".

Handler output goes to a per-execution log file (START/END/REPORT lines as CloudWatch shows them).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import IO, Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import (
    Integration,
    Integrations,
    TaskOutcome,
    TaskRequest,
)
from emulator.cloud.deploy import FunctionSpec, UnknownResource
from emulator.runtime import execution_names

log = logging.getLogger(__name__)

BOOTSTRAP = Path(__file__).resolve().parent.parent / "services" / "lambda_" / "bootstrap.py"
# botocore sends every service without its own endpoint here: a closed local port, so a handler
# calling a service the emulator does not provide fails fast instead of reaching AWS.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"
_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


@dataclass
class Invocation:
    """One running invocation: its process, folder and deadline."""

    function: FunctionSpec
    request_id: str
    folder: Path
    process: subprocess.Popen
    started: float
    deadline: float
    log_file: Path
    _log: IO[str] | None = field(default=None, repr=False)
    result: dict | None = None  # {"ok": bool, "payload"|"error": ...} once finished

    def poll(self) -> dict | None:
        if self.result is not None:
            return self.result
        code = self.process.poll()
        if code is None:
            if time.monotonic() < self.deadline:
                return None
            self.kill()
            self.result = {"ok": False, "error": {
                "errorMessage": f"RequestId: {self.request_id} Error: Task timed out after "
                                f"{self.function.timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }}
        else:
            response = self.folder / "response.json"
            if response.is_file():
                self.result = json.loads(response.read_text())
            else:
                self.result = {"ok": False, "error": {
                    "errorMessage": f"RequestId: {self.request_id} Error: Runtime exited with error: "
                                    f"exit status {code}",
                    "errorType": "Runtime.ExitError",
                }}
        self._finish()
        return self.result

    def wait(self) -> dict:
        while (result := self.poll()) is None:
            time.sleep(0.02)
        return result

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _finish(self) -> None:
        duration_ms = (time.monotonic() - self.started) * 1000
        if self._log is not None:
            if self.result and not self.result["ok"]:
                self._log.write(json.dumps(self.result["error"]) + "\n")
            self._log.write(f"END RequestId: {self.request_id}\n")
            self._log.write(
                f"REPORT RequestId: {self.request_id}\tDuration: {duration_ms:.2f} ms\t"
                f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.function.memory} MB\n")
            self._log.close()
            self._log = None
        shutil.rmtree(self.folder, ignore_errors=True)


class LambdaRunner:
    """Starts invocations of deployed functions as local processes."""

    def __init__(self, runtime: Any):
        self.runtime = runtime

    def environment(self, fn: FunctionSpec, log_stream: str) -> dict[str, str]:
        env = {key: os.environ[key] for key in _PASSTHROUGH if key in os.environ}
        region = self.runtime.region
        env.update({
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": fn.code_dir,
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "_HANDLER": fn.handler,
            "TZ": ":UTC",
        })
        if self.runtime.s3_endpoint_url:
            env["AWS_ENDPOINT_URL_S3"] = self.runtime.s3_endpoint_url
        for service, url in (getattr(self.runtime, "service_endpoints", None) or {}).items():
            env[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
        env.update(fn.environment)  # the template's variables, resolved at deploy time
        return env

    def start(self, fn: FunctionSpec, event: Any, log_file: Path) -> Invocation:
        request_id = str(uuid.uuid4())
        folder = self.runtime.state_dir / "lambda" / "invocations" / request_id
        folder.mkdir(parents=True)
        now = datetime.now(UTC)
        log_stream = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        started = time.monotonic()
        request = {
            "request_id": request_id, "handler": fn.handler, "code_dir": fn.code_dir,
            "layer_dirs": fn.layer_dirs, "event": json.dumps(event), "function_name": fn.name,
            "function_arn": fn.arn, "memory": fn.memory, "version": "$LATEST",
            "log_group": fn.log_group_name, "log_stream": log_stream,
            "deadline_epoch_ms": time.time() * 1000 + fn.timeout * 1000,
        }
        (folder / "request.json").write_text(json.dumps(request))
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = log_file.open("a")
        handle.write(f"START RequestId: {request_id} Version: $LATEST\n")
        handle.flush()
        process = subprocess.Popen(
            [sys.executable, "-I", "-u", "-B", str(BOOTSTRAP), str(folder)],
            cwd=fn.code_dir, env=self.environment(fn, log_stream), stdin=subprocess.DEVNULL,
            stdout=handle, stderr=subprocess.STDOUT,
        )
        log.debug("invoking %s (request %s), log %s", fn.name, request_id, log_file)
        return Invocation(fn, request_id, folder, process, started, started + fn.timeout, log_file, handle)


def _http_metadata(request_id: str, length: int) -> dict:
    headers = {
        "Connection": "keep-alive",
        "Content-Length": str(length),
        "Content-Type": "application/json",
        "Date": formatdate(usegmt=True),
        "X-Amz-Executed-Version": "$LATEST",
        "x-amzn-Remapped-Content-Length": "0",
        "x-amzn-RequestId": request_id,
        "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
    }
    return {
        "AllHttpHeaders": {k: [v] for k, v in headers.items()},
        "HttpHeaders": headers,
        "HttpStatusCode": 200,
    }


@dataclass
class _Handle:
    invocation: Invocation | None
    request: TaskRequest
    function: FunctionSpec
    asynchronous: bool = False


class LambdaIntegration(Integration):
    """``bare=True`` for a function ARN as Resource: the state's input is the event."""

    def __init__(self, runtime: Any, *, bare: bool = False):
        self.runtime = runtime
        self.bare = bare
        self.runner = LambdaRunner(runtime)

    def _function(self, name: str) -> FunctionSpec:
        try:
            return self.runtime.deployment.function(name)
        except UnknownResource:
            arn = name if name.startswith("arn:") else (
                f"arn:aws:lambda:{self.runtime.region}:{self.runtime.account}:function:{name}")
            raise StatesError(
                "Lambda.ResourceNotFoundException",
                f"Function not found: {arn} (Service: Lambda, Status Code: 404, Request ID: {uuid.uuid4()})",
            ) from None

    def log_file(self, request: TaskRequest, fn: FunctionSpec) -> Path:
        names = execution_names(request.execution_arn)
        if names:
            folder = self.runtime.state_dir / "executions" / names[0] / names[1] / "logs"
        else:
            folder = self.runtime.state_dir / "logs"
        return folder / f"{fn.name}.log"

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
        invocation = self.runner.start(fn, event, self.log_file(request, fn))
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
        return {
            "ExecutedVersion": "$LATEST",
            "Payload": payload,
            "SdkHttpMetadata": _http_metadata(request_id, length),
            "SdkResponseMetadata": {"RequestId": request_id},
            "StatusCode": status,
        }

    def stop(self, handle: _Handle) -> None:
        if handle.invocation is not None:
            handle.invocation.kill()
            handle.invocation.poll()

    def poll_interval(self, handle: _Handle) -> float:
        return 0.02


def invoke(runtime: Any, function: str, event: Any, log_file: Path | None = None) -> dict:
    """Invoke a deployed function synchronously; returns {"ok", "payload"|"error"} (payload is JSON text)."""
    fn = runtime.deployment.function(function)
    log_file = log_file or runtime.state_dir / "logs" / f"{fn.name}.log"
    return LambdaRunner(runtime).start(fn, event, log_file).wait()


def register(integrations: Integrations, runtime: Any) -> None:
    integrations.register("lambda:invoke", LambdaIntegration(runtime))
    integrations.register("lambda:function", LambdaIntegration(runtime, bare=True))
