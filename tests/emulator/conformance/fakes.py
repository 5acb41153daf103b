"""Scripted fake integrations for the conformance corpus.

A case's ``tasks`` maps a script key to a list of outcomes. The key is looked up, in order, as the
Task state's name, its Resource ARN exactly as written, then its resource key ("lambda:invoke",
"lambda:function"). Outcomes are consumed front to back, one per call (retries included), so a
retry case scripts ``[error, error, return]``. An outcome is one of:

  {"return": <value>}                  the task's raw result
  {"echo": true}                       the result is the task's effective input (its parameters)
  {"error": "<Name>", "cause": "..."}  the task fails with StatesError(name, cause)

and may add ``"sleep": <seconds>`` (wall clock, before completing: a task that outlives its
TimeoutSeconds is stopped by the interpreter) or ``"when": <value>`` (used only when the task's
parameters equal the value; never consumed, so Map iterations running in any order get the same
answer). A call with nothing left to answer fails with ``Fake.NoScript`` so a miscounted script
shows up as a wrong error instead of a hang.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest

# Every key a case's Task states may use; all of them route to the same scripted fake.
FAKE_KEYS = ("lambda:invoke", "lambda:function", "sagemaker:createTrainingJob.sync")


@dataclass
class _Call:
    outcome: dict
    parameters: Any
    started: float
    stopped: bool = False
    finished: bool = False


@dataclass
class ScriptedIntegration(Integration):
    """Answers Task states from per-state scripts and records every call it receives."""

    scripts: dict[str, list[dict]]
    calls: list[TaskRequest] = field(default_factory=list)
    max_in_flight: int = 0  # the most calls that were running at once (checks MaxConcurrency)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.scripts = {key: list(outcomes) for key, outcomes in self.scripts.items()}

    def start(self, request: TaskRequest) -> _Call:
        with self._lock:
            self.calls.append(request)
            outcome = self._next_outcome(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return _Call(outcome=outcome, parameters=copy.deepcopy(request.parameters), started=time.monotonic())

    def poll(self, handle: _Call) -> TaskOutcome | None:
        if handle.stopped:
            return None
        if time.monotonic() - handle.started < float(handle.outcome.get("sleep", 0)):
            return None
        self._finish(handle)
        outcome = handle.outcome
        if "error" in outcome:
            raise StatesError(outcome["error"], outcome.get("cause"))
        if outcome.get("echo"):
            return TaskOutcome(output=handle.parameters)
        return TaskOutcome(output=copy.deepcopy(outcome.get("return")))

    def stop(self, handle: _Call) -> None:
        handle.stopped = True
        self._finish(handle)

    def _finish(self, handle: _Call) -> None:
        with self._lock:
            if not handle.finished:
                handle.finished = True
                self._in_flight -= 1

    def poll_interval(self, handle: _Call) -> float:
        return 0.01

    def call_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for request in self.calls:
            counts[request.state_name] = counts.get(request.state_name, 0) + 1
        return counts

    def _next_outcome(self, request: TaskRequest) -> dict:
        for key in (request.state_name, request.resource, request.key):
            outcomes = self.scripts.get(key)
            if outcomes is None:
                continue
            for outcome in outcomes:
                if "when" in outcome and outcome["when"] == request.parameters:
                    return outcome
            for index, outcome in enumerate(outcomes):
                if "when" not in outcome:
                    return outcomes.pop(index)
            break
        return {"error": "Fake.NoScript", "cause": f"no scripted outcome left for state {request.state_name!r}"}


def scripted_integrations(scripts: dict[str, list[dict]] | None) -> tuple[Integrations, ScriptedIntegration]:
    """A registry where every fake key answers from ``scripts``; returns the fake to inspect calls."""
    fake = ScriptedIntegration(scripts or {})
    integrations = Integrations()
    for key in FAKE_KEYS:
        integrations.register(key, fake)
    return integrations, fake
