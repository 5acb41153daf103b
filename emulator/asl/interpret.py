"""Run a parsed state machine: one ``run_<Type>`` handler per state class.

A handler takes (execution, state, raw input, frame) and returns (output, next state name or None
at the end); a failure is raised as StatesError. Retry/Catch wrap the work of Task, Parallel and
Map states. Branches and Map iterations run in threads only when they contain a Task (something
that waits on the outside world); pure data states run inline, in order, which is faster under
the GIL and keeps the history deterministic.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.asl import parse as model
from emulator.asl.choice import parse_timestamp
from emulator.asl.errors import (
    DATA_LIMIT_EXCEEDED,
    EXCEED_TOLERATED_FAILURE_THRESHOLD,
    HEARTBEAT_TIMEOUT,
    NO_CHOICE_MATCHED,
    RUNTIME,
    TASK_FAILED,
    TIMEOUT,
    StatesError,
)
from emulator.asl.history import Cursor, History, to_json
from emulator.asl.jsonpath import JsonPath
from emulator.asl.paths import (
    Env,
    apply_input_path,
    apply_output_path,
    apply_result_path,
    read_path,
)
from emulator.asl.retry import backoff_seconds, find_handler
from emulator.integrations.base import Integrations, TaskOutcome, TaskRequest, integration_pattern

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 262_144  # bytes: AWS's quota for a state's input, output and task results
MAX_THREADS = 40  # cap for MaxConcurrency 0 (unbounded) and for Parallel branches
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
    """One thread of control: its history cursor and the cancellation signals that concern it."""

    cursor: Cursor
    cancels: tuple[threading.Event, ...]

    def child(self, group: threading.Event | None = None) -> Frame:
        return Frame(self.cursor.child(), self.cancels + ((group,) if group is not None else ()))

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

    def __post_init__(self) -> None:
        self.execution_context = {
            "Id": self.execution_arn,
            "Input": self.input,
            "Name": self.execution_name,
            "RoleArn": self.role_arn,
            "StartTime": self.start_text,
            "RedriveCount": 0,
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
        """Wall seconds a timeout of ``seconds`` stands for (time_scale 0 keeps timeouts in real time)."""
        return seconds * self.time_scale if self.time_scale > 0 else seconds

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

    def enter(self, state: model.State, data: Any, frame: Frame) -> str:
        event = self.history.add(
            frame.cursor,
            f"{state.type}StateEntered",
            {"name": state.name, "input": payload_json(data, f"The input of state {state.name!r}"), "inputDetails": {"truncated": False}},
        )
        return event["timestamp"]

    def exit(self, state: model.State, output: Any, frame: Frame) -> None:
        self.history.add(
            frame.cursor,
            f"{state.type}StateExited",
            {"name": state.name, "output": payload_json(output, f"The output of state {state.name!r}"), "outputDetails": {"truncated": False}},
        )


# -- the loop --------------------------------------------------------------------------------------


def run_block(ex: Execution, block: model.StateMachine, data: Any, frame: Frame) -> Any:
    """Run states from StartAt until one ends the block; returns the block's output."""
    name: str | None = block.start_at
    states = block.states
    while name is not None:
        ex.check(frame)
        state = states[name]
        data, name = HANDLERS[type(state)](ex, state, data, frame)
    return data


# -- simple states ---------------------------------------------------------------------------------


