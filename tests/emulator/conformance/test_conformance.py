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

Distributed Map and redrive cases (issue 18) add ``s3`` (objects put in a local S3 store before the
run, reached through the ``s3:*`` integrations the runtime registers), ``expected.s3_files`` ({glob:
JSON every matching object must contain, lists compared item by item}), ``expected.map_run``
(a subset of the Map Run record) and ``redrive``: {"tasks": a new script, "expected": {...}}: the
first run's record is redriven (asl/redrive.py) and checked like a run, with
``history_after_redrive`` the event types after ExecutionRedriven.
"""

from __future__ import annotations

import fnmatch
import json
import random
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from emulator.asl import run_definition
from emulator.asl.errors import DefinitionError
from emulator.asl.redrive import Redrive
from emulator.integrations.s3_sdk import register_map_run
from emulator.services.s3.store import LocalS3
from emulator.storage.mapruns import map_runs_of

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
    assert sum(case.feature in ("distributed_map", "redrive") for case in CASES) >= 60  # issue 18's second half
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


def _subset(actual, expected) -> bool:
    """contains_json, with lists compared element by element (same length)."""
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(_subset(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(actual[k], v) for k, v in expected.items())
    return same_json(actual, expected)


def _local_s3(case: Case, root: Path, integrations) -> LocalS3:
    s3 = LocalS3(root)
    for path, content in (case.s3 or {}).items():
        bucket, _, key = path.partition("/")
        (root / bucket).mkdir(parents=True, exist_ok=True)
        if key:
            s3.put_bytes(f"s3://{bucket}/{key}", (content if isinstance(content, str) else json.dumps(content)).encode())
    register_map_run(integrations, s3)
    return s3


def _check_s3(s3: LocalS3, expected: dict) -> None:
    for pattern, wanted in expected.items():
        bucket, _, key_glob = pattern.partition("/")
        keys = [key for key in s3.list_keys(bucket) if fnmatch.fnmatch(key, key_glob)]
        if wanted is None:
            assert not keys, f"{pattern} should not exist: {keys}"
            continue
        assert len(keys) == 1, f"{pattern} matched {keys}"
        text = s3.get_bytes(f"s3://{bucket}/{keys[0]}").decode()
        value = json.loads(text) if not keys[0].endswith(".jsonl") else [json.loads(line) for line in text.splitlines()]
        assert _subset(value, wanted), f"{pattern}: {json.dumps(value)[:1500]}"


def _check_result(result, expected: dict, fake, history: list[dict], elapsed: float) -> None:
    summary = f"status={result.status} error={result.error} cause={result.cause} output={json.dumps(result.output)}"
    assert result.status == expected["status"], summary
    if "output" in expected:
        assert same_json(result.output, expected["output"]), summary
    if "error" in expected:
        assert result.error == expected["error"], summary
    if "cause" in expected:
        assert result.cause is not None and expected["cause"] in result.cause, summary
    if "task_calls" in expected:
        assert fake.call_counts() == expected["task_calls"]
    assert [event["id"] for event in history] == list(range(1, len(history) + 1))
    assert history[0]["type"] == "ExecutionStarted"
    assert history[-1]["type"] == CLOSING_EVENT[expected["status"]]


def _run_with_records(case: Case, tmp_path: Path) -> None:
    """A Distributed Map or redrive case: a local S3 store and an execution record on disk."""
    integrations, fake = scripted_integrations(case.tasks)
    s3 = _local_s3(case, tmp_path / "s3", integrations)
    record = tmp_path / "record"
    options = {"integrations": integrations, "execution_name": case.execution_name, "state_machine_name": case.state_machine_name,
                   "time_scale": 0.0, "history_dir": record, "rng": random.Random(7)}
    expected = case.expected
    if "definition_error" in expected:
        with pytest.raises(DefinitionError) as raised:
            run_definition(case.definition, case.input, **options)
        assert expected["definition_error"].lower() in str(raised.value).lower()
        return
    started = time.monotonic()
    result = run_definition(case.definition, case.input, **options)
    _check_result(result, expected, fake, result.history, time.monotonic() - started)
    for wanted in case.history_events:
        matching = [event for event in result.history if event["type"] == wanted["type"]]
        assert matching, f"no {wanted['type']} event"
        details = {k: v for k, v in wanted.items() if k not in ("type", "occurrence")}
        assert contains_json(matching[wanted.get("occurrence", 1) - 1], details)
    if case.history_types is not None:
        assert [event["type"] for event in result.history] == case.history_types
    _check_s3(s3, expected.get("s3_files", {}))
    if "map_run" in expected:
        runs = list(map_runs_of(record))
        assert len(runs) == 1 and _subset(runs[0], expected["map_run"]), runs
    if case.redrive is None:
        return
    integrations_again, fake_again = scripted_integrations(case.redrive.get("tasks"))
    register_map_run(integrations_again, s3)
    again = dict(options, integrations=integrations_again)
    redriven = run_definition(None, **again, redrive=Redrive.load(record))
    after = case.redrive["expected"]
    assert redriven.execution_arn == result.execution_arn
    _check_result(redriven, after, fake_again, redriven.history, 0.0)
    types = [event["type"] for event in redriven.history]
    assert types[:len(result.history)] == [event["type"] for event in result.history], "the history goes on, unchanged"
    assert types[len(result.history)] == "ExecutionRedriven"
    if "history_after_redrive" in after:
        assert types[len(result.history) + 1:] == after["history_after_redrive"]
    _check_s3(s3, after.get("s3_files", {}))
    if "map_run" in after:
        runs = list(map_runs_of(record))
        assert len(runs) == 1 and _subset(runs[0], after["map_run"]), runs


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case, tmp_path: Path):
    if case.s3 is not None or case.redrive is not None:
        _run_with_records(case, tmp_path)
        return
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
