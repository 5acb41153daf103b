"""Run a parsed state machine: one ``run_<Type>`` handler per state class.

The pieces it uses: execution.py (the run's facts, frames, virtual clock), tasks.py (a Task's
attempt against an integration), groups.py (Parallel branches and Map iterations).

A handler takes (execution, state, raw input, frame) and returns (output, next state name or None
at the end); a failure is raised as StatesError. JSONata states go through the same handlers: their
JSONPath fields are inert (InputPath/OutputPath are '$', no Parameters/ResultPath) and dataflow.py
applies Arguments, Output and Assign for both languages. Retry/Catch wrap the work of Task, Parallel and
Map states. Branches and Map iterations run in threads only when they contain a Task (something
that waits on the outside world); pure data states run inline, in order, which is faster under
the GIL and keeps the history deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from emulator.asl import model, redrive
from emulator.asl.choice import parse_timestamp
from emulator.asl.dataflow import (
    catch_output,
    commit,
    evaluate_assign,
    finish,
    finish_simple,
    jsonata_bindings,
    read_value,
    render_payload,
)
from emulator.asl.errors import NO_CHOICE_MATCHED, QUERY_EVALUATION_ERROR, RUNTIME, StatesError
from emulator.asl.execution import Cancelled, Execution, ExecutionTimedOut, Frame
from emulator.asl.groups import MAX_THREADS, run_group
from emulator.asl.history import to_json
from emulator.asl.jsonpath import JsonPath
from emulator.asl.maprun import run_distributed
from emulator.asl.paths import Env, apply_input_path, apply_output_path, apply_result_path
from emulator.asl.redrive import Resume
from emulator.asl.retry import backoff_seconds, find_handler
from emulator.asl.tasks import task_attempt

log = logging.getLogger(__name__)


# -- the loop --------------------------------------------------------------------------------------


def run_block(ex: Execution, block: model.StateMachine, data: Any, frame: Frame, resume: Resume | None = None) -> Any:
    """Run states from StartAt (or, redriven, from where ``resume`` says) until one ends the block;
    returns the block's output. A failure leaving the block carries its redrive point."""
    name: str | None = block.start_at
    if resume is not None:
        name, data = resume.state, resume.input
        frame.scope.restore(resume.variables)
        frame.resume = resume.group
    states = block.states
    while name is not None:
        state = states[name]
        try:
            ex.check(frame)
            data, name = HANDLERS[type(state)](ex, state, data, frame)
        except StatesError as err:
            report_evaluation_failure(ex, state, err, frame)
            redrive.attach(err, state.name, data, frame.scope.values)
            raise
        except (Cancelled, ExecutionTimedOut) as err:
            redrive.attach(err, state.name, data, frame.scope.values)
            raise
        frame.resume = None  # only the state a redrive starts in picks up a group's progress
    return data


def report_evaluation_failure(ex: Execution, state: model.State, err: StatesError, frame: Frame) -> None:
    """A JSONata expression that failed is recorded as AWS does, in an EvaluationFailed event
    naming the state and the field, before the failure is handled or ends the execution."""
    if err.location is None:
        return
    details = {"error": err.name, "state": state.name, "location": err.location}
    if err.cause is not None:
        details["cause"] = err.cause
    err.location = None  # recorded once, however far the error travels
    ex.history.add(frame.cursor, "EvaluationFailed", details)


# -- simple states ---------------------------------------------------------------------------------


