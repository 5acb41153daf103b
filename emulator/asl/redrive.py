"""Redrive: where a failed execution picks up, captured as it fails and read back when it is redriven.

AWS "Redriving executions": a redrive continues the same execution (same ARN, same definition, same
input) from the state that failed; states that succeeded are not run again, and inside a Parallel
or an inline Map only the branches and iterations that failed or were aborted run again. So a
failure leaving a block (the top level, a branch, an iteration, a Distributed Map child) carries a
``Resume``: the state it failed in, that state's input, the block's own variables, and for a
Parallel or Map the outputs of the branches/iterations that finished and the Resume of each that
did not. run.py writes the top level's Resume to the execution's record (redrive.json) and
``Redrive.load`` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.storage.executions import read_definition, read_execution, write_redrive


@dataclass
class Resume:
    state: str  # the state to run again
    input: Any  # its input
    variables: dict  # the block's own variables before that state
    group: dict | None = None  # Parallel / inline Map: {"done": {i: output}, "resume": {i: Resume JSON}}; Distributed: {"mapRun": ...}

    def to_json(self) -> dict:
        return {"state": self.state, "input": self.input, "variables": self.variables, "group": self.group}

    @classmethod
    def from_json(cls, raw: dict) -> Resume:
        return cls(raw["state"], raw["input"], dict(raw.get("variables") or {}), raw.get("group"))


def attach(err: BaseException, state_name: str, data: Any, variables: dict) -> None:
    """Record on a failure leaving a block where that block picks up; the progress a Parallel or
    Map attached to the error (``group_progress``) goes into it and is consumed."""
    group = getattr(err, "group_progress", None)
    err.group_progress = None  # type: ignore[attr-defined]
    err.resume = Resume(state_name, data, dict(variables), group)  # type: ignore[attr-defined]


def resume_of(err: BaseException) -> Resume | None:
    return getattr(err, "resume", None)


def group_progress(done: dict[int, Any], failed: dict[int, BaseException | None]) -> dict:
    """A Parallel's or Map's progress: finished outputs by index, a Resume (or None: start over) for the rest."""
    resumes = {}
    for index, exc in failed.items():
        resume = resume_of(exc) if exc is not None else None
        resumes[str(index)] = resume.to_json() if resume is not None else None
    return {"done": {str(i): output for i, output in done.items()}, "resume": resumes}


@dataclass
class Redrive:
    """A failed execution's record, ready to run again: what run_definition(redrive=...) takes."""

    definition: str  # the definition the execution ran (a redrive never picks up a newer one)
    input: Any
    resume: Resume
    history: list[dict]  # the events so far; the redrive appends to them
    status: dict  # the status record (startDate, name, ARNs)
    count: int  # this redrive's number (1 for the first)
    extra: dict = field(default_factory=dict)
    # A continuation is no redrive: the execution never ended, its process did while a Task waited
    # on ``token``; it goes on at that Task, on the same token, without ExecutionRedriven.
    token: str | None = None

    @property
    def continuation(self) -> bool:
        return self.token is not None

    @classmethod
    def continuing(cls, folder: Path, state_name: str, token: str, definition: str) -> Redrive:
        """The execution recorded RUNNING in ``folder``, to go on at the top-level Task ``state_name``
        that waited on ``token``: from that state's last entry in its journal, with the variables its
        states had assigned before it. ValueError when the journal does not show that entry."""
        record = read_execution(folder)
        events = record["history"]
        for index in range(len(events) - 1, -1, -1):
            details = events[index].get("stateEnteredEventDetails") or {}
            if events[index]["type"] == "TaskStateEntered" and details.get("name") == state_name:
                variables: dict = {}
                for event in events[:index]:  # top-level assignments, in order (a branch's stay in the branch)
                    assigned = (event.get("stateExitedEventDetails") or {}).get("assignedVariables") or {}
                    variables.update({name: json.loads(value) for name, value in assigned.items()})
                status = record["status"]
                return cls(definition=read_definition(folder) or definition, input=json.loads(status.get("input") or "{}"),
                           resume=Resume(state_name, json.loads(details.get("input") or "null"), variables),
                           history=events[:index], status=status, count=int(status.get("redriveCount", 0)), token=token)
        raise ValueError(f"the journal of {folder.name} does not show state {state_name!r} being entered")

    @classmethod
    def load(cls, folder: Path) -> Redrive:
        """The redrive of the execution recorded in ``folder``; ValueError when it holds no redrive point."""
        record = read_execution(folder)
        point = record.get("redrive")
        if not point:
            raise ValueError(f"{folder} holds no redrive point: the execution succeeded, is running, or was "
                             "recorded by an emulator without redrive")
        status = record["status"]
        return cls(definition=point["definition"], input=point["input"], resume=Resume.from_json(point["resume"]),
                   history=record["history"], status=status, count=int(status.get("redriveCount", 0)) + 1)


def save(folder: Path, definition: str, input: Any, resume: Resume | None) -> None:
    """The redrive point of an execution that did not succeed (or none: it cannot be redriven)."""
    write_redrive(folder, None if resume is None else {"definition": definition, "input": input, "resume": resume.to_json()})
