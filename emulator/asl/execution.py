"""One execution's fixed facts and each thread of control's place in it.

``Execution`` holds what stays the same for a run (the parsed machine, integrations, clock,
randomness, ARNs, time scale, timeout) and the helpers every handler shares: the context object,
State*Entered/Exited events, scaled sleeping on a virtual clock. ``Frame`` is one thread of
control (the top level, a Parallel branch, a Map iteration): its history cursor and the events that
cancel it.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator.asl import model
from emulator.asl.errors import DATA_LIMIT_EXCEEDED, StatesError
from emulator.asl.history import Cursor, History
from emulator.asl.paths import Env
from emulator.asl.ports import Integrations
from emulator.asl.variables import Scope

PAYLOAD_LIMIT = 262_144  # bytes: AWS's quota for a state's input, output and task results
_POLL_SLICE = 0.05  # wall seconds between cancellation checks while sleeping


class Cancelled(Exception):
    """A sibling branch failed (or the execution ended): stop this branch quietly."""


class ExecutionTimedOut(Exception):
    """The execution's TimeoutSeconds passed."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


@dataclass
class Frame:
    """One thread of control: its history cursor, the cancellation signals that concern it and its
    variable scope (a Parallel branch or Map iteration reads its parent's variables, assigns its own)."""

    cursor: Cursor
    cancels: tuple[threading.Event, ...]
    scope: Scope = field(default_factory=Scope)
    resume: dict | None = None  # redrive: the progress of the Parallel/Map this frame picks up in

    def take_resume(self) -> dict | None:
        progress, self.resume = self.resume, None
        return progress

    def child(self, group: threading.Event | None = None) -> Frame:
        return Frame(self.cursor.child(), self.cancels + ((group,) if group is not None else ()), self.scope.child())

    def cancelled(self) -> bool:
        return any(event.is_set() for event in self.cancels)


@dataclass
class Execution:
    """Everything that stays fixed for one run; handlers read it, never the raw definition."""

    machine: model.StateMachine
    integrations: Integrations | None
    history: History
    rng: random.Random
    new_id: Callable[[], str]
    time_scale: float
    execution_arn: str
    execution_name: str
    state_machine_arn: str
    state_machine_name: str
    role_arn: str
    region: str
    input: Any
    start: datetime
    start_text: str
    timeout_seconds: float | None
    stop: threading.Event
    record_dir: Path | None = None  # the execution's record folder (Map Runs are recorded under it)
    redrive_count: int = 0

    def __post_init__(self) -> None:
        self.execution_context = {
            "Id": self.execution_arn,
            "Input": self.input,
            "Name": self.execution_name,
            "RoleArn": self.role_arn,
            "StartTime": self.start_text,
            "RedriveCount": self.redrive_count,
        }
        self.state_machine_context = {"Id": self.state_machine_arn, "Name": self.state_machine_name}

    # -- time ----------------------------------------------------------------------------------------

    def elapsed(self, frame: Frame) -> float:
        return (self.history.now(frame.cursor) - self.start).total_seconds()

    def check(self, frame: Frame) -> None:
        """Between states: stop if a sibling failed or the execution timed out."""
        if frame.cancelled():
            raise Cancelled()
        if self.timeout_seconds is not None and self.elapsed(frame) > self.timeout_seconds:
            raise ExecutionTimedOut(f"The execution exceeded its TimeoutSeconds of {self.timeout_seconds:g}")

    def budget(self, seconds: float) -> float:
        """Wall seconds a task timeout of ``seconds`` stands for. A task does real work (a process,
        a job) that a time scale below 1 does not speed up, so its timeout is never shortened."""
        return seconds * max(self.time_scale, 1.0)

    def sleep(self, seconds: float, frame: Frame) -> None:
        """Wait ``seconds`` of workflow time: time_scale of it for real, the rest on the virtual clock."""
        if seconds <= 0:
            return
        if self.timeout_seconds is not None:
            remaining = self.timeout_seconds - self.elapsed(frame)
            if seconds > remaining:
                self._sleep_wall(max(remaining, 0.0) * self.time_scale, frame)
                frame.cursor.offset += max(remaining, 0.0) * (1 - self.time_scale)
                raise ExecutionTimedOut(f"The execution exceeded its TimeoutSeconds of {self.timeout_seconds:g}")
        slept = self._sleep_wall(seconds * self.time_scale, frame)
        frame.cursor.offset += max(seconds - slept, 0.0)

    def _sleep_wall(self, wall: float, frame: Frame) -> float:
        if wall <= 0:
            return 0.0
        begin = time.monotonic()
        deadline = begin + wall
        while True:
            if frame.cancelled():
                raise Cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                return time.monotonic() - begin
            time.sleep(min(left, _POLL_SLICE))

    # -- context object and events -------------------------------------------------------------------

    def context(self, state: model.State, entered: str, retry_count: int = 0, token: str | None = None,
                item: tuple[int, Any] | None = None) -> dict:
        ctx: dict[str, Any] = {
            "Execution": self.execution_context,
            "State": {"EnteredTime": entered, "Name": state.name, "RetryCount": retry_count},
            "StateMachine": self.state_machine_context,
        }
        if token is not None:
            ctx["Task"] = {"Token": token}
        if item is not None:
            ctx["Map"] = {"Item": {"Index": item[0], "Value": item[1]}}
        return ctx

    def env(self, state: model.State, data: Any, frame: Frame, entered: str, retry_count: int = 0,
            token: str | None = None) -> Env:
        """What the state's paths and expressions read: its input, $$ (built on demand), its variables."""
        return Env(data, lambda: self.context(state, entered, retry_count, token), self.rng, frame.scope)

    def enter(self, state: model.State, data: Any, frame: Frame) -> str:
        event = self.history.add(
            frame.cursor,
            f"{state.type}StateEntered",
            {"name": state.name, "input": payload_json(data, f"The input of state {state.name!r}"), "inputDetails": {"truncated": False}},
        )
        return event["timestamp"]

    def exit(self, state: model.State, output: Any, frame: Frame) -> None:
        details = {"name": state.name, "output": payload_json(output, f"The output of state {state.name!r}"), "outputDetails": {"truncated": False}}
        assigned = frame.scope.take_assigned()
        if assigned:  # AWS lists the state's assignments on its Exited event, values as JSON text
            details["assignedVariables"] = {name: json.dumps(value, separators=(",", ":"), ensure_ascii=False) for name, value in assigned.items()}
            details["assignedVariablesDetails"] = {"truncated": False}
        self.history.add(frame.cursor, f"{state.type}StateExited", details)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def payload_json(value: Any, what: str) -> str:
    """Compact JSON of a state's data, enforcing AWS's payload quota (States.DataLimitExceeded)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=json_default)
    if len(text) > PAYLOAD_LIMIT // 4:
        size = len(text.encode())
        if size > PAYLOAD_LIMIT:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"{what} is {size} bytes, more than the {PAYLOAD_LIMIT}-byte payload quota of Step Functions; "
                "pass large data through S3 and keep references in the state",
            )
    return text
