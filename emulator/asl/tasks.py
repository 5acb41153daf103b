"""A Task state's attempt: build the request, call the integration, poll, honour timeouts.

The events follow AWS: TaskScheduled, TaskStarted, TaskSubmitted (``.sync``), then TaskSucceeded,
TaskFailed or TaskTimedOut; a bare Lambda function ARN records the LambdaFunction* events instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from emulator.asl import model
from emulator.asl.dataflow import finish, read_value, render_payload
from emulator.asl.errors import HEARTBEAT_TIMEOUT, QUERY_EVALUATION_ERROR, RUNTIME, TASK_FAILED, TIMEOUT, StatesError
from emulator.asl.execution import Cancelled, Execution, ExecutionTimedOut, Frame, json_default, payload_json
from emulator.asl.history import to_json
from emulator.asl.jsonpath import JsonPath
from emulator.asl.paths import Env, apply_input_path
from emulator.asl.ports import TaskOutcome, TaskRequest, integration_pattern

log = logging.getLogger(__name__)


def _split_key(key: str) -> tuple[str, str]:
    """('sagemaker', 'createTrainingJob.sync') from a resource key, as history events show it."""
    service, _, action = key.rpartition(":")
    return (service, action) if service else (key, key)


def task_attempt(ex: Execution, state: model.Task, data: Any, frame: Frame, entered: str, retry_count: int) -> Any:
    if ex.integrations is None:
        raise StatesError(RUNTIME, f"Task state {state.name!r} needs an integration for {state.resource!r}, but none were given")
    key, integration = ex.integrations.lookup(state.resource)
    pattern = integration_pattern(key)
    token = ex.new_id() if pattern == "waitForTaskToken" else None
    env = ex.env(state, data, frame, entered, retry_count, token)
    effective = apply_input_path(state.input_path, env)
    # Parameters (JSONPath) and Arguments (JSONata) both become the payload the integration gets;
    # without either the effective input is sent.
    field = "Arguments" if state.jsonata else "Parameters"
    parameters = render_payload(state.parameters, env.with_data(effective), field) if state.parameters is not None else effective
    suffix = "" if state.jsonata else "Path"
    timeout = _dynamic_seconds(state.timeout_seconds, state.timeout_seconds_path, env.with_data(effective), "TimeoutSeconds" + suffix)
    heartbeat = _dynamic_seconds(state.heartbeat_seconds, state.heartbeat_seconds_path, env.with_data(effective), "HeartbeatSeconds" + suffix)
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
    return finish(state, data, output, env)


def _poll(ex: Execution, state: model.Task, integration: Any, handle: Any, frame: Frame, timeout: float | None,
          heartbeat: float | None, failed: Callable[..., StatesError]) -> TaskOutcome:
    """Poll until an outcome, honouring TimeoutSeconds, HeartbeatSeconds and cancellation."""
    begin = time.monotonic()
    limits: list[tuple[float, str, str]] = []
    if timeout is not None:
        limits.append((begin + ex.budget(timeout), TIMEOUT, f"Task state {state.name!r} exceeded its TimeoutSeconds of {timeout:g}"))
    if ex.timeout_seconds is not None:
        remaining = ex.timeout_seconds - ex.elapsed(frame)
        limits.append((begin + ex.budget(max(remaining, 0.0)), "", ""))
    static_limits = list(limits)
    while True:
        if heartbeat is not None:
            # HeartbeatSeconds counts from the last SendTaskHeartbeat on the token (from the start before any).
            beat = integration.heartbeat(handle)
            since = begin if beat is None else max(begin, time.monotonic() - max(time.time() - beat, 0.0))
            limits = static_limits + [(since + ex.budget(heartbeat), HEARTBEAT_TIMEOUT,
                                       f"Task state {state.name!r} received no heartbeat for {heartbeat:g} seconds")]
        try:
            outcome = integration.poll(handle)
        except StatesError as err:
            # a token's own deadline, passed while no process waited on it, is still a time-out
            raise failed(err.name, err.cause, timed_out=err.name in (TIMEOUT, HEARTBEAT_TIMEOUT)) from None
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
        integration.wait(handle, max(interval, 0.0))


def _stop(integration: Any, handle: Any, state: model.Task) -> None:
    try:
        integration.stop(handle)
    except Exception:
        log.exception("stopping the task of state %s failed", state.name)


def _dynamic_seconds(static: float | None, path: Any, env: Env, what: str) -> float | None:
    if path is None:
        return static
    value = read_value(path, env, what)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        error = RUNTIME if isinstance(path, JsonPath) else QUERY_EVALUATION_ERROR
        raise StatesError(error, f"{what} {path.text!r} must select a positive integer, got {to_json(value)}")
    return float(value)


def _safe_json(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"))
