"""The Step Functions API on localhost, for the locally deployed state machines.

    boto3.client("stepfunctions", endpoint_url=URL).start_execution(stateMachineArn=..., input=...)
    aws stepfunctions --endpoint-url URL list-executions --state-machine-arn ...

The awsJson1_0 protocol: POST / with ``X-Amz-Target: AWSStepFunctions.<Operation>``; errors are
HTTP 400 with ``{"__type": <code>, "message": ...}``, which botocore raises as the modelled
exception (``client.exceptions.ExecutionDoesNotExist``, ...). Served: ListStateMachines,
DescribeStateMachine, StartExecution, DescribeExecution, ListExecutions, GetExecutionHistory and
StopExecution. Executions are read from their records on disk
(``<state_dir>/executions/<machine>/<execution>/``), so those run by `python -m emulator run` are
listed too; StartExecution runs one on a thread of this process with the runtime's integrations.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from emulator.asl.history import read_execution
from emulator.cloud.deploy import StateMachineSpec, UnknownResource
from emulator.runtime import LocalRuntime, build_integrations

log = logging.getLogger("emulator.stepfunctions")

TARGET_PREFIX = "AWSStepFunctions."
# What StartExecution refuses in a name (whitespace, brackets, wildcards, these specials, control
# characters); "." and ".." are refused too, since a name is a folder here.
_BAD_NAME_CHAR = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]')
_PAGE_SIZE = 100  # maxResults when not given, as AWS


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 80 or _BAD_NAME_CHAR.search(name) or name in (".", ".."):
        raise ApiError("InvalidName", f"Invalid Name: '{name}' (1-80 characters without whitespace, brackets, "
                                      f"wildcards or any of \" # % \\ ^ | ~ ` $ & , ; : /)")
    return name


class ApiError(Exception):
    """A Step Functions error: ``code`` is its ``__type`` (the botocore exception name)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _epoch(text: str | None) -> float | None:
    """ISO-8601 (the records' form) -> epoch seconds (the protocol's form for timestamps)."""
    return datetime.fromisoformat(text).timestamp() if text else None


@dataclass
class _Running:
    """An execution started by this server: its live history and the event that stops it."""

    input_value: Any
    events: list[dict] = field(default_factory=list)
    abort: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    failure: Exception | None = None  # run_definition refused to start it


