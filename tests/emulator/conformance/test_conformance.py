"""Conformance corpus for the ASL interpreter: every case in cases/*.json, expected values from the spec/AWS docs.

A case's ``expected`` is one of
  {"status": "SUCCEEDED", "output": ...}
  {"status": "FAILED" | "TIMED_OUT", "error": "...", "cause": "<substring>" (optional)}
  {"definition_error": "<substring of the DefinitionError message>"}
optionally with ``task_calls`` ({state name: calls}, compared exactly) and ``max_wall_seconds`` (the
run must end within that much real time, e.g. when a failure must stop a slow branch) and
``max_concurrent_tasks`` (the most task calls in flight at once). A case's ``clock_start`` freezes
the run's clock at that instant, so context timestamps and Wait deadlines are exact. ``history_types`` lists the
event types the execution history must have, in order. ``history_gaps`` checks time on the virtual
clock: [{"from": type, "to": type, "seconds" | "at_most": [...]}] compares the seconds from each
``from`` event to the next ``to`` event (within GAP_TOLERANCE, which absorbs real elapsed time).
``history_events`` lists events that must appear: [{"type": T, "occurrence": n (default 1),
"<x>EventDetails": {subset of the details}}]. Every executed case also checks the history's shape:
ids 1..n in order, ExecutionStarted first, and a last event that matches the status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from emulator.asl import run_definition
from emulator.asl.errors import DefinitionError

from .corpus import Case, contains_json, event_gaps, load_cases, same_json
from .fakes import scripted_integrations

CASES = load_cases()
GAP_TOLERANCE = 0.5
CLOSING_EVENT = {"SUCCEEDED": "ExecutionSucceeded", "FAILED": "ExecutionFailed", "TIMED_OUT": "ExecutionTimedOut"}


def test_corpus_is_large_and_well_formed():
    # Issue #5 asked for at least 80 cases, issue 18 for 70 more (variables, JSONata: 102 run cases
    # here, plus the TestState/validation cases in api_cases/); ids must be unique so a failure
    # names exactly one case.
    ids = [case.id for case in CASES]
    assert len(ids) >= 400
    assert sum(case.feature in ("variables", "jsonata") for case in CASES) >= 100
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case.comment.strip(), f"{case.id} has no comment citing its rule"
        expected = case.expected
        assert ("definition_error" in expected) != ("status" in expected), case.id
        if expected.get("status") == "SUCCEEDED":
            assert "output" in expected, case.id
        elif "status" in expected:
            assert expected["status"] in ("FAILED", "TIMED_OUT") and "error" in expected, case.id


def _frozen_clock(case: Case) -> Callable[[], datetime] | None:
    if case.clock_start is None:
        return None
    instant = datetime.fromisoformat(case.clock_start)
    return lambda: instant


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case):
    integrations, fake = scripted_integrations(case.tasks)
    expected = case.expected

    if "definition_error" in expected:
        with pytest.raises(DefinitionError) as raised:
            run_definition(case.definition, case.input, integrations=integrations, time_scale=0.0)
        assert expected["definition_error"].lower() in str(raised.value).lower()
        assert fake.calls == [], "nothing may run when the definition is invalid"
        return

    started = time.monotonic()
    result = run_definition(
        case.definition,
        case.input,
        integrations=integrations,
        execution_name=case.execution_name,
        state_machine_name=case.state_machine_name,
        time_scale=0.0,
        clock=_frozen_clock(case),
    )
    elapsed = time.monotonic() - started
    summary = f"status={result.status} error={result.error} cause={result.cause} output={json.dumps(result.output)}"
    assert result.status == expected["status"], summary
    if "output" in expected:
        assert same_json(result.output, expected["output"]), summary
    if "error" in expected:
        assert result.error == expected["error"], summary
    if "cause" in expected:
        assert result.cause is not None and expected["cause"] in result.cause, summary
    if "max_wall_seconds" in expected:
        assert elapsed <= expected["max_wall_seconds"], f"took {elapsed:.1f} s"
    if "max_concurrent_tasks" in expected:
        assert fake.max_in_flight <= expected["max_concurrent_tasks"], f"{fake.max_in_flight} tasks ran at once"
    if "task_calls" in expected:
        assert fake.call_counts() == expected["task_calls"]
    history = result.history
    assert [event["id"] for event in history] == list(range(1, len(history) + 1))
    assert history[0]["type"] == "ExecutionStarted"
    assert history[-1]["type"] == CLOSING_EVENT[expected["status"]]
    for wanted in case.history_events:
        matching = [event for event in history if event["type"] == wanted["type"]]
        occurrence = wanted.get("occurrence", 1)
        assert len(matching) >= occurrence, f"no {wanted['type']} event number {occurrence}"
        details = {k: v for k, v in wanted.items() if k not in ("type", "occurrence")}
        assert contains_json(matching[occurrence - 1], details), f"{matching[occurrence - 1]} lacks {details}"
    if case.history_types is not None:
        assert [event["type"] for event in result.history] == case.history_types
    for gap in case.history_gaps:
        actual = event_gaps(result.history, gap["from"], gap["to"])
        if "seconds" in gap:
            assert len(actual) == len(gap["seconds"]), f"{gap}: {actual}"
            assert all(abs(a - e) <= GAP_TOLERANCE for a, e in zip(actual, gap["seconds"])), f"{gap}: {actual}"
        if "at_most" in gap:
            assert len(actual) == len(gap["at_most"]), f"{gap}: {actual}"
            assert all(a <= e + GAP_TOLERANCE for a, e in zip(actual, gap["at_most"])), f"{gap}: {actual}"
