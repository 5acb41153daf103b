"""What a person sees of an execution: one short line per state that did something, decisions as
decisions, polling loops collapsed into one line, and how it ended — the failure said once."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.runtime import Runtime
from emulator.services.stepfunctions.machines import StateMachineSpec

# Never wider than this, whatever the terminal says (logs are read in editors and CI pages too).
MAX_WIDTH = 200
_FAILED = ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut",
           "LambdaFunctionStartFailed", "TaskStartFailed", "TaskSubmitFailed")
_QUIET_TYPES = ("Pass", "Wait", "Succeed")  # plumbing: shown only when they repeat (a polling loop)


def line_width() -> int:
    return min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns)


def clip(text: str, width: int | None = None) -> str:
    """One line: whitespace folded, cut with an ellipsis at ``width``."""
    width = width or line_width()
    text = " ".join(str(text).splitlines())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class _Repeat:
    count: int = 0
    seconds: float = 0.0


@dataclass
class Progress:
    """Turns history events into lines; ``last_failure`` and ``last_entered`` say how it ended."""

    write: Callable[[str], None] = print
    started: float = field(default_factory=time.monotonic)
    entered: dict[str, tuple[float, str]] = field(default_factory=dict)  # state -> (since, type)
    state_of: dict[int, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    completed: set[str] = field(default_factory=set)
    repeats: dict[str, _Repeat] = field(default_factory=dict)
    pending_choice: str | None = None
    pending_catch: tuple[str, str, str] | None = None  # a task failure no retry followed (yet)
    # (state, error, cause) of the last task failure no retry fixed and no Choice came after: when the
    # execution fails, the reason (a Catch usually routes it through a notification to a Fail state)
    last_failure: tuple[str, str, str] | None = None
    # the newest failure of each error name: the execution's own error is the one to explain, not a
    # later failure a failure handler caught on its way out (a lock it did not hold, say)
    failures: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    last_entered: str = ""  # "<name> (<type>)" of the last state entered

    def _line(self, text: str) -> None:
        self.write(clip(f"{time.monotonic() - self.started:8.1f}s  {text}"))

    def _flush_repeats(self) -> None:
        """A loop (Wait -> Describe -> Choice -> Wait ...) as one line: its states and how often."""
        if self.repeats:
            rounds = max(repeat.count for repeat in self.repeats.values())
            seconds = sum(repeat.seconds for repeat in self.repeats.values())
            self._line(f"{' / '.join(self.repeats)}  repeated {rounds} more time(s), {seconds:.2f}s in all (polling)")
        self.repeats.clear()

    def _entered(self, state: str, kind: str) -> None:
        self.last_entered = f"{state} ({kind})"
        if self.pending_choice:
            self._line(f"{self.pending_choice} -> {state}")
            self.pending_choice = None
        if self.pending_catch:
            failed, error, cause = self.pending_catch
            self._line(f"{failed} -> {state}  (caught {error}: {cause})")
            self.pending_catch = None
        if state not in self.completed:
            self._flush_repeats()  # a new state: any polling loop before it has ended
        self.entered[state] = (time.monotonic(), kind)
        self.attempts[state] = 0

    def _exited(self, state: str) -> None:
        since, kind = self.entered.pop(state, (time.monotonic(), ""))
        elapsed = time.monotonic() - since
        if state in self.completed:
            repeat = self.repeats.setdefault(state, _Repeat())
            repeat.count += 1
            repeat.seconds += elapsed
            return
        self.completed.add(state)
        if kind == "Choice":
            self.pending_choice = state
            self.last_failure = None  # what follows was decided by data, not by that failure
        elif kind not in _QUIET_TYPES:
            self._line(f"{state:<32} {elapsed:6.2f}s")

    def __call__(self, event: dict) -> None:
        kind = event.get("type", "")
        state = self.state_of.get(event.get("previousEventId") or 0, "")
        if kind.endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
            self._entered(state, kind.removesuffix("StateEntered"))
        elif kind.endswith("StateExited"):
            state = event["stateExitedEventDetails"]["name"]
            self._exited(state)
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            self.attempts[state] = self.attempts.get(state, 0) + 1
            if self.attempts[state] > 1 and self.last_failure:
                self._line(f"{state}  retry {self.attempts[state]} after {self.last_failure[1]}")
            self.pending_catch = None
        elif kind == "TaskStarted" and event["taskStartedEventDetails"].get("resource", "").endswith(".waitForTaskToken"):
            self._line(f"{state}  waits for its task token to be answered: SendTaskSuccess / SendTaskFailure "
                       f"(an approval: `python -m emulator approve|reject`, or the model registry)")
        elif kind in _FAILED:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            error, cause = details.get("error", ""), details.get("cause", "")
            self.last_failure = self.failures[error] = (state, error, cause)
            self.pending_catch = (state, error, failure_reason(cause))
        elif kind in ("TaskSucceeded", "LambdaFunctionSucceeded"):
            if self.last_failure and self.last_failure[0] == state:
                self.last_failure = None  # a retry succeeded: that failure did not end anything
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            self._flush_repeats()
            self.pending_catch = None
            self._line(kind.removeprefix("Execution").upper())
        if event.get("id") is not None:
            self.state_of[event["id"]] = state


def failure_reason(cause: str) -> str:
    """The part of a cause a person needs: a SageMaker job's FailureReason, a Lambda's errorMessage,
    or the text itself."""
    try:
        doc = json.loads(cause)
    except (TypeError, ValueError):
        return " ".join(str(cause).split())
    if isinstance(doc, dict):
        for key in ("FailureReason", "errorMessage", "message", "Message"):
            if isinstance(doc.get(key), str):
                return " ".join(doc[key].split())
    return " ".join(str(cause).split())


def job_log_hint(runtime: Runtime, cause: str) -> str | None:
    """Where the logs of the SageMaker job a cause describes are, when it describes one."""
    try:
        doc = json.loads(cause)
    except (TypeError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    for kind, key in (("processing-jobs", "ProcessingJobName"), ("training-jobs", "TrainingJobName"),
                      ("transform-jobs", "TransformJobName"), ("tuning-jobs", "HyperParameterTuningJobName")):
        if isinstance(doc.get(key), str):
            return str(runtime.layout.sagemaker_work_dir(kind, doc[key]))
    return None


def summarize(runtime: Runtime, machine: StateMachineSpec, name: str, result: Any, progress: Progress,
              elapsed: float) -> int:
    """How the execution ended, where its records are, and — when it failed — why, once."""
    folder = runtime.execution_dir(machine.name, name)
    print(f"status: {result.status} in {elapsed:.1f}s  ({machine.name}/{name})")
    print(f"history: {folder}  (output.json, history.json; Lambda logs in logs/)")
    if result.status == "SUCCEEDED":
        return 0
    if result.error in progress.failures:  # a later, caught failure (e.g. in the failure handler) is not why
        state, error, cause = progress.failures[result.error]
    elif progress.last_failure:
        state, error, cause = progress.last_failure
    else:  # ended by a Fail state (e.g. after a Choice) or the execution's own timeout
        state, error, cause = progress.last_entered, result.error, result.cause
    print(f"failed state: {state}")
    print(f"  error: {error}")
    print(f"  cause: {clip(failure_reason(cause or ''), 2000)}")
    hint = job_log_hint(runtime, cause or "")
    if hint:
        print(f"  job folder (logs, describe): {hint}")
    return 1
