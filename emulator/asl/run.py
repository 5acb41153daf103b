"""run_definition: parse, run and record one execution; the API the CLI and tests call."""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.asl.errors import RUNTIME, TIMEOUT, StatesError
from emulator.asl.execution import Cancelled, Execution, ExecutionTimedOut, Frame
from emulator.asl.history import (
    Cursor,
    History,
    format_timestamp,
    to_json,
    write_history,
    write_status,
)
from emulator.asl.interpret import run_block
from emulator.asl.parse import StateMachine, parse_definition
from emulator.asl.ports import Integrations
from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.aws.arns import execution_arn as make_execution_arn
from emulator.aws.arns import state_machine_arn as make_state_machine_arn

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Resume:
    """Where a resumed execution continues: the top-level Task state that was waiting on ``token``
    when its process ended, run again from its recorded input with the same token (the integration
    does not send its request twice); ``events`` is the history before that state was entered."""

    state_name: str
    input: Any
    token: str
    events: list[dict]
    start: datetime

    @classmethod
    def from_history(cls, events: list[dict], state_name: str, token: str, start: datetime) -> Resume:
        """The point to resume at from a checkpointed history: the last entry into ``state_name``."""
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == state_name:
                data = json.loads(event["stateEnteredEventDetails"].get("input") or "{}")
                return cls(state_name, data, token, list(events[:index]), start)
        raise ValueError(f"the history does not show state {state_name!r} being entered; it cannot be resumed")


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    output: Any
    error: str | None
    cause: str | None
    history: list[dict]
    execution_arn: str


