"""What a person sees of an execution: one line per state as it runs, and how it ended."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.runtime import Runtime
from emulator.services.stepfunctions.machines import StateMachineSpec


@dataclass
class Progress:
    """Turns history events into one line per state: start, done (with seconds), retry, failure."""

    write: Callable[[str], None] = print
    started: float = field(default_factory=time.monotonic)
    entered: dict[str, float] = field(default_factory=dict)
    state_of: dict[int, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    last_failure: tuple[str, str, str] | None = None  # (state, error, cause) of the last task failure
    last_entered: str = ""  # "<name> (<type>)" of the last state entered

    def _line(self, verb: str, text: str) -> None:
        self.write(f"{time.monotonic() - self.started:8.1f}s  {verb:<7} {text}")

    def __call__(self, event: dict) -> None:
        kind = event.get("type", "")
        state = self.state_of.get(event.get("previousEventId") or 0, "")
        if kind.endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
            self.last_entered = f"{state} ({kind.removesuffix('StateEntered')})"
            self.entered[state] = time.monotonic()
            self.attempts[state] = 0
            self._line("start", state)
        elif kind.endswith("StateExited"):
            state = event["stateExitedEventDetails"]["name"]
            elapsed = time.monotonic() - self.entered.pop(state, time.monotonic())
            self._line("done", f"{state}  {elapsed:.2f}s")
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            self.attempts[state] = self.attempts.get(state, 0) + 1
            if self.attempts[state] > 1:
                self._line("retry", f"{state}  attempt {self.attempts[state]}")
        elif kind in ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut",
                      "LambdaFunctionStartFailed", "TaskStartFailed", "TaskSubmitFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            error, cause = details.get("error", ""), details.get("cause", "")
            if not kind.startswith("Lambda") or not self.last_failure or self.last_failure[0] != state:
                self._line("failed", f"{state}  {error}: {_short(cause)}")
            self.last_failure = (state, error, cause)
        elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded"):
            if self.last_failure and self.last_failure[0] == state:
                self.last_failure = None  # a retry succeeded: that failure did not end anything
        elif kind in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "ExecutionSucceeded"):
            self._line(kind.removeprefix("Execution").lower(), "execution")
        if event.get("id") is not None:
            self.state_of[event["id"]] = state


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(runtime: Runtime, machine: StateMachineSpec, name: str, result: Any, progress: Progress,
              elapsed: float) -> int:
    folder = runtime.execution_dir(machine.name, name)
    print("output:")
    print(json.dumps(result.output, indent=2, default=str) if result.status == "SUCCEEDED" else "  (none)")
    print(f"status: {result.status} in {elapsed:.1f}s  ({machine.name}/{name})")
    print(f"history: {folder}")
    logs = folder / "logs"
    if logs.is_dir():
        print(f"lambda logs: {logs}")
    outbox = runtime.layout.outbox_dir
    if outbox.is_dir():
        for file in sorted(outbox.glob("*.jsonl")):
            count = sum(1 for line in file.read_text().splitlines() if line.strip())
            print(f"outbox: {file} ({count} message(s))")
    if result.status == "SUCCEEDED":
        return 0
    if progress.last_failure:
        state, error, cause = progress.last_failure
        print(f"failed state: {state}\n  error: {error}\n  cause: {cause}")
    elif progress.last_entered:  # failed by a Fail state (e.g. after a Choice), not by a task
        print(f"failed state: {progress.last_entered}\n  error: {result.error}\n  cause: {result.cause}")
    print(f"execution {result.status}: {result.error}: {result.cause}")
    return 1