class StepFunctionsApi:
    """The operations, over a runtime's deployment and its execution records."""

    def __init__(self, runtime: LocalRuntime):
        self.runtime = runtime
        self.deployment = runtime.deployment
        self.integrations = build_integrations(runtime)
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def call(self, operation: str, request: dict) -> dict:
        method = getattr(self, f"op_{operation}", None)
        if method is None:
            raise ApiError("UnknownOperationException",
                           f"{operation} is not served locally; the emulator serves: {', '.join(self.operations())}")
        return method(request)

    @classmethod
    def operations(cls) -> list[str]:
        return sorted(name.removeprefix("op_") for name in dir(cls) if name.startswith("op_"))

    # -- state machines ----------------------------------------------------------------------
    def _machine(self, arn: Any) -> StateMachineSpec:
        if not isinstance(arn, str) or ":stateMachine:" not in arn:
            raise ApiError("InvalidArn", f"Invalid Arn: '{arn}'")
        try:
            return self.deployment.state_machine(arn)
        except UnknownResource as exc:
            raise ApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}' ({exc})") from None

    def _created(self) -> float:
        return (Path(self.runtime.state_dir) / "deployment.json").stat().st_mtime

    def op_ListStateMachines(self, request: dict) -> dict:
        return {"stateMachines": [{"stateMachineArn": m.arn, "name": m.name, "type": m.type, "creationDate": self._created()}
                                  for m in self.deployment.state_machines]}

    def op_DescribeStateMachine(self, request: dict) -> dict:
        machine = self._machine(request.get("stateMachineArn"))
        return {"stateMachineArn": machine.arn, "name": machine.name, "status": "ACTIVE", "definition": machine.definition,
                "roleArn": machine.role_arn, "type": machine.type, "creationDate": self._created()}

    # -- executions --------------------------------------------------------------------------
    def _folder(self, machine: StateMachineSpec, name: str) -> Path:
        return self.runtime.execution_dir(machine.name, name)

    def _execution(self, arn: Any) -> tuple[StateMachineSpec, str, dict]:
        """(machine, execution name, record) of an execution ARN; its record from disk."""
        parts = arn.split(":") if isinstance(arn, str) else []
        if len(parts) != 8 or parts[5] != "execution":
            raise ApiError("InvalidArn", f"Invalid Arn: '{arn}'")
        machine_arn = ":".join([*parts[:5], "stateMachine", parts[6]])
        try:
            machine = self.deployment.state_machine(machine_arn)
            record = read_execution(self._folder(machine, _check_name(parts[7])))
        except (UnknownResource, FileNotFoundError, ApiError):
            raise ApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'") from None
        return machine, parts[7], record

    def op_StartExecution(self, request: dict) -> dict:
        machine = self._machine(request.get("stateMachineArn"))
        name = _check_name(request.get("name") or str(uuid.uuid4()))
        input_text = request.get("input") or "{}"
        try:
            input_value = json.loads(input_text)
        except json.JSONDecodeError as exc:
            raise ApiError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'") from None
        folder = self._folder(machine, name)
        arn = machine.arn.replace(":stateMachine:", ":execution:") + f":{name}"
        with self._lock:
            running = self._running.get(arn)
            # a running execution with the same name and input is answered again, as AWS does
            if running is None or running.input_value != input_value:
                if running is not None or (folder / "status.json").is_file():
                    raise ApiError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
                running = self._running[arn] = _Running(input_value)
                running.thread = threading.Thread(target=self._execute, args=(machine, name, arn, running),
                                                  name=f"execution-{name}", daemon=True)
                running.thread.start()
        running.started.wait(10)  # the status record exists once ExecutionStarted is recorded
        if running.failure is not None:
            raise ApiError("ValidationException", f"The execution could not start: {running.failure}")
        return {"executionArn": arn, "startDate": _epoch(read_execution(folder)["status"]["startDate"])}

    def _execute(self, machine: StateMachineSpec, name: str, arn: str, running: _Running) -> None:
        from emulator.asl import run_definition

        def on_event(event: dict) -> None:
            running.events.append(event)
            running.started.set()

        log.info("execution %s of %s starting", name, machine.name)
        try:
            result = run_definition(
                machine.definition, running.input_value, integrations=self.integrations, execution_name=name,
                state_machine_name=machine.name, role_arn=machine.role_arn, time_scale=self.runtime.time_scale,
                history_dir=self._folder(machine, name), on_event=on_event, state_machine_arn=machine.arn,
                abort=running.abort)
            log.info("execution %s %s%s", name, result.status, f": {result.error}" if result.error else "")
        except Exception as exc:  # noqa: BLE001 - refused before its first event (e.g. a bad definition)
            running.failure = exc
        finally:
            running.started.set()
            with self._lock:
                if self._running.get(arn) is running:
                    del self._running[arn]

    def stop_all(self, timeout: float = 30.0) -> None:
        """Abort every execution this server runs and wait for their ABORTED records (shutdown)."""
        with self._lock:
            running = list(self._running.values())
        for execution in running:
            execution.abort.set()
        for execution in running:
            if execution.thread:
                execution.thread.join(timeout)

    def op_DescribeExecution(self, request: dict) -> dict:
        _, _, record = self._execution(request.get("executionArn"))
        status = record["status"]
        out = _summary(status)
        out["input"], out["inputDetails"] = status.get("input", "{}"), {"included": True}
        if "output" in status:
            out["output"], out["outputDetails"] = status["output"], {"included": True}
        for key in ("error", "cause"):
            if status.get(key) is not None:
                out[key] = status[key]
        return out

    def op_ListExecutions(self, request: dict) -> dict:
        machine = self._machine(request.get("stateMachineArn"))
        wanted = request.get("statusFilter")
        folder = self.runtime.state_dir / "executions" / machine.name
        rows = []
        for execution in sorted(folder.iterdir()) if folder.is_dir() else []:
            try:
                status = read_execution(execution)["status"]
            except FileNotFoundError:
                continue
            if wanted and status.get("status") != wanted:
                continue
            rows.append(_summary(status))
        rows.sort(key=lambda r: r["startDate"], reverse=True)
        return _page(rows, "executions", request)

    def op_GetExecutionHistory(self, request: dict) -> dict:
        arn = request.get("executionArn")
        _, _, record = self._execution(arn)
        running = self._running.get(arn)
        events = list(running.events) if running else record["history"]
        events = [{**e, "timestamp": _epoch(e["timestamp"])} for e in events]
        if request.get("reverseOrder"):
            events.reverse()
        return _page(events, "events", request)

    def op_StopExecution(self, request: dict) -> dict:
        arn = request.get("executionArn")
        machine, name, record = self._execution(arn)
        running = self._running.get(arn)
        if running is None:
            if record["status"].get("status") == "RUNNING":
                raise ApiError("ValidationException", f"Execution '{arn}' is not running in this emulator process "
                                                      "(another one runs it, or it was killed): stop it there")
            return {"stopDate": _epoch(record["status"].get("stopDate"))}  # already ended: AWS answers too
        running.abort.set()
        if running.thread:
            running.thread.join(30)
        stopped = read_execution(self._folder(machine, name))["status"].get("stopDate")
        return {"stopDate": _epoch(stopped) if stopped else datetime.now().timestamp()}


def _summary(status: dict) -> dict:
    """An execution's ListExecutions row (DescribeExecution adds input, output, error, cause)."""
    out = {k: status[k] for k in ("executionArn", "stateMachineArn", "name", "status")}
    out["startDate"] = _epoch(status["startDate"])
    if status.get("stopDate"):
        out["stopDate"] = _epoch(status["stopDate"])
    return out


def _page(rows: list, key: str, request: dict) -> dict:
    """One page of ``rows`` (maxResults, nextToken = the offset of the next row)."""
    try:
        start = int(request.get("nextToken") or 0)
    except ValueError:
        raise ApiError("InvalidToken", f"Invalid Token: '{request.get('nextToken')}'") from None
    size = int(request.get("maxResults") or 0) or _PAGE_SIZE
    out: dict = {key: rows[start:start + size]}
    if start + size < len(rows):
        out["nextToken"] = str(start + size)
    return out


class StepFunctionsServer:
    """The API on a ThreadingHTTPServer thread; ``url`` is what clients take as endpoint_url."""

    def __init__(self, api: StepFunctionsApi, host: str = "127.0.0.1", port: int = 0):
        handler = type("Handler", (_Handler,), {"api": api})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="stepfunctions-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StepFunctionsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    api: StepFunctionsApi
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        try:
            if not target.startswith(TARGET_PREFIX):
                raise ApiError("UnknownOperationException", f"X-Amz-Target {target!r} is not a Step Functions operation")
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError("SerializationException", f"the request body is not JSON: {exc}") from None
            status, answer = 200, self.api.call(target.removeprefix(TARGET_PREFIX), request)
        except ApiError as err:
            status, answer = 400, {"__type": err.code, "message": err.message}
        except Exception as exc:
            log.exception("Step Functions API %s failed", target)
            status, answer = 500, {"__type": "InternalServerError", "message": f"{type(exc).__name__}: {exc}"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)