def run_definition(
    definition: dict | str | StateMachine,
    input: Any = None,
    *,
    integrations: Integrations | None = None,
    execution_name: str = "local",
    state_machine_name: str = "local",
    role_arn: str | None = None,
    time_scale: float = 0.0,
    clock: Callable[[], datetime] | None = None,
    history_dir: Path | None = None,
    on_event: Callable[[dict], None] | None = None,
    execution_timeout_seconds: float | None = None,
    rng: random.Random | None = None,
    id_generator: Callable[[], str] | None = None,
    abort: threading.Event | None = None,
    state_machine_arn: str | None = None,
    virtual_clock: bool = True,
    resume: Resume | None = None,
) -> ExecutionResult:
    """Run a definition to the end and return how it ended.

    ``input`` is the execution input as a JSON value (None means ``{}``). ``time_scale`` multiplies
    Wait and Retry intervals (0 = never sleep; Task timeouts then count in real time). ``rng`` and
    ``id_generator`` (task tokens) make jitter, States.UUID/MathRandom and tokens deterministic.
    Setting ``abort`` (from another thread: StopExecution) stops running tasks and ends the run
    as ABORTED. ``virtual_clock=False`` records wall-clock times only (skipped Wait/Retry time is
    not added). ``state_machine_arn`` (a deployed machine's) sets the region and account of the
    execution ARN; without it they are the local defaults (emulator.aws.arns).
    ``resume`` continues an execution at a top-level Task state that waited on a task token (see
    Resume): its earlier events are kept, no second ExecutionStarted is recorded.
    Raises DefinitionError before running if the definition is invalid; every run-time problem ends
    as a FAILED/TIMED_OUT result instead.
    """
    machine = definition if isinstance(definition, StateMachine) else parse_definition(definition)
    if time_scale < 0:
        raise ValueError("time_scale must be >= 0")
    clock = clock or (lambda: datetime.now(UTC))
    rng = rng or random.Random()
    new_id = id_generator or (lambda: str(uuid.uuid4()))
    if resume is not None:
        if resume.state_name not in machine.states:
            raise ValueError(f"state {resume.state_name!r} is not a top-level state: only a wait at the top level "
                             f"can be resumed")
        new_id = _first(resume.token, new_id)  # the resumed Task waits on its old token
    data = _json_value({} if input is None else input)
    # A deployed state machine's ARN fixes the region and account its executions report.
    region, account = DEFAULT_REGION, ACCOUNT
    if state_machine_arn:
        parts = state_machine_arn.split(":")
        if len(parts) < 7 or parts[5] != "stateMachine":
            raise ValueError(f"state_machine_arn {state_machine_arn!r} is not a state machine ARN")
        region, account, state_machine_name = parts[3], parts[4], parts[6]
    state_machine_arn = make_state_machine_arn(state_machine_name, region=region, account=account)
    execution_arn = make_execution_arn(state_machine_arn, execution_name)
    role = role_arn or f"arn:aws:iam::{account}:role/{state_machine_name}-role"
    history = History(clock, on_event, virtual_clock)
    start = clock()
    if resume is not None:
        history.events.extend(resume.events)
        start = resume.start
    timeout = execution_timeout_seconds if execution_timeout_seconds is not None else machine.timeout_seconds
    ex = Execution(
        machine=machine,
        integrations=integrations,
        history=history,
        rng=rng,
        new_id=new_id,
        time_scale=time_scale,
        execution_arn=execution_arn,
        execution_name=execution_name,
        state_machine_arn=state_machine_arn,
        state_machine_name=state_machine_name,
        role_arn=role,
        region=region,
        input=data,
        start=start,
        start_text=format_timestamp(start),
        timeout_seconds=timeout,
        stop=abort if abort is not None else threading.Event(),
    )
    frame = Frame(Cursor(len(history.events)), (ex.stop,))
    status_record = {
        "executionArn": execution_arn,
        "stateMachineArn": state_machine_arn,
        "name": execution_name,
        "status": "RUNNING",
        "startDate": ex.start_text,
        "input": to_json(data),
    }
    if history_dir is not None:
        write_status(Path(history_dir), status_record)
    if resume is None:
        history.add(
            frame.cursor,
            "ExecutionStarted",
            {"input": to_json(data), "inputDetails": {"truncated": False}, "roleArn": role},
        )
    output: Any = None
    error: str | None = None
    cause: str | None = None
    try:
        if resume is None:
            output = run_block(ex, machine, data, frame)
        else:
            output = run_block(ex, machine, _json_value(resume.input), frame, start_at=resume.state_name)
        status = "SUCCEEDED"
        history.add(frame.cursor, "ExecutionSucceeded", {"output": to_json(output), "outputDetails": {"truncated": False}})
    except StatesError as err:
        status, error, cause = "FAILED", err.name or None, err.cause
        history.add(frame.cursor, "ExecutionFailed", _error_details(error, cause))
    except ExecutionTimedOut as exc:
        ex.stop.set()
        status, error, cause = "TIMED_OUT", TIMEOUT, exc.cause
        history.add(frame.cursor, "ExecutionTimedOut", _error_details(error, cause))
    except Cancelled:
        status, error, cause = "ABORTED", None, "The execution was stopped"
        history.add(frame.cursor, "ExecutionAborted", {"cause": cause})
    except KeyboardInterrupt:  # leave a record of the interrupted run, then let the caller stop
        ex.stop.set()
        history.add(frame.cursor, "ExecutionAborted", {"error": "KeyboardInterrupt", "cause": "interrupted by the user"})
        if history_dir is not None:
            aborted = ExecutionResult("ABORTED", None, "KeyboardInterrupt", "interrupted by the user", list(history.events), execution_arn)
            _record(Path(history_dir), status_record, aborted, format_timestamp(history.now(frame.cursor)))
        raise
    except Exception as exc:  # an emulator bug: still a result, with the reason, never a traceback
        log.exception("execution %s crashed", execution_arn)
        status, error, cause = "FAILED", RUNTIME, f"Internal emulator error: {type(exc).__name__}: {exc}"
        history.add(frame.cursor, "ExecutionFailed", _error_details(error, cause))
    result = ExecutionResult(
        status=status,
        output=output,
        error=error,
        cause=cause,
        history=list(history.events),
        execution_arn=execution_arn,
    )
    if history_dir is not None:
        _record(Path(history_dir), status_record, result, format_timestamp(history.now(frame.cursor)))
    return result


def _first(value: str, then: Callable[[], str]) -> Callable[[], str]:
    """An id generator that answers ``value`` once, then ``then()``."""
    pending = [value]
    return lambda: pending.pop() if pending else then()


def _json_value(value: Any) -> Any:
    """A private plain-JSON copy of the execution input; anything else is the caller's mistake."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the execution input must be JSON-serialisable: {exc}") from None


def _error_details(error: str | None, cause: str | None) -> dict:
    details = {}
    if error:
        details["error"] = error
    if cause is not None:
        details["cause"] = cause
    return details


def _record(folder: Path, status_record: dict, result: ExecutionResult, stop_date: str) -> None:
    status = {**status_record, "status": result.status, "stopDate": stop_date}
    if result.status == "SUCCEEDED":
        status["output"] = to_json(result.output)
    if result.error is not None:
        status["error"] = result.error
    if result.cause is not None:
        status["cause"] = result.cause
    try:
        write_history(folder, result.history, status, result.output)
    except OSError:
        log.exception("could not write the history of %s to %s", result.execution_arn, folder)