def run_Pass(ex: Execution, state: model.Pass, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = ex.env(state, data, frame, entered)
    effective = apply_input_path(state.input_path, env)
    if state.parameters is not None:
        effective = render_payload(state.parameters, env.with_data(effective), "Parameters")
    result = state.result if state.has_result else effective
    output = apply_output_path(state.output_path, apply_result_path(state.result_path, data, result), env)
    output = finish_simple(state, result, output, env)
    ex.exit(state, output, frame)
    return output, state.next


def run_Choice(ex: Execution, state: model.Choice, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = ex.env(state, data, frame, entered)
    effective = apply_input_path(state.input_path, env)
    bindings = jsonata_bindings(env) if state.jsonata else None
    matched = None
    for choice in state.choices:
        if bindings is not None:
            outcome = choice.condition.evaluate(bindings, "Condition")
            if not isinstance(outcome, bool):
                raise StatesError(
                    QUERY_EVALUATION_ERROR,
                    f"The Condition of state {state.name!r} at {choice.pointer} must evaluate to true or false, got {to_json(outcome)[:200]}",
                )
        else:
            outcome = choice.rule.evaluate(env.with_data(effective))
        if outcome:
            matched = choice
            break
    target = matched.next if matched is not None else state.default
    if target is None:
        raise StatesError(
            NO_CHOICE_MATCHED,
            f"No Choice rule of state {state.name!r} matched the input {to_json(effective)[:500]} and there is no Default",
        )
    # The state's Assign always applies, the matched rule's too (it wins on a shared name); both
    # read the variables from before the state.
    rule_assign = matched.assign if matched is not None else None
    if bindings is not None:
        assigned = {**(evaluate_assign(state.assign, env, bindings) or {}), **(evaluate_assign(rule_assign, env, bindings) or {})}
        output = state.output.render(bindings, "Output") if state.output is not None else data
    else:
        selected = env.with_data(effective)
        assigned = {**(evaluate_assign(state.assign, selected) or {}), **(evaluate_assign(rule_assign, selected) or {})}
        output = apply_output_path(state.output_path, effective, env)
    commit(env, assigned, state.name)
    ex.exit(state, output, frame)
    return output, target


def run_Wait(ex: Execution, state: model.Wait, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = ex.env(state, data, frame, entered)
    effective = apply_input_path(state.input_path, env)
    ex.sleep(_wait_seconds(ex, state, env.with_data(effective), frame), frame)
    output = finish_simple(state, effective, apply_output_path(state.output_path, effective, env), env)
    ex.exit(state, output, frame)
    return output, state.next


def _wait_seconds(ex: Execution, state: model.Wait, env: Env, frame: Frame) -> float:
    if state.seconds is not None:
        return float(state.seconds)
    if state.seconds_path is not None:
        value = read_value(state.seconds_path, env, "Seconds" if state.jsonata else "SecondsPath")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StatesError(
                QUERY_EVALUATION_ERROR if state.jsonata else RUNTIME,
                f"{'Seconds' if state.jsonata else 'SecondsPath'} {state.seconds_path.text!r} must select a non-negative integer, got {to_json(value)}",
            )
        return float(value)
    if state.timestamp_path is not None:
        text = read_value(state.timestamp_path, env, "Timestamp" if state.jsonata else "TimestampPath")
    else:
        text = state.timestamp
    moment = parse_timestamp(text)
    if moment is None:
        raise StatesError(
            QUERY_EVALUATION_ERROR if state.jsonata else RUNTIME,
            f"The Timestamp of state {state.name!r} is {to_json(text)}, which is not an RFC 3339 timestamp",
        )
    return (moment - ex.history.now(frame.cursor)).total_seconds()


def run_Succeed(ex: Execution, state: model.Succeed, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = ex.env(state, data, frame, entered)
    effective = apply_input_path(state.input_path, env)
    output = finish_simple(state, effective, apply_output_path(state.output_path, effective, env), env)
    ex.exit(state, output, frame)
    return output, None


def run_Fail(ex: Execution, state: model.Fail, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    env = ex.env(state, data, frame, entered)
    error = _fail_field(state, state.error, state.error_path, env, "Error" if state.jsonata else "ErrorPath")
    cause = _fail_field(state, state.cause, state.cause_path, env, "Cause" if state.jsonata else "CausePath")
    raise StatesError(error or "", cause)


def _fail_field(state: model.Fail, static: str | None, dynamic: Any, env: Env, what: str) -> str | None:
    if dynamic is None:
        return static
    if isinstance(dynamic, model.Template):
        value = dynamic.render(env)["v"]  # an intrinsic function
    else:
        value = read_value(dynamic, env, what)
    if not isinstance(value, str):
        raise StatesError(QUERY_EVALUATION_ERROR if state.jsonata else RUNTIME, f"{what} must select a string, got {to_json(value)}")
    return value


# -- retry / catch -----------------------------------------------------------------------------------


def with_retry(
    ex: Execution,
    state: model.Task | model.Parallel | model.Map,
    data: Any,
    frame: Frame,
    attempt: Callable[[int], Any],
    entered: str,
) -> tuple[Any, str | None]:
    """Run ``attempt(retry_count)`` under the state's Retry and Catch; emits the Exited event."""
    used = [0] * len(state.retry)
    retry_count = 0
    while True:
        try:
            output = attempt(retry_count)
        except StatesError as err:
            report_evaluation_failure(ex, state, err, frame)
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
            output = catch_output(state, catcher, data, error_output, ex.env(state, data, frame, entered, retry_count))
            ex.exit(state, output, frame)
            return output, catcher.next
        ex.exit(state, output, frame)
        return output, state.next


# -- Task ----------------------------------------------------------------------------------------------


def run_Task(ex: Execution, state: model.Task, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)

    def attempt(retry_count: int) -> Any:
        return task_attempt(ex, state, data, frame, entered, retry_count)

    return with_retry(ex, state, data, frame, attempt, entered)


# -- Parallel and Map --------------------------------------------------------------------------------


def run_Parallel(ex: Execution, state: model.Parallel, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    progress = [frame.take_resume()]  # redriven: the branches that finished are not run again

    def attempt(retry_count: int) -> Any:
        env = ex.env(state, data, frame, entered, retry_count)
        effective = apply_input_path(state.input_path, env)
        if state.parameters is not None:
            effective = render_payload(state.parameters, env.with_data(effective), "Arguments" if state.jsonata else "Parameters")
        ex.history.add(frame.cursor, "ParallelStateStarted")
        prior, progress[0] = progress[0], None
        jobs = [_resumable(prior, index, _branch_job(ex, branch, effective)) for index, branch in enumerate(state.branches)]
        threaded = any(b.has_task or (b.has_wait and ex.time_scale > 0) for b in state.branches)
        try:
            results = run_group(ex, jobs, frame, limit=MAX_THREADS, threaded=threaded)
        except StatesError:
            ex.history.add(frame.cursor, "ParallelStateFailed")
            raise
        ex.history.add(frame.cursor, "ParallelStateSucceeded")
        return finish(state, data, results, env)

    return with_retry(ex, state, data, frame, attempt, entered)


def _branch_job(ex: Execution, branch: model.StateMachine, data: Any) -> Callable[..., Any]:
    return lambda child, resume=None: run_block(ex, branch, data, child, resume)


def _resumable(prior: dict | None, index: int, job: Callable[..., Any]) -> Callable[[Frame], Any]:
    """A branch or iteration job under a redrive: a finished one returns its recorded output without
    running; an unfinished one picks up where it stopped (or starts over when it never started)."""
    if prior is None:
        return job
    key = str(index)
    if key in prior.get("done", {}):
        output = prior["done"][key]
        return lambda child: output
    point = prior.get("resume", {}).get(key)
    resume = Resume.from_json(point) if point else None
    return lambda child: job(child, resume)


def run_Map(ex: Execution, state: model.Map, data: Any, frame: Frame) -> tuple[Any, str | None]:
    entered = ex.enter(state, data, frame)
    progress = [frame.take_resume()]  # redriven: the iterations that finished are not run again

    def attempt(retry_count: int) -> Any:
        env = ex.env(state, data, frame, entered, retry_count)
        effective = apply_input_path(state.input_path, env)
        effective_env = env.with_data(effective)
        prior, progress[0] = progress[0], None
        if state.distributed is not None and state.distributed.item_reader is not None:
            items = None  # read from S3 by the Map Run
        elif state.items is not None:  # JSONata Items
            items = state.items.render(jsonata_bindings(env), "Items")
        else:
            items = apply_input_path(state.items_path, effective_env) if state.items_path is not None else effective
        if items is not None and not isinstance(items, list):
            what = "Items" if state.jsonata else "ItemsPath"
            raise StatesError(
                QUERY_EVALUATION_ERROR if state.jsonata else RUNTIME,
                f"{what} of Map state {state.name!r} must select a JSON array, got {to_json(items)[:200]}",
            )
        limit = map_setting(state.max_concurrency, state.max_concurrency_path, effective_env, "MaxConcurrencyPath", integer=True)
        tolerated_count = map_setting(state.tolerated_failure_count, state.tolerated_failure_count_path, effective_env, "ToleratedFailureCountPath", integer=True)
        tolerated_pct = map_setting(state.tolerated_failure_percentage, state.tolerated_failure_percentage_path, effective_env, "ToleratedFailurePercentagePath", integer=False)
        if state.distributed is not None:
            settings = (limit, tolerated_count, tolerated_pct, retry_count, entered)
            results = run_distributed(ex, state, effective_env, items, frame, settings, prior, run_block)
            return finish(state, data, results, env)
        ex.history.add(frame.cursor, "MapStateStarted", {"length": len(items)})
        inputs = []
        for index, item in enumerate(items):
            if state.item_selector is None:
                inputs.append(item)
            else:
                item_env = Env(effective, ex.context(state, entered, retry_count, item=(index, item)), ex.rng, frame.scope)
                inputs.append(render_payload(state.item_selector, item_env, "ItemSelector"))
        jobs = [_resumable(prior, index, _iteration_job(ex, state, index, value)) for index, value in enumerate(inputs)]
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
        return finish(state, data, results, env)

    return with_retry(ex, state, data, frame, attempt, entered)


def _iteration_job(ex: Execution, state: model.Map, index: int, value: Any) -> Callable[..., Any]:
    def job(child: Frame, resume: Resume | None = None) -> Any:
        details = {"name": state.name, "index": index}
        ex.history.add(child.cursor, "MapIterationStarted", details)
        try:
            output = run_block(ex, state.processor, value, child, resume)
        except StatesError:
            ex.history.add(child.cursor, "MapIterationFailed", details)
            raise
        except Cancelled:
            ex.history.add(child.cursor, "MapIterationAborted", details)
            raise
        ex.history.add(child.cursor, "MapIterationSucceeded", details)
        return output

    return job


def map_setting(static: Any, path: Any, env: Env, what: str, integer: bool) -> Any:
    if path is None:
        return static
    if not isinstance(path, JsonPath):  # JSONata: the field itself holds the expression
        what = what.removesuffix("Path")
    value = read_value(path, env, what)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if ok and integer:
        ok = isinstance(value, int)
    if ok and not integer:
        ok = value <= 100
    if not ok:
        error = RUNTIME if isinstance(path, JsonPath) else QUERY_EVALUATION_ERROR
        raise StatesError(error, f"{what} {path.text!r} selected {to_json(value)}, which is not a valid value")
    return value


HANDLERS: dict[type, Callable[..., tuple[Any, str | None]]] = {
    cls: globals()[f"run_{cls.__name__}"] for cls in model.STATE_CLASSES if f"run_{cls.__name__}" in globals()
}
_missing = [cls.__name__ for cls in model.STATE_CLASSES if cls not in HANDLERS]
if _missing:  # checked at import time: a new state class without a handler is a bug
    raise ImportError(f"no run_<Type> handler for state classes {_missing}")