def run_Pass(ex: Execution, state: model.Pass, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = Env(data, lambda: ex.context(state, entered), ex.rng)
    effective = apply_input_path(state.input_path, env)
    if state.parameters is not None:
        effective = state.parameters.render(env.with_data(effective))
    result = state.result if state.has_result else effective
    output = apply_output_path(state.output_path, apply_result_path(state.result_path, data, result), env)
    ex.exit(state, output, frame)
    return output, state.next


def run_Choice(ex: Execution, state: model.Choice, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = Env(data, lambda: ex.context(state, entered), ex.rng)
    effective = apply_input_path(state.input_path, env)
    rule_env = env.with_data(effective)
    target = next((c.next for c in state.choices if c.rule.evaluate(rule_env)), state.default)
    if target is None:
        raise StatesError(
            NO_CHOICE_MATCHED,
            f"No Choice rule of state {state.name!r} matched the input {to_json(effective)[:500]} and there is no Default",
        )
    output = apply_output_path(state.output_path, effective, env)
    ex.exit(state, output, frame)
    return output, target


def run_Wait(ex: Execution, state: model.Wait, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = Env(data, lambda: ex.context(state, entered), ex.rng)
    effective = apply_input_path(state.input_path, env)
    ex.sleep(_wait_seconds(ex, state, env.with_data(effective), frame), frame)
    output = apply_output_path(state.output_path, effective, env)
    ex.exit(state, output, frame)
    return output, state.next


def _wait_seconds(ex: Execution, state: model.Wait, env: Env, frame: Frame) -> float:
    if state.seconds is not None:
        return float(state.seconds)
    if state.seconds_path is not None:
        value = read_path(state.seconds_path, env, "SecondsPath")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StatesError(RUNTIME, f"SecondsPath {state.seconds_path.text!r} must select a non-negative integer, got {to_json(value)}")
        return float(value)
    if state.timestamp_path is not None:
        text = read_path(state.timestamp_path, env, "TimestampPath")
    else:
        text = state.timestamp
    moment = parse_timestamp(text)
    if moment is None:
        raise StatesError(RUNTIME, f"TimestampPath of state {state.name!r} selected {to_json(text)}, which is not an RFC 3339 timestamp")
    return (moment - ex.history.now(frame.cursor)).total_seconds()


def run_Succeed(ex: Execution, state: model.Succeed, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = Env(data, lambda: ex.context(state, entered), ex.rng)
    output = apply_output_path(state.output_path, apply_input_path(state.input_path, env), env)
    ex.exit(state, output, frame)
    return output, None


def run_Fail(ex: Execution, state: model.Fail, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = Env(data, lambda: ex.context(state, entered), ex.rng)
    error = _fail_field(state.error, state.error_path, env, "ErrorPath")
    cause = _fail_field(state.cause, state.cause_path, env, "CausePath")
    raise StatesError(error or "", cause)


def _fail_field(static: str | None, dynamic: Any, env: Env, what: str) -> str | None:
    if dynamic is None:
        return static
    if isinstance(dynamic, JsonPath):
        value = read_path(dynamic, env, what)
    else:
        value = dynamic.render(env)["v"]
    if not isinstance(value, str):
        raise StatesError(RUNTIME, f"{what} must select a string, got {to_json(value)}")
    return value


# -- retry / catch -----------------------------------------------------------------------------------


def with_retry(
    ex: Execution,
    state: model.Task | model.Parallel | model.Map,
    data: Any,
    frame: Frame,
    attempt: Callable[[int], Any],
) -> tuple[Any, str | None]:
    """Run ``attempt(retry_count)`` under the state's Retry and Catch; emits the Exited event."""
    used = [0] * len(state.retry)
    retry_count = 0
    while True:
        try:
            output = attempt(retry_count)
        except StatesError as err:
            index = find_handler(state.retry, err.name)
            if index is not None and used[index] < state.retry[index].max_attempts:
                delay = backoff_seconds(state.retry[index], used[index], ex.rng)
                used[index] += 1
                retry_count += 1
                log.debug("state %s: retry %d after %s in %.3fs", state.name, retry_count, err.name, delay)
                ex.sleep(delay, frame)
                ex.check(frame)
                continue
            catcher_index = find_handler(state.catch, err.name)
            if catcher_index is None:
                raise
            catcher = state.catch[catcher_index]
            error_output = {"Error": err.name, "Cause": err.cause if err.cause is not None else ""}
            output = apply_result_path(catcher.result_path, data, error_output)
            ex.exit(state, output, frame)
            return output, catcher.next
        ex.exit(state, output, frame)
        return output, state.next


def _finish(ex: Execution, state: Any, data: Any, result: Any, env: Env) -> Any:
    """ResultSelector, ResultPath and OutputPath: the tail every Task/Parallel/Map shares."""
    if state.result_selector is not None:
        result = state.result_selector.render(env.with_data(result))
    return apply_output_path(state.output_path, apply_result_path(state.result_path, data, result), env)


# -- Task ----------------------------------------------------------------------------------------------


def run_Task(ex: Execution, state: model.Task, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)

    def attempt(retry_count: int) -> Any:
        return _task_attempt(ex, state, data, frame, entered, retry_count)

    return with_retry(ex, state, data, frame, attempt)


def _split_key(key: str) -> tuple[str, str]:
    """('sagemaker', 'createTrainingJob.sync') from a resource key, as history events show it."""
    service, _, action = key.rpartition(":")
    return (service, action) if service else (key, key)


def _task_attempt(ex: Execution, state: model.Task, data: Any, frame: Frame, entered: str, retry_count: int) -> Any:
    if ex.integrations is None:
        raise StatesError(RUNTIME, f"Task state {state.name!r} needs an integration for {state.resource!r}, but none were given")
    key, integration = ex.integrations.lookup(state.resource)
    pattern = integration_pattern(key)
    token = ex.new_id() if pattern == "waitForTaskToken" else None
    env = Env(data, lambda: ex.context(state, entered, retry_count, token), ex.rng)
    effective = apply_input_path(state.input_path, env)
    parameters = state.parameters.render(env.with_data(effective)) if state.parameters is not None else effective
    timeout = _dynamic_seconds(state.timeout_seconds, state.timeout_seconds_path, env.with_data(effective), "TimeoutSecondsPath")
    heartbeat = _dynamic_seconds(state.heartbeat_seconds, state.heartbeat_seconds_path, env.with_data(effective), "HeartbeatSecondsPath")
    parameters_json = payload_json(parameters, f"The parameters of state {state.name!r}")
    parameters = json.loads(parameters_json)  # the integration gets its own copy to keep or change
    lambda_arn = key == "lambda:function"
    resource_type, resource = ("lambda", state.resource) if lambda_arn else _split_key(key)
    ids = {"resourceType": resource_type, "resource": resource}

    def failed(error: str, cause: str | None, timed_out: bool = False) -> StatesError:
        details = {"error": error}
        if cause is not None:
            details["cause"] = cause
        if lambda_arn:
            ex.history.add(frame.cursor, "LambdaFunctionTimedOut" if timed_out else "LambdaFunctionFailed", details)
        else:
            ex.history.add(frame.cursor, "TaskTimedOut" if timed_out else "TaskFailed", {**ids, **details})
        return StatesError(error, cause)

    if lambda_arn:
        scheduled = {"resource": state.resource, "input": parameters_json, "inputDetails": {"truncated": False}}
        if timeout is not None:
            scheduled["timeoutInSeconds"] = int(timeout)
        ex.history.add(frame.cursor, "LambdaFunctionScheduled", scheduled)
        ex.history.add(frame.cursor, "LambdaFunctionStarted")
    else:
        scheduled = {**ids, "region": ex.region, "parameters": parameters_json}
        if timeout is not None:
            scheduled["timeoutInSeconds"] = int(timeout)
        if heartbeat is not None:
            scheduled["heartbeatInSeconds"] = int(heartbeat)
        ex.history.add(frame.cursor, "TaskScheduled", scheduled)
        ex.history.add(frame.cursor, "TaskStarted", ids)

    request = TaskRequest(
        resource=state.resource,
        key=key,
        parameters=parameters,
        state_name=state.name,
        execution_arn=ex.execution_arn,
        execution_name=ex.execution_name,
        timeout_seconds=timeout,
        heartbeat_seconds=heartbeat,
        task_token=token,
        context=env.context,
    )
    try:
        handle = integration.start(request)
    except StatesError as err:
        raise failed(err.name, err.cause) from None
    except Exception as exc:  # an integration bug must end as a task failure, not a traceback
        log.exception("integration %s failed to start state %s", key, state.name)
        raise failed(TASK_FAILED, f"{type(exc).__name__}: {exc}") from None
    if pattern == "sync" and not lambda_arn:
        submitted = handle if isinstance(handle, (dict, list)) else {}
        ex.history.add(frame.cursor, "TaskSubmitted", {**ids, "output": _safe_json(submitted), "outputDetails": {"truncated": False}})

    try:
        outcome = _poll(ex, state, integration, handle, frame, timeout, heartbeat if pattern == "waitForTaskToken" else None, failed)
    except KeyboardInterrupt:
        _stop(integration, handle, state)
        raise
    output_json = payload_json(outcome.output, f"The result of state {state.name!r}")
    output = json.loads(output_json)  # plain JSON from here on (datetimes became ISO strings)
    if lambda_arn:
        ex.history.add(frame.cursor, "LambdaFunctionSucceeded", {"output": output_json, "outputDetails": {"truncated": False}})
    else:
        ex.history.add(frame.cursor, "TaskSucceeded", {**ids, "output": output_json, "outputDetails": {"truncated": False}})
    return _finish(ex, state, data, output, env)


def _poll(ex: Execution, state: model.Task, integration: Any, handle: Any, frame: Frame, timeout: float | None,
          heartbeat: float | None, failed: Callable[..., StatesError]) -> TaskOutcome:
    """Poll until an outcome, honouring TimeoutSeconds, HeartbeatSeconds and cancellation."""
    begin = time.monotonic()
    limits: list[tuple[float, str, str]] = []
    if timeout is not None:
        limits.append((begin + ex.budget(timeout), TIMEOUT, f"Task state {state.name!r} exceeded its TimeoutSeconds of {timeout:g}"))
    if heartbeat is not None:
        # Locally nobody can send a heartbeat for a task token, so HeartbeatSeconds bounds the wait.
        limits.append((begin + ex.budget(heartbeat), HEARTBEAT_TIMEOUT, f"Task state {state.name!r} sent no heartbeat for {heartbeat:g} seconds"))
    if ex.timeout_seconds is not None:
        remaining = ex.timeout_seconds - ex.elapsed(frame)
        limits.append((begin + ex.budget(max(remaining, 0.0)), "", ""))
    while True:
        try:
            outcome = integration.poll(handle)
        except StatesError as err:
            raise failed(err.name, err.cause) from None
        except Exception as exc:
            log.exception("integration failed while polling state %s", state.name)
            raise failed(TASK_FAILED, f"{type(exc).__name__}: {exc}") from None
        if isinstance(outcome, TaskOutcome):
            return outcome
        if outcome is not None:
            raise failed(TASK_FAILED, f"the integration returned {type(outcome).__name__} instead of a TaskOutcome")
        now = time.monotonic()
        for deadline, error, cause in sorted(limits):
            if now >= deadline:
                _stop(integration, handle, state)
                if not error:
                    raise ExecutionTimedOut(f"The execution exceeded its TimeoutSeconds of {ex.timeout_seconds:g}")
                raise failed(error, cause, timed_out=True)
        if frame.cancelled():
            _stop(integration, handle, state)
            raise Cancelled()
        interval = integration.poll_interval(handle)
        if limits:
            interval = min(interval, max(min(d for d, _, _ in limits) - now, 0.0))
        time.sleep(max(interval, 0.0))


def _stop(integration: Any, handle: Any, state: model.Task) -> None:
    try:
        integration.stop(handle)
    except Exception:
        log.exception("stopping the task of state %s failed", state.name)


def _dynamic_seconds(static: float | None, path: JsonPath | None, env: Env, what: str) -> float | None:
    if path is None:
        return static
    value = read_path(path, env, what)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StatesError(RUNTIME, f"{what} {path.text!r} must select a positive integer, got {to_json(value)}")
    return float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def payload_json(value: Any, what: str) -> str:
    """Compact JSON of a state's data, enforcing AWS's payload quota (States.DataLimitExceeded)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if len(text) > PAYLOAD_LIMIT // 4:
        size = len(text.encode())
        if size > PAYLOAD_LIMIT:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"{what} is {size} bytes, more than the {PAYLOAD_LIMIT}-byte payload quota of Step Functions; "
                "pass large data through S3 and keep references in the state",
            )
    return text


def _safe_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


# -- Parallel and Map --------------------------------------------------------------------------------


def run_Parallel(ex: Execution, state: model.Parallel, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)

    def attempt(retry_count: int) -> Any:
        env = Env(data, lambda: ex.context(state, entered, retry_count), ex.rng)
        effective = apply_input_path(state.input_path, env)
        if state.parameters is not None:
            effective = state.parameters.render(env.with_data(effective))
        ex.history.add(frame.cursor, "ParallelStateStarted")
        jobs = [_branch_job(ex, branch, effective) for branch in state.branches]
        threaded = any(b.has_task or (b.has_wait and ex.time_scale > 0) for b in state.branches)
        try:
            results = run_group(ex, jobs, frame, limit=MAX_THREADS, threaded=threaded)
        except StatesError:
            ex.history.add(frame.cursor, "ParallelStateFailed")
            raise
        ex.history.add(frame.cursor, "ParallelStateSucceeded")
        return _finish(ex, state, data, results, env)

    return with_retry(ex, state, data, frame, attempt)


def _branch_job(ex: Execution, branch: model.StateMachine, data: Any) -> Callable[[Frame], Any]:
    return lambda child: run_block(ex, branch, data, child)


def run_Map(ex: Execution, state: model.Map, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)

    def attempt(retry_count: int) -> Any:
        env = Env(data, lambda: ex.context(state, entered, retry_count), ex.rng)
        effective = apply_input_path(state.input_path, env)
        effective_env = env.with_data(effective)
        items = apply_input_path(state.items_path, effective_env) if state.items_path is not None else effective
        if not isinstance(items, list):
            raise StatesError(RUNTIME, f"ItemsPath of Map state {state.name!r} must select a JSON array, got {to_json(items)[:200]}")
        limit = _map_setting(state.max_concurrency, state.max_concurrency_path, effective_env, "MaxConcurrencyPath", integer=True)
        tolerated_count = _map_setting(state.tolerated_failure_count, state.tolerated_failure_count_path, effective_env, "ToleratedFailureCountPath", integer=True)
        tolerated_pct = _map_setting(state.tolerated_failure_percentage, state.tolerated_failure_percentage_path, effective_env, "ToleratedFailurePercentagePath", integer=False)
        ex.history.add(frame.cursor, "MapStateStarted", {"length": len(items)})
        inputs = []
        for index, item in enumerate(items):
            if state.item_selector is None:
                inputs.append(item)
            else:
                item_env = Env(effective, ex.context(state, entered, retry_count, item=(index, item)), ex.rng)
                inputs.append(state.item_selector.render(item_env))
        jobs = [_iteration_job(ex, state, index, value) for index, value in enumerate(inputs)]
        block = state.processor
        threaded = (block.has_task or (block.has_wait and ex.time_scale > 0)) and limit != 1
        tolerance = None
        if state.has_tolerance:
            tolerance = (tolerated_count, tolerated_pct)
        try:
            results = run_group(
                ex, jobs, frame, limit=min(limit or MAX_THREADS, MAX_THREADS), threaded=threaded, tolerance=tolerance
            )
        except StatesError:
            ex.history.add(frame.cursor, "MapStateFailed")
            raise
        ex.history.add(frame.cursor, "MapStateSucceeded")
        return _finish(ex, state, data, results, env)

    return with_retry(ex, state, data, frame, attempt)


def _iteration_job(ex: Execution, state: model.Map, index: int, value: Any) -> Callable[[Frame], Any]:
    def job(child: Frame) -> Any:
        details = {"name": state.name, "index": index}
        ex.history.add(child.cursor, "MapIterationStarted", details)
        try:
            output = run_block(ex, state.processor, value, child)
        except StatesError:
            ex.history.add(child.cursor, "MapIterationFailed", details)
            raise
        except Cancelled:
            ex.history.add(child.cursor, "MapIterationAborted", details)
            raise
        ex.history.add(child.cursor, "MapIterationSucceeded", details)
        return output

    return job


def _map_setting(static: Any, path: JsonPath | None, env: Env, what: str, integer: bool) -> Any:
    if path is None:
        return static
    value = read_path(path, env, what)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if ok and integer:
        ok = isinstance(value, int)
    if ok and not integer:
        ok = value <= 100
    if not ok:
        raise StatesError(RUNTIME, f"{what} {path.text!r} selected {to_json(value)}, which is not a valid value")
    return value


def run_group(
    ex: Execution,
    jobs: list[Callable[[Frame], Any]],
    frame: Frame,
    *,
    limit: int,
    threaded: bool,
    tolerance: tuple[int | None, float | None] | None = None,
) -> list[Any]:
    """Run branch/iteration jobs (inline or in threads) and return their outputs in job order.

    Without ``tolerance`` the first failure cancels the others and is raised. With it, failures
    are counted and the group fails with States.ExceedToleratedFailureThreshold once the count or
    percentage passes what is tolerated; failed slots hold {"Error", "Cause"}.
    """
    total = len(jobs)
    group = threading.Event()
    results: list[Any] = [None] * total
    failures: list[tuple[int, BaseException]] = []
    lock = threading.Lock()
    frames = [frame.child(group) for _ in jobs]

    def exceeded(failed: int) -> bool:
        count, pct = tolerance or (None, None)
        if count is None and pct is None:
            return failed > 0
        if count is not None and failed > count:
            return True
        return pct is not None and total > 0 and failed * 100.0 / total > pct

    def one(index: int) -> None:
        child = frames[index]
        if child.cancelled():
            return
        try:
            results[index] = jobs[index](child)
        except StatesError as err:
            with lock:
                failures.append((index, err))
                failed = sum(1 for _, e in failures if isinstance(e, StatesError))
                if tolerance is None or exceeded(failed):
                    group.set()
            results[index] = {"Error": err.name, "Cause": err.cause if err.cause is not None else ""}
        except Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - timeouts and emulator bugs stop every sibling
            with lock:
                failures.append((index, exc))
                group.set()

    if threaded and total > 1:
        with ThreadPoolExecutor(max_workers=max(1, min(limit, total))) as pool:
            try:
                for future in [pool.submit(one, i) for i in range(total)]:
                    future.result()
            except BaseException:  # Ctrl-C in the main thread: let the workers wind down first
                group.set()
                raise
    else:
        for index in range(total):
            if group.is_set():
                break
            one(index)
    # The branches' events moved the clock on: the parent continues after the latest of them.
    frame.cursor.offset = max([frame.cursor.offset] + [f.cursor.offset for f in frames])
    frame.cursor.last_id = max([frame.cursor.last_id] + [f.cursor.last_id for f in frames])

    for _, exc in failures:
        if not isinstance(exc, StatesError):
            raise exc
    if frame.cancelled():
        raise Cancelled()
    errors = [err for _, err in failures]
    if not errors:
        return results
    if tolerance is None:
        raise errors[0]
    if exceeded(len(errors)):
        raise StatesError(
            EXCEED_TOLERATED_FAILURE_THRESHOLD,
            f"{len(errors)} of {total} Map iterations failed, more than tolerated",
        )
    return results


HANDLERS: dict[type, Callable[..., tuple[Any, str | None]]] = {
    cls: globals()[f"run_{cls.__name__}"] for cls in model.STATE_CLASSES if f"run_{cls.__name__}" in globals()
}
_missing = [cls.__name__ for cls in model.STATE_CLASSES if cls not in HANDLERS]
if _missing:  # checked at import time: a new state class without a handler is a bug
    raise ImportError(f"no run_<Type> handler for state classes {_missing}")
