"""TestState: run one state, alone or ``stateName`` inside a full definition, and answer in the
shape of AWS's TestState API (status, nextState, output, error, cause, inspectionData).

As AWS documents it: one state runs once, with the given input, variables and (with a mock)
context. An error that a retrier still covers ends as ``RETRIABLE`` with the retrier's index and
backoff (nothing is retried); one a catcher handles ends as ``CAUGHT_ERROR`` with the catcher's
output and Next; otherwise ``FAILED``. ``mock`` replaces the call of a Task (or the whole work of a
Map or Parallel, which can only be tested with a mock) by a result or an error. ``inspectionLevel``
DEBUG and TRACE add the data-flow stages; TRACE adds nothing more here, as it only shows HTTP
Task traffic, which the emulator does not have. ``mock.fieldValidationMode`` is accepted but not
enforced: the emulator has no service API models to check a mocked result against.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulator.asl import model
from emulator.asl.dataflow import catch_output, finish, jsonata_bindings, render_payload
from emulator.asl.errors import EXCEED_TOLERATED_FAILURE_THRESHOLD, TIMEOUT, DefinitionError, StatesError
from emulator.asl.execution import Execution, ExecutionTimedOut, Frame
from emulator.asl.history import Cursor, History, format_timestamp
from emulator.asl.interpret import HANDLERS, map_setting
from emulator.asl.parse import parse_definition, parse_state
from emulator.asl.paths import Env, apply_input_path, apply_result_path
from emulator.asl.ports import Integration, Integrations, TaskOutcome, TaskRequest
from emulator.asl.retry import backoff_seconds, find_handler
from emulator.asl.tasks import task_attempt
from emulator.asl.validate import ValidationException
from emulator.asl.variables import Scope, check_name
from emulator.aws.arns import ACCOUNT, DEFAULT_REGION
from emulator.aws.arns import execution_arn as make_execution_arn
from emulator.aws.arns import state_machine_arn as make_state_machine_arn

LEVELS = ("INFO", "DEBUG", "TRACE")
MAX_SECONDS = 300  # AWS: TestState runs for up to five minutes, then fails with States.Timeout
STATE_NAME = "TestState"  # the name a lone state runs under ($$.State.Name)
_MOCKABLE = (model.Task, model.Map, model.Parallel)


class InvalidDefinition(ValueError):
    """AWS's InvalidDefinition: the state (or state machine) does not parse."""


class InvalidExecutionInput(ValueError):
    """AWS's InvalidExecutionInput: ``input`` is not JSON."""


