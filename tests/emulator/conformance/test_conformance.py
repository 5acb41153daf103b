"""Conformance corpus for the ASL interpreter: every case in cases/*.json, expected values from the spec/AWS docs.

A case's ``expected`` is one of
  {"status": "SUCCEEDED", "output": ...}
  {"status": "FAILED" | "TIMED_OUT", "error": "...", "cause": "<substring>" (optional)}
  {"definition_error": "<substring of the DefinitionError message>"}
optionally with ``task_calls`` ({state name: calls}, compared exactly). ``history_types`` lists the
event types the execution history must have, in order.
"""

from __future__ import annotations

import json

import pytest

from emulator.asl import run_definition
from emulator.asl.errors import DefinitionError

from .corpus import Case, load_cases, same_json
from .fakes import scripted_integrations

CASES = load_cases()


def test_corpus_is_large_and_well_formed():
    # Issue #5 asks for at least 80 cases; ids must be unique so a failure names exactly one case.
    ids = [case.id for case in CASES]
    assert len(ids) >= 80
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert case.comment.strip(), f"{case.id} has no comment citing its rule"
        expected = case.expected
        assert ("definition_error" in expected) != ("status" in expected), case.id
        if expected.get("status") == "SUCCEEDED":
            assert "output" in expected, case.id
        elif "status" in expected:
            assert expected["status"] in ("FAILED", "TIMED_OUT") and "error" in expected, case.id


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

    result = run_definition(
        case.definition,
        case.input,
        integrations=integrations,
        execution_name=case.execution_name,
        state_machine_name=case.state_machine_name,
        time_scale=0.0,
    )
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
    if case.history_types is not None:
        assert [event["type"] for event in result.history] == case.history_types
