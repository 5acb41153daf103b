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
)
from emulator.asl.interpret import run_block
from emulator.asl.parse import StateMachine, parse_definition
from emulator.asl.ports import Integrations
from emulator.asl.redrive import Redrive, resume_of
from emulator.asl.redrive import save as save_redrive
from emulator.aws.arns import ACCOUNT, DEFAULT_REGION, parse_state_machine_arn
from emulator.aws.arns import execution_arn as make_execution_arn
from emulator.aws.arns import state_machine_arn as make_state_machine_arn
from emulator.storage.executions import Journal, claim, finish, reclaim, restart_journal

log = logging.getLogger(__name__)



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
    redrive: Redrive | None = None,
) -> ExecutionResult:
    """Run a definition to the end and return how it ended.

    ``input`` is the execution input as a JSON value (None means ``{}``). ``time_scale`` multiplies
    Wait and Retry intervals (0 = never sleep; Task timeouts then count in real time). ``rng`` and
    ``id_generator`` (task tokens) make jitter, States.UUID/MathRandom and tokens deterministic.
    Setting ``abort`` (from another thread: StopExecution) stops running tasks and ends the run
    as ABORTED. ``virtual_clock=False`` records wall-clock times only (skipped Wait/Retry time is
    not added). ``state_machine_arn`` (a deployed machine's) sets the region and account of the
    execution ARN; without it they are the local defaults (emulator.aws.arns).
    With ``history_dir`` the execution is recorded there as it runs (storage.executions: claimed,
    each event journaled, finished); a folder that already holds an execution raises
    ExecutionExists before anything runs.
    ``redrive`` (``Redrive.load(history_dir)``) continues that failed execution instead: its recorded
    definition and input, from the state that failed, appending to its history (asl/redrive.py).
    A continuation (``Redrive.continuing``) goes on with a RUNNING execution whose process ended while
    a top-level Task waited on a task token: at that Task, on the same token, with no ExecutionRedriven.
    Raises DefinitionError before running if the definition is invalid; every run-time problem ends
    as a FAILED/TIMED_OUT result instead.
    """
    if redrive is not None:
        definition, input = redrive.definition, redrive.input
    definition_text = definition if isinstance(definition, str) else None
    machine = definition if isinstance(definition, StateMachine) else parse_definition(definition)
    if time_scale < 0:
        raise ValueError("time_scale must be >= 0")
    clock = clock or (lambda: datetime.now(UTC))
    rng = rng or random.Random()
    new_id = id_generator or (lambda: str(uuid.uuid4()))
    if redrive is not None and redrive.continuation:
        new_id = _first(redrive.token, new_id)  # the Task it waited in waits on its old token
    data = _json_value({} if input is None else input)
    # A deployed state machine's ARN fixes the region and account its executions report.
    region, account = DEFAULT_REGION, ACCOUNT
    if state_machine_arn:
        parsed = parse_state_machine_arn(state_machine_arn)
        if parsed is None:
            raise ValueError(f"state_machine_arn {state_machine_arn!r} is not a state machine ARN")
        region, account, state_machine_name = parsed
    state_machine_arn = make_state_machine_arn(state_machine_name, region=region, account=account)
    execution_arn = make_execution_arn(state_machine_arn, execution_name)
    role = role_arn or f"arn:aws:iam::{account}:role/{state_machine_name}-role"
    start = clock()
    timeout = execution_timeout_seconds if execution_timeout_seconds is not None else machine.timeout_seconds
    status_record = {
        "executionArn": execution_arn,
        "stateMachineArn": state_machine_arn,
        "name": execution_name,
        "status": "RUNNING",
        "startDate": format_timestamp(start),
        "input": to_json(data),
    }
    if redrive is not None and redrive.continuation:  # the same run going on: its record as it was
        status_record.update({k: v for k, v in redrive.status.items() if k in ("startDate", "redriveCount", "redriveDate")})
    elif redrive is not None:  # the same execution again: its start date, a redrive count and date
        status_record.update(startDate=redrive.status["startDate"], redriveCount=redrive.count,
                             redriveDate=format_timestamp(start))
    journal = None
    if history_dir is not None:
        if redrive is not None:  # its record exists: this process owns it again, its journal goes on
            reclaim(Path(history_dir), status_record)
            if redrive.continuation:  # the waiting state's own events are recorded again as it re-enters
                restart_journal(Path(history_dir), redrive.history)
        else:  # the record exists before the first event, and a second execution of the name is refused here
            claim(Path(history_dir), status_record, definition if isinstance(definition, str | dict) else None)
        journal = Journal(Path(history_dir))
    history = History(clock, on_event, virtual_clock, journal=journal.append if journal else None)
    if redrive is not None:
        history.events.extend(redrive.history)  # recorded already: not journaled again
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
        record_dir=Path(history_dir) if history_dir is not None else None,
        redrive_count=redrive.count if redrive is not None else 0,
    )
    frame = Frame(Cursor(history.events[-1]["id"] if history.events else 0), (ex.stop,))
    if redrive is not None:
        ex.execution_context["StartTime"] = redrive.status["startDate"]
        if not redrive.continuation:
            history.add(frame.cursor, "ExecutionRedriven", {"redriveCount": redrive.count})
    else:
        history.add(
            frame.cursor,
            "ExecutionStarted",
            {"input": to_json(data), "inputDetails": {"truncated": False}, "roleArn": role},
        )
    output: Any = None
    error: str | None = None
    cause: str | None = None
    failure: BaseException | None = None  # where a redrive would pick up
    try:
        output = run_block(ex, machine, data, frame, redrive.resume if redrive is not None else None)
        status = "SUCCEEDED"
        history.add(frame.cursor, "ExecutionSucceeded", {"output": to_json(output), "outputDetails": {"truncated": False}})
    except StatesError as err:
        status, error, cause, failure = "FAILED", err.name or None, err.cause, err
        history.add(frame.cursor, "ExecutionFailed", _error_details(error, cause))
    except ExecutionTimedOut as exc:
        ex.stop.set()
        status, error, cause, failure = "TIMED_OUT", TIMEOUT, exc.cause, exc
        history.add(frame.cursor, "ExecutionTimedOut", _error_details(error, cause))
    except Cancelled as exc:
        status, error, cause, failure = "ABORTED", None, "The execution was stopped", exc
        history.add(frame.cursor, "ExecutionAborted", {"cause": cause})
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: leave a record of the stopped run, then stop
        ex.stop.set()
        cause = str(interrupt) or "interrupted by the user (Ctrl-C)"
        history.add(frame.cursor, "ExecutionAborted", {"error": "KeyboardInterrupt", "cause": cause})
        if history_dir is not None:
            aborted = ExecutionResult("ABORTED", None, "KeyboardInterrupt", cause, list(history.events), execution_arn)
            _record(Path(history_dir), status_record, aborted, format_timestamp(history.now(frame.cursor)))
        if journal is not None:
            journal.close()
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
        if definition_text is not None or isinstance(definition, dict):
            text = definition_text if definition_text is not None else json.dumps(definition)
            save_redrive(Path(history_dir), text, data, resume_of(failure) if failure is not None else None)
    if journal is not None:
        journal.close()
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
        finish(folder, result.history, status, result.output)
    except OSError:
        log.exception("could not write the history of %s to %s", result.execution_arn, folder)