def run_test_state(
    definition: str | dict,
    *,
    input: str | None = None,
    inspection_level: str = "INFO",
    reveal_secrets: bool = False,
    variables: str | None = None,
    state_name: str | None = None,
    mock: dict | None = None,
    context: str | None = None,
    state_configuration: dict | None = None,
    role_arn: str | None = None,
    integrations: Integrations | None = None,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """The TestState response. The keyword arguments are the API's request fields (JSON strings
    where the API takes strings); ``integrations`` are the local services a Task without a mock
    calls. Raises InvalidDefinition, InvalidExecutionInput or ValidationException as AWS does."""
    del reveal_secrets  # nothing secret to hide: no HTTP Task connections locally
    if inspection_level not in LEVELS:
        raise ValidationException(f"inspectionLevel must be one of {list(LEVELS)}, got {inspection_level!r}")
    if context is not None and mock is None:
        raise ValidationException("context may only be specified together with a mock")
    name, state = _state_under_test(definition, state_name)
    data = _json(input, "{}", InvalidExecutionInput, "input")
    scope = Scope(values=_variables(variables))
    override = _json(context, "{}", ValidationException, "context") if context is not None else {}
    if not isinstance(override, dict):
        raise ValidationException("context must be a JSON object")
    config = state_configuration or {}
    retry_count = int(config.get("retrierRetryCount", 0))
    if mock is not None:
        if not isinstance(state, _MOCKABLE):
            raise ValidationException(f"a mock can only be specified for Task, Map or Parallel states, not {state.type}")
        integrations = _mock_integrations(mock)
    elif isinstance(state, (model.Map, model.Parallel)):
        raise ValidationException(f"a {state.type} state can only be tested with a mock (mock.result or mock.errorOutput)")
    elif isinstance(state, model.Task) and integrations is None:
        raise ValidationException("this Task state needs a mock: no local integrations were given to call")
    recorder = _Recorder(integrations) if integrations is not None else None
    ex = _execution(state, name, data, recorder, override, clock, rng)
    frame = Frame(Cursor(), (ex.stop,), scope)
    before = Env(data, {}, ex.rng, Scope(values=scope.visible()))  # for the inspection stages
    run = _Run(ex=ex, state=state, data=data, frame=frame, retry_count=retry_count)
    try:
        if isinstance(state, model.Task):
            run.task()
        elif isinstance(state, (model.Map, model.Parallel)):
            run.group(mock or {}, config)
        else:
            run.simple()
    except ExecutionTimedOut as exc:
        run.failed(StatesError(TIMEOUT, exc.cause))
    response: dict[str, Any] = {"status": run.status}
    if run.output is not _NONE:
        response["output"] = _text(run.output)
    if run.error is not None:
        response["error"] = run.error.name
        if run.error.cause is not None:
            response["cause"] = run.error.cause
    if run.next_state is not None:
        response["nextState"] = run.next_state
    if inspection_level != "INFO":
        response["inspectionData"] = _inspection(run, before, recorder, scope)
    return response


# -- the request ---------------------------------------------------------------------------------------


def _state_under_test(definition: str | dict, state_name: str | None) -> tuple[str, model.State]:
    raw = definition
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidDefinition(f"the definition is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidDefinition("the definition must be a JSON object: a state, or a state machine with stateName")
    try:
        if state_name is None:
            if "Type" not in raw:
                raise InvalidDefinition("without stateName the definition must be one state (an object with a Type)")
            return STATE_NAME, parse_state(STATE_NAME, raw)
        machine = parse_definition(raw)
    except DefinitionError as err:
        raise InvalidDefinition(str(err)) from None
    found = _find(machine, state_name)
    if found is None:
        raise InvalidDefinition(f"stateName {state_name!r} is not a state of the definition")
    return state_name, found


def _find(block: model.StateMachine, name: str) -> model.State | None:
    for key, state in block.states.items():
        if key == name:
            return state
        children = state.branches if isinstance(state, model.Parallel) else (state.processor,) if isinstance(state, model.Map) else ()
        for child in children:
            found = _find(child, name)
            if found is not None:
                return found
    return None


def _json(text: str | None, default: str, error: type[Exception], what: str) -> Any:
    try:
        return json.loads(default if text is None else text)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None


def _variables(text: str | None) -> dict[str, Any]:
    values = _json(text, "{}", ValidationException, "variables")
    if not isinstance(values, dict):
        raise ValidationException("variables must be a JSON object of variable names to values")
    for name in values:
        try:
            check_name(name, "variables")
        except DefinitionError as err:
            raise ValidationException(err.message) from None
    return values


# -- mocks and recording -----------------------------------------------------------------------------


class _MockIntegration(Integration):
    """Answers every task with the mocked result or error."""

    def __init__(self, mock: dict):
        self.mock = mock

    def start(self, request: TaskRequest) -> Any:
        return None

    def poll(self, handle: Any) -> TaskOutcome | None:
        if "errorOutput" in self.mock:
            raise StatesError(self.mock["errorOutput"]["error"], self.mock["errorOutput"].get("cause"))
        return TaskOutcome(output=copy.deepcopy(self.mock["result"]))


def _mock_integrations(mock: dict) -> Integrations:
    if not isinstance(mock, dict) or ("result" in mock) == ("errorOutput" in mock):
        raise ValidationException("mock needs exactly one of result or errorOutput")
    mock = dict(mock)
    if "result" in mock:
        mock["result"] = _json(mock["result"], "null", ValidationException, "mock.result")
    else:
        error = mock["errorOutput"]
        if not isinstance(error, dict) or not isinstance(error.get("error"), str):
            raise ValidationException("mock.errorOutput needs an error name (and optionally a cause)")
    mode = mock.get("fieldValidationMode", "STRICT")
    if mode not in ("STRICT", "PRESENT", "NONE"):
        raise ValidationException(f"mock.fieldValidationMode must be STRICT, PRESENT or NONE, got {mode!r}")
    registry = Integrations()
    registry.register("*", _MockIntegration(mock))
    return registry


class _Recorder(Integrations):
    """Delegates to the real registry, keeping the request and raw result for inspectionData."""

    def __init__(self, inner: Integrations):
        super().__init__()
        self.inner = inner
        self.request: TaskRequest | None = None
        self.result: Any = _NONE

    def lookup(self, resource: str) -> tuple[str, Integration]:
        key, integration = self.inner.lookup(resource)
        return key, _Recording(integration, self)

    def keys(self) -> list[str]:
        return self.inner.keys()


class _Recording(Integration):
    def __init__(self, inner: Integration, recorder: _Recorder):
        self.inner, self.recorder = inner, recorder

    def start(self, request: TaskRequest) -> Any:
        self.recorder.request = request
        return self.inner.start(request)

    def poll(self, handle: Any) -> TaskOutcome | None:
        outcome = self.inner.poll(handle)
        if isinstance(outcome, TaskOutcome):
            self.recorder.result = json.loads(json.dumps(outcome.output, default=str))
        return outcome

    def stop(self, handle: Any) -> None:
        self.inner.stop(handle)

    def poll_interval(self, handle: Any) -> float:
        return self.inner.poll_interval(handle)

    def wait(self, handle: Any, seconds: float) -> None:
        self.inner.wait(handle, seconds)


# -- running the state ----------------------------------------------------------------------------------

_NONE: Any = object()


@dataclass
class _TestExecution(Execution):
    """An execution whose context object carries the caller's ``context`` over the defaults."""

    override: dict | None = None

    def context(self, state: model.State, entered: str, retry_count: int = 0, token: str | None = None,
                item: tuple[int, Any] | None = None) -> dict:
        ctx = super().context(state, entered, retry_count, token, item)
        return _merge(ctx, self.override) if self.override else ctx


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _execution(state: model.State, name: str, data: Any, integrations: Integrations | None, override: dict,
               clock: Callable[[], datetime] | None, rng: random.Random | None) -> _TestExecution:
    clock = clock or (lambda: datetime.now(UTC))
    start = clock()
    execution_name = str(uuid.uuid4())
    machine = model.StateMachine(start_at=name, states={name: state})
    return _TestExecution(
        machine=machine,
        integrations=integrations,
        history=History(clock, None),
        rng=rng or random.Random(),
        new_id=lambda: str(uuid.uuid4()),
        time_scale=0.0,  # a Wait state answers at once; its seconds are only computed
        execution_arn=make_execution_arn(make_state_machine_arn("TestStateMachine"), execution_name),
        execution_name=execution_name,
        state_machine_arn=make_state_machine_arn("TestStateMachine"),
        state_machine_name="TestStateMachine",
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/TestStateRole",
        region=DEFAULT_REGION,
        input=data,
        start=start,
        start_text=format_timestamp(start),
        timeout_seconds=MAX_SECONDS,
        stop=threading.Event(),
        override=override,
    )


@dataclass
class _Run:
    ex: _TestExecution
    state: model.State
    data: Any
    frame: Frame
    retry_count: int
    status: str = "SUCCEEDED"
    output: Any = _NONE
    next_state: str | None = None
    error: StatesError | None = None
    error_details: dict | None = None
    entered: str = ""
    map_stages: dict | None = None

    def simple(self) -> None:
        """Pass, Wait, Choice, Succeed, Fail: the interpreter's own handler, once."""
        try:
            self.output, self.next_state = HANDLERS[type(self.state)](self.ex, self.state, self.data, self.frame)
        except StatesError as err:
            self.failed(err)

    def task(self) -> None:
        self.entered = self.ex.enter(self.state, self.data, self.frame)
        try:
            self.output = task_attempt(self.ex, self.state, self.data, self.frame, self.entered, self.retry_count)
            self.next_state = self.state.next
        except StatesError as err:
            self.handle(err)

    def group(self, mock: dict, config: dict) -> None:
        """A mocked Map or Parallel: its input stages run, the mock stands for the branches' work."""
        state = self.state
        self.entered = self.ex.enter(state, self.data, self.frame)
        env = self.ex.env(state, self.data, self.frame, self.entered, self.retry_count)
        try:
            if isinstance(state, model.Map):
                self.map_stages = _map_stages(self.ex, state, env, self.frame, self.entered, self.retry_count)
                failures = int(config.get("mapIterationFailureCount", 0))
                if failures and _exceeds(state, self.map_stages, failures):
                    raise StatesError(
                        EXCEED_TOLERATED_FAILURE_THRESHOLD, f"{failures} Map iterations failed, more than tolerated"
                    )
            if "errorOutput" in mock:
                raise StatesError(mock["errorOutput"]["error"], mock["errorOutput"].get("cause"))
            result = _json(mock.get("result"), "null", ValidationException, "mock.result")
            self.output = finish(state, self.data, result, env)
            self.next_state = state.next
        except StatesError as err:
            self.handle(err)

    def handle(self, err: StatesError) -> None:
        """Retry and Catch as one test step: RETRIABLE, CAUGHT_ERROR or FAILED."""
        state = self.state
        self.error = err
        index = find_handler(state.retry, err.name)
        if index is not None and self.retry_count < state.retry[index].max_attempts:
            delay = backoff_seconds(state.retry[index], self.retry_count, self.ex.rng)
            self.status = "RETRIABLE"
            self.error_details = {"retryIndex": index, "retryBackoffIntervalSeconds": int(delay)}
            return
        index = find_handler(state.catch, err.name)
        if index is None:
            self.failed(err)
            return
        catcher = state.catch[index]
        error_output = {"Error": err.name, "Cause": err.cause if err.cause is not None else ""}
        env = self.ex.env(state, self.data, self.frame, self.entered, self.retry_count)
        try:
            self.output = catch_output(state, catcher, self.data, error_output, env)
        except StatesError as inner:
            self.failed(inner)
            return
        self.status, self.next_state = "CAUGHT_ERROR", catcher.next
        self.error_details = {"catchIndex": index}

    def failed(self, err: StatesError) -> None:
        self.status, self.error, self.output, self.next_state = "FAILED", err, _NONE, None


def _map_stages(ex: Execution, state: model.Map, env: Env, frame: Frame, entered: str, retry_count: int) -> dict:
    """The Map's input stages (ItemsPath/Items, ItemSelector, the settings) for inspectionData."""
    effective = apply_input_path(state.input_path, env)
    effective_env = env.with_data(effective)
    if state.items is not None:
        items = state.items.render(jsonata_bindings(env), "Items")
    else:
        items = apply_input_path(state.items_path, effective_env) if state.items_path is not None else effective
    selected = items
    if isinstance(items, list) and state.item_selector is not None:
        selected = [
            render_payload(
                state.item_selector, Env(effective, ex.context(state, entered, retry_count, item=(i, item)), ex.rng, frame.scope), "ItemSelector"
            )
            for i, item in enumerate(items)
        ]
    return {
        "afterInputPath": effective,
        "afterItemsPath": items,
        "afterItemSelector": selected,
        "maxConcurrency": map_setting(state.max_concurrency, state.max_concurrency_path, effective_env, "MaxConcurrencyPath", True),
        "toleratedFailureCount": map_setting(
            state.tolerated_failure_count, state.tolerated_failure_count_path, effective_env, "ToleratedFailureCountPath", True
        ),
        "toleratedFailurePercentage": map_setting(
            state.tolerated_failure_percentage, state.tolerated_failure_percentage_path, effective_env, "ToleratedFailurePercentagePath", False
        ),
    }


def _exceeds(state: model.Map, stages: dict, failures: int) -> bool:
    count, pct = stages["toleratedFailureCount"], stages["toleratedFailurePercentage"]
    items = stages["afterItemsPath"]
    total = len(items) if isinstance(items, list) else 0
    if count is None and pct is None:
        return failures > 0
    if count is not None and failures > count:
        return True
    return pct is not None and total > 0 and failures * 100.0 / total > pct


# -- inspectionData -----------------------------------------------------------------------------------


def _inspection(run: _Run, before: Env, recorder: _Recorder | None, scope: Scope) -> dict[str, Any]:
    state = run.state
    data: dict[str, Any] = {"input": _text(run.data)}
    request = recorder.request if recorder is not None else None
    result = recorder.result if recorder is not None else _NONE
    if state.jsonata:
        if request is not None:
            data["afterArguments"] = _text(request.parameters)
    else:
        _jsonpath_stages(data, run, before, request, result)
    if result is not _NONE:
        data["result"] = _text(result)
    if run.map_stages is not None:
        stages = run.map_stages
        if not state.jsonata:
            data["afterItemsPath"] = _text(stages["afterItemsPath"])
        data["afterItemSelector"] = _text(stages["afterItemSelector"])
        data["maxConcurrency"] = int(stages["maxConcurrency"] or 0)
        if stages["toleratedFailureCount"] is not None:
            data["toleratedFailureCount"] = int(stages["toleratedFailureCount"])
        if stages["toleratedFailurePercentage"] is not None:
            data["toleratedFailurePercentage"] = float(stages["toleratedFailurePercentage"])
    data["variables"] = _text(scope.visible())
    if run.error_details is not None:
        data["errorDetails"] = run.error_details
    return data


def _jsonpath_stages(data: dict, run: _Run, before: Env, request: TaskRequest | None, result: Any) -> None:
    """afterInputPath, afterParameters, afterResultSelector, afterResultPath: recomputed from the
    input and the raw result with the variables from before the state (the stages are pure)."""
    state = run.state
    try:
        effective = apply_input_path(state.input_path, before)
        data["afterInputPath"] = _text(effective)
        if request is not None:
            data["afterParameters"] = _text(request.parameters)
        elif isinstance(state, model.Pass) and state.parameters is not None:
            data["afterParameters"] = _text(render_payload(state.parameters, before.with_data(effective), "Parameters"))
        if isinstance(state, model.Pass) and run.status == "SUCCEEDED":
            value = state.result if state.has_result else json.loads(data.get("afterParameters", data["afterInputPath"]))
            data["afterResultPath"] = _text(apply_result_path(state.result_path, run.data, value))
        if result is not _NONE and run.status == "SUCCEEDED":
            selected = state.result_selector.render(before.with_data(result)) if state.result_selector is not None else result
            data["afterResultSelector"] = _text(selected)
            data["afterResultPath"] = _text(apply_result_path(state.result_path, run.data, selected))
    except StatesError:
        pass  # the stage that failed is already the test's error


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
