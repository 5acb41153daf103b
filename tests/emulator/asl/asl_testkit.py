"""Small helpers for the ASL tests: a fixed clock, scripted fake integrations, definition builders."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from emulator.asl import run_definition
from emulator.asl.errors import StatesError
from emulator.asl.ports import (
    Integration,
    Integrations,
    TaskOutcome,
    TaskRequest,
)

T0 = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def fixed_clock() -> datetime:
    return T0


def run(definition: dict, input: Any = None, **kwargs: Any):
    kwargs.setdefault("clock", fixed_clock)
    kwargs.setdefault("rng", random.Random(7))
    counter = iter(range(1, 1_000_000))
    kwargs.setdefault("id_generator", lambda: f"token-{next(counter)}")
    return run_definition(definition, input, **kwargs)


def chain(*states: tuple[str, dict]) -> dict:
    """A definition running the given (name, state) pairs in order; Next/End are filled in."""
    out = {}
    for i, (name, state) in enumerate(states):
        state = dict(state)
        if state["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in state and "End" not in state:
            if i + 1 < len(states):
                state["Next"] = states[i + 1][0]
            else:
                state["End"] = True
        out[name] = state
    return {"StartAt": states[0][0], "States": out}


def types(result) -> list[str]:
    return [event["type"] for event in result.history]


class Scripted(Integration):
    """Answers each start() from a script: a value (the output), a StatesError (raised) or
    ('slow', seconds, value) to finish only after that many wall seconds."""

    def __init__(self, *script: Any):
        self.script = list(script)
        self.requests: list[TaskRequest] = []
        self.stopped: list[Any] = []
        self.lock = threading.Lock()

    def start(self, request: TaskRequest) -> Any:
        with self.lock:
            self.requests.append(request)
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, StatesError):
            raise step
        if isinstance(step, tuple) and step and step[0] == "slow":
            return {"until": time.monotonic() + step[1], "value": step[2]}
        if callable(step):
            return {"until": 0, "value": step(request)}
        return {"until": 0, "value": step}

    def poll(self, handle: Any) -> TaskOutcome | None:
        if time.monotonic() < handle["until"]:
            return None
        return TaskOutcome(handle["value"])

    def stop(self, handle: Any) -> None:
        self.stopped.append(handle)

    def poll_interval(self, handle: Any) -> float:
        return 0.005


def registry(by_key: dict[str, Integration]) -> Integrations:
    reg = Integrations()
    for key, integration in by_key.items():
        reg.register(key, integration)
    return reg
