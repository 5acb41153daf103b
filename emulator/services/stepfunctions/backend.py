"""The Step Functions API's operations over the deployed state machines and their execution records.

StartExecution runs the execution on a thread of this process through ``launch``, which the
runtime injects (running a definition is the interpreter's job, above this layer); RedriveExecution
likewise through ``redrive``. Executions are read from their records (``storage.executions``), so
those run by `python -m emulator run` are listed too; a Distributed Map's Map Runs and child
executions from theirs (``storage.mapruns``), under the parent execution's folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emulator.aws.arns import execution_arn, parse_execution_arn, parse_map_run_arn
from emulator.services.stepfunctions import exceptions as exc
from emulator.services.stepfunctions import validation
from emulator.services.stepfunctions.machines import StateMachines, StateMachineSpec
from emulator.services.stepfunctions.tokens import TaskTokens
from emulator.storage.executions import ExecutionExists, owner_gone, read_execution, settle_orphan, write_history
from emulator.storage.layout import Layout
from emulator.storage.mapruns import children_of, find_child, find_map_run, map_runs_of, read_map_run
from emulator.storage.pages import InvalidNextToken, paginate

log = logging.getLogger(__name__)

# What StartExecution refuses in a name (whitespace, brackets, wildcards, these specials, control
# characters); "." and ".." are refused too, since a name is a folder here.
_BAD_NAME_CHAR = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]')

# (machine, input value, execution name, on_event, abort) -> the ended execution (anything)
Launch = Callable[[StateMachineSpec, Any, str, Callable[[dict], None], threading.Event], Any]
# (machine, execution name, on_event, abort) -> the ended execution: a recorded failure continued
Redrive = Callable[[StateMachineSpec, str, Callable[[dict], None], threading.Event], Any]
# (machine, execution name, its orphaned token record, on_event, abort) -> the ended execution: a
# run whose process ended while it waited on a task token, continued
Continue = Callable[[StateMachineSpec, str, dict, Callable[[dict], None], threading.Event], Any]

# AWS "Redriving executions": what makes an execution redrivable
REDRIVE_PERIOD = timedelta(days=14)  # after it stopped
REDRIVE_HISTORY_LIMIT = 25_000  # events: a redrive needs room in the history


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 80 or _BAD_NAME_CHAR.search(name) or name in (".", ".."):
        raise exc.InvalidName(name)
    return name


def _epoch(text: str | None) -> float | None:
    """ISO-8601 (the records' form) -> epoch seconds (the protocol's form for timestamps)."""
    return datetime.fromisoformat(text).timestamp() if text else None


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


@dataclass
class _Running:
    """An execution started by this backend: its live history and the event that stops it."""

    input_value: Any
    events: list[dict] = field(default_factory=list)
    abort: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    failure: Exception | None = None  # the launcher refused to start it


class StepFunctionsBackend:
    OPERATIONS = ("ListStateMachines", "DescribeStateMachine", "StartExecution", "DescribeExecution",
                  "ListExecutions", "GetExecutionHistory", "StopExecution", "ValidateStateMachineDefinition",
                  "TestState", "RedriveExecution", "DescribeMapRun", "ListMapRuns", "SendTaskSuccess",
                  "SendTaskFailure", "SendTaskHeartbeat")

    def __init__(self, machines: StateMachines, layout: Layout, launch: Launch, *, created: float = 0.0,
                 validate: Callable[..., dict] | None = None, test_state: Callable[..., dict] | None = None,
                 redrive: Redrive | None = None, tokens: TaskTokens | None = None,
                 resume: Continue | None = None):
        self.machines = machines
        self.layout = layout
        self.launch = launch
        self.redrive = redrive
        # the interpreter's definition checks and single-state runs, injected (they are above this layer)
        self._validate = validate
        self._test_state = test_state
        self.created = created  # when the machines were deployed (epoch seconds)
        # task tokens live on disk (any process answers them); ``resume`` continues an execution
        # whose process ended while it waited on one (the interpreter's job, injected)
        self.tokens = tokens or TaskTokens(layout.stepfunctions_records)
        self._resume = resume
        # settles an execution whose owner process died (the runtime injects one that also rolls
        # back what it changed); by default only the record is settled
        self.settle: Callable[[Any], Any] = lambda folder: settle_orphan(folder, "it was killed or crashed")
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def call(self, operation: str, request: dict) -> dict:
        if operation not in self.OPERATIONS:
            raise exc.UnknownOperation(f"{operation} is not served locally; the emulator serves: "
                                       f"{', '.join(sorted(self.OPERATIONS))}")
        validation.validate(operation, request)  # as AWS's front end: before any operation runs
        return getattr(self, _snake(operation))(**request)

    # -- state machines ----------------------------------------------------------------------
    def _machine(self, arn: Any) -> StateMachineSpec:
        if not isinstance(arn, str) or ":stateMachine:" not in arn:
            raise exc.InvalidArn(arn)
        return self.machines.get(arn)

    def list_state_machines(self, **_: Any) -> dict:
        return {"stateMachines": [{"stateMachineArn": m.arn, "name": m.name, "type": m.type,
                                   "creationDate": self.created} for m in self.machines]}

    def describe_state_machine(self, stateMachineArn: Any = None, **_: Any) -> dict:
        machine = self._machine(stateMachineArn)
        return {"stateMachineArn": machine.arn, "name": machine.name, "status": "ACTIVE",
                "definition": machine.definition, "roleArn": machine.role_arn, "type": machine.type,
                "creationDate": self.created}

    def validate_state_machine_definition(self, definition: Any = None, type: Any = "STANDARD",
                                          severity: Any = "ERROR", maxResults: Any = 0, **_: Any) -> dict:
        if not isinstance(definition, str) or not definition:
            raise exc.ValidationException("definition is required")
        return self._validate(definition, type=type, severity=severity, max_results=maxResults)

    def test_state(self, definition: Any = None, roleArn: Any = None, input: Any = None,
                   inspectionLevel: Any = "INFO", revealSecrets: Any = False, variables: Any = None,
                   stateName: Any = None, mock: Any = None, context: Any = None,
                   stateConfiguration: Any = None, **_: Any) -> dict:
        if not isinstance(definition, str) or not definition:
            raise exc.ValidationException("definition is required")
        return self._test_state(definition, input=input, inspection_level=inspectionLevel,
                                reveal_secrets=revealSecrets, variables=variables, state_name=stateName, mock=mock,
                                context=context, state_configuration=stateConfiguration, role_arn=roleArn)

    # -- executions --------------------------------------------------------------------------
    def _execution(self, arn: Any) -> tuple[StateMachineSpec, str, dict]:
        """(machine, execution name, record) of an execution ARN (a Map Run's child's too); its record from disk."""
        parts = parse_execution_arn(arn)
        if parts is None:
            raise exc.InvalidArn(arn)
        try:
            _, _, label = parts.state_machine_name.partition("/")
            machine = self.machines.get(parts.state_machine_arn.removesuffix(f"/{label}") if label else parts.state_machine_arn)
            name = check_name(parts.execution_name)
            folder = (find_child(self.layout.executions_dir(machine.name), name) if label
                      else self.layout.execution_dir(machine.name, name))
            if folder is None:
                raise FileNotFoundError(arn)
            record = self._read(folder)
        except (exc.StateMachineDoesNotExist, exc.InvalidName, FileNotFoundError):
            raise exc.ExecutionDoesNotExist(arn) from None
        return machine, parts.execution_name, record

    def _read(self, folder: Any) -> dict:
        """An execution's record; one whose owner process died is settled first (it never ends else)."""
        record = read_execution(folder)
        if owner_gone(record["status"]):
            self.settle(folder)
            record = read_execution(folder)
        return record

    def _map_run(self, arn: Any) -> tuple[Path, dict]:
        """(the parent execution's folder, the Map Run record) of a Map Run ARN."""
        parts = parse_map_run_arn(arn)
        if parts is None:
            raise exc.InvalidArn(arn)
        try:
            machine = self.machines.get(parts.state_machine_name)
        except exc.StateMachineDoesNotExist:
            raise exc.ResourceNotFound("Map Run", arn) from None
        folder = find_map_run(self.layout.executions_dir(machine.name), parts.run_id)
        if folder is None:
            raise exc.ResourceNotFound("Map Run", arn)
        return folder, read_map_run(folder, parts.run_id)

    def start_execution(self, stateMachineArn: Any = None, name: Any = None, input: Any = None,
                        **_: Any) -> dict:
        machine = self._machine(stateMachineArn)
        name = check_name(name or str(uuid.uuid4()))
        try:
            input_value = json.loads(input or "{}")
        except json.JSONDecodeError as error:
            raise exc.InvalidExecutionInput(str(error)) from None
        folder = self.layout.execution_dir(machine.name, name)
        arn = execution_arn(machine.arn, name)
        with self._lock:
            running = self._running.get(arn)
            # a running execution with the same name and input is answered again, as AWS does
            if running is None or running.input_value != input_value:
                if running is not None:
                    raise exc.ExecutionAlreadyExists(arn)
                existing = self._existing(folder)
                if existing is not None:  # another process's: the same answer if it runs with this input
                    if existing.get("status") == "RUNNING" and _same_input(existing.get("input"), input_value):
                        return {"executionArn": arn, "startDate": _epoch(existing["startDate"])}
                    raise exc.ExecutionAlreadyExists(arn)
                running = self._running[arn] = _Running(input_value)
                running.thread = threading.Thread(target=self._execute, args=(machine, name, arn, running),
                                                  name=f"execution-{name}", daemon=True)
                running.thread.start()
        running.started.wait(10)  # the status record exists once ExecutionStarted is recorded
        if isinstance(running.failure, exc.ExecutionAlreadyExists | ExecutionExists):
            raise exc.ExecutionAlreadyExists(arn)  # another process claimed the name meanwhile
        if running.failure is not None:
            raise exc.ValidationException(f"The execution could not start: {running.failure}")
        return {"executionArn": arn, "startDate": _epoch(read_execution(folder)["status"]["startDate"])}

    def _existing(self, folder: Any) -> dict | None:
        try:
            return self._read(folder)["status"]
        except FileNotFoundError:
            return None

    def _execute(self, machine: StateMachineSpec, name: str, arn: str, running: _Running, redrive: bool = False,
                 waiting: dict | None = None) -> None:
        def on_event(event: dict) -> None:
            running.events.append(event)
            running.started.set()

        log.info("execution %s of %s %s", name, machine.name,
                 "resuming" if waiting else "redriven" if redrive else "starting")
        try:
            if waiting is not None:
                result = self._resume(machine, name, waiting, on_event, running.abort)
            elif redrive:
                result = self.redrive(machine, name, on_event, running.abort)
            else:
                result = self.launch(machine, running.input_value, name, on_event, running.abort)
            log.info("execution %s %s%s", name, result.status, f": {result.error}" if result.error else "")
        except Exception as error:  # noqa: BLE001 - refused before its first event (e.g. a bad definition)
            running.failure = error
        finally:
            running.started.set()
            with self._lock:
                if self._running.get(arn) is running:
                    del self._running[arn]

    def stop_all(self, timeout: float = 30.0, error: str | None = None, cause: str | None = None) -> None:
        """Abort every execution this backend runs and wait for their ABORTED records (shutdown);
        ``error`` and ``cause`` say why, as StopExecution's do."""
        # An execution waiting on a task token is left as it is on disk, RUNNING with its token: the
        # next `serve` resumes it (resume_waiting), so a restart loses no approval.
        waiting = {record["executionArn"] for record in self.tokens.waiting() if record.get("waiterPid") == os.getpid()}
        with self._lock:
            running = {arn: execution for arn, execution in self._running.items() if arn not in waiting}
        for execution in running.values():
            execution.abort.set()
        for arn, execution in running.items():
            if execution.thread:
                execution.thread.join(timeout)
            parts = parse_execution_arn(arn)
            if parts is not None and (error is not None or cause is not None):
                with contextlib.suppress(exc.StepFunctionsError, FileNotFoundError):
                    machine = self.machines.get(parts.state_machine_arn)
                    self._note_stop(self.layout.execution_dir(machine.name, parts.execution_name), error, cause)

    def resume_waiting(self) -> list[str]:
        """Resume, on threads of this process, every execution whose process ended while it waited
        on a task token (a killed or restarted `serve`, an interrupted `run`), answered meanwhile or
        not; returns their ARNs."""
        if self._resume is None:
            return []
        resumed = []
        for record in self.tokens.orphans():
            arn = record["executionArn"]
            if arn in self._running:
                continue
            try:
                machine = self.machines.get(record["stateMachineName"])
                status = read_execution(self.layout.execution_dir(machine.name, record["executionName"]))["status"]
            except (exc.StateMachineDoesNotExist, FileNotFoundError):
                log.warning("token of %s: its state machine or record is gone; not resumed", arn)
                continue
            if status.get("status") != "RUNNING" or not self.tokens.claim(record["token"]):
                continue  # it ended, or another live process resumed it first
            with self._lock:
                running = self._running[arn] = _Running(None)
                running.thread = threading.Thread(target=self._execute, args=(machine, record["executionName"], arn,
                                                                              running, False, record),
                                                  name=f"execution-{record['executionName']}", daemon=True)
                running.thread.start()
            running.started.wait(10)
            resumed.append(arn)
        return resumed

    # -- callback tasks (.waitForTaskToken) ---------------------------------------------------
    def send_task_success(self, taskToken: Any = None, output: Any = None, **_: Any) -> dict:
        self.tokens.send_success(taskToken, output)
        return {}

    def send_task_failure(self, taskToken: Any = None, error: Any = None, cause: Any = None, **_: Any) -> dict:
        self.tokens.send_failure(taskToken, error, cause)
        return {}

    def send_task_heartbeat(self, taskToken: Any = None, **_: Any) -> dict:
        self.tokens.send_heartbeat(taskToken)
        return {}

    @staticmethod
    def _note_stop(folder: Any, error: Any, cause: Any) -> dict:
        """StopExecution's error and cause are what DescribeExecution and the history report, as on AWS."""
        record = read_execution(folder)
        status = record["status"]
        if status.get("status") == "ABORTED" and (error is not None or cause is not None):
            details = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
            history = record["history"]
            if history and history[-1].get("type") == "ExecutionAborted":
                history[-1]["executionAbortedEventDetails"] = details
            write_history(folder, history, {**status, **details}, record["output"])
            status = {**status, **details}
        return status

    def describe_execution(self, executionArn: Any = None, **_: Any) -> dict:
        machine, _, record = self._execution(executionArn)
        status = record["status"]
        out = _summary(status)
        out["input"], out["inputDetails"] = status.get("input", "{}"), {"included": True}
        if "output" in status:
            out["output"], out["outputDetails"] = status["output"], {"included": True}
        for key in ("error", "cause"):
            if status.get(key) is not None:
                out[key] = status[key]
        reason = self._not_redrivable(machine, executionArn, record)
        out["redriveStatus"] = "REDRIVABLE" if reason is None else "NOT_REDRIVABLE"
        if reason is not None:
            out["redriveStatusReason"] = reason
        return out

    def list_executions(self, stateMachineArn: Any = None, statusFilter: Any = None, mapRunArn: Any = None,
                        maxResults: Any = None, nextToken: Any = None, redriveFilter: Any = None, **_: Any) -> dict:
        if (stateMachineArn is None) == (mapRunArn is None):
            raise exc.ValidationException("give exactly one of stateMachineArn or mapRunArn")
        if mapRunArn is not None:  # a Map Run's child executions
            folder, _ = self._map_run(mapRunArn)
            folders = children_of(folder, parse_map_run_arn(mapRunArn).run_id)
        else:
            machine = self._machine(stateMachineArn)
            root = self.layout.executions_dir(machine.name)
            folders = sorted(root.iterdir()) if root.is_dir() else []
        rows = []
        for execution in folders:
            try:
                status = self._read(execution)["status"]
            except FileNotFoundError:
                continue
            if statusFilter and status.get("status") != statusFilter:
                continue
            if redriveFilter == "REDRIVEN" and not status.get("redriveCount"):
                continue
            if redriveFilter == "NOT_REDRIVEN" and status.get("redriveCount"):
                continue
            rows.append(_summary(status))
        rows.sort(key=lambda r: r["startDate"], reverse=True)
        return _page(rows, "executions", maxResults, nextToken)

    # -- redrive -----------------------------------------------------------------------------
    def _not_redrivable(self, machine: StateMachineSpec, arn: str, record: dict) -> str | None:
        """Why AWS would refuse to redrive this execution (its redriveStatusReason), or None."""
        status = record["status"]
        state = "RUNNING" if arn in self._running else status.get("status")
        if state in ("RUNNING", "SUCCEEDED"):
            return f"Execution is {state} and cannot be redriven"
        if status.get("mapRunArn"):
            return "A Map Run's child execution is redriven by redriving its parent execution"
        if machine.type == "EXPRESS":
            return "Executions of EXPRESS state machines cannot be redriven"
        stopped = status.get("stopDate")
        if stopped and datetime.now(UTC) - datetime.fromisoformat(stopped) > REDRIVE_PERIOD:
            return "Execution redrivable period exceeded"
        if len(record["history"]) >= REDRIVE_HISTORY_LIMIT:
            return "Execution history event limit exceeded"
        if not record.get("redrive"):
            return "Execution was started before the launch of RedriveExecution"  # its record holds no redrive point
        return None

    def redrive_execution(self, executionArn: Any = None, clientToken: Any = None, **_: Any) -> dict:
        machine, name, record = self._execution(executionArn)
        if self.redrive is None:
            raise exc.ValidationException("RedriveExecution is not served by this emulator process")
        folder = self.layout.execution_dir(machine.name, name)
        with self._lock:
            reason = self._not_redrivable(machine, executionArn, record)
            if reason is not None:
                raise exc.ExecutionNotRedrivable(executionArn, reason)
            running = self._running[executionArn] = _Running(json.loads(record["status"].get("input", "{}")))
            running.events.extend(record["history"])  # the history goes on from where it stopped
            running.thread = threading.Thread(target=self._execute, args=(machine, name, executionArn, running, True),
                                              name=f"redrive-{name}", daemon=True)
            running.thread.start()
        running.started.wait(10)  # the status record says RUNNING again once ExecutionRedriven is recorded
        if running.failure is not None:
            raise exc.ExecutionNotRedrivable(executionArn, str(running.failure))
        return {"redriveDate": _epoch(read_execution(folder)["status"].get("redriveDate"))}

    # -- Map Runs ----------------------------------------------------------------------------
    def describe_map_run(self, mapRunArn: Any = None, **_: Any) -> dict:
        _, record = self._map_run(mapRunArn)
        out = {key: value for key, value in record.items() if key not in ("label", "stateMachineArn")}
        for key in ("startDate", "stopDate", "redriveDate"):
            if out.get(key):
                out[key] = _epoch(out[key])
        return out

    def list_map_runs(self, executionArn: Any = None, maxResults: Any = None, nextToken: Any = None, **_: Any) -> dict:
        machine, name, _ = self._execution(executionArn)
        folder = self.layout.execution_dir(machine.name, name)
        rows = [{"executionArn": run["executionArn"], "mapRunArn": run["mapRunArn"], "stateMachineArn": run["stateMachineArn"],
                 "startDate": _epoch(run["startDate"]), **({"stopDate": _epoch(run["stopDate"])} if run.get("stopDate") else {})}
                for run in map_runs_of(folder)]
        rows.sort(key=lambda r: r["startDate"], reverse=True)
        return _page(rows, "mapRuns", maxResults, nextToken)

    def get_execution_history(self, executionArn: Any = None, reverseOrder: Any = False,
                              maxResults: Any = None, nextToken: Any = None, **_: Any) -> dict:
        _, _, record = self._execution(executionArn)
        running = self._running.get(executionArn)
        events = list(running.events) if running else record["history"]
        events = [{**e, "timestamp": _epoch(e["timestamp"])} for e in events]
        if reverseOrder:
            events.reverse()
        return _page(events, "events", maxResults, nextToken)

    def stop_execution(self, executionArn: Any = None, error: Any = None, cause: Any = None, **_: Any) -> dict:
        machine, name, record = self._execution(executionArn)
        running = self._running.get(executionArn)
        if running is None:
            if record["status"].get("status") == "RUNNING":
                raise exc.ValidationException(f"Execution '{executionArn}' is not running in this emulator process "
                                              "(another one runs it, or it was killed): stop it there")
            return {"stopDate": _epoch(record["status"].get("stopDate"))}  # already ended: AWS answers too
        running.abort.set()
        if running.thread:
            running.thread.join(30)
        status = self._note_stop(self.layout.execution_dir(machine.name, name), error, cause)
        stopped = status.get("stopDate")
        return {"stopDate": _epoch(stopped) if stopped else datetime.now().timestamp()}


def _same_input(recorded: Any, input_value: Any) -> bool:
    try:
        return json.loads(recorded or "{}") == input_value
    except (TypeError, ValueError):
        return False


def _summary(status: dict) -> dict:
    """An execution's ListExecutions row (DescribeExecution adds input, output, error, cause)."""
    out = {k: status[k] for k in ("executionArn", "stateMachineArn", "name", "status")}
    out["startDate"] = _epoch(status["startDate"])
    if status.get("stopDate"):
        out["stopDate"] = _epoch(status["stopDate"])
    if status.get("mapRunArn"):
        out["mapRunArn"] = status["mapRunArn"]
    out["redriveCount"] = int(status.get("redriveCount", 0))
    if status.get("redriveDate"):
        out["redriveDate"] = _epoch(status["redriveDate"])
    return out


def _page(rows: list, key: str, max_results: Any, next_token: Any) -> dict:
    try:
        page, token = paginate(rows, next_token, max_results, default_size=100, max_size=1000)
    except InvalidNextToken:
        raise exc.InvalidToken(next_token) from None
    except (ValueError, TypeError) as error:
        raise exc.ValidationException(str(error)) from None
    out: dict = {key: page}
    if token:
        out["nextToken"] = token
    return out
