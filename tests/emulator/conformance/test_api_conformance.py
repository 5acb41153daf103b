"""Conformance of the TestState and ValidateStateMachineDefinition cores (api_cases/*.json).

Each case is ``{"name", "comment" (the AWS page it is written from), "request" (the API's request
fields, JSON strings where the API takes strings), "expected"}``. ``expected`` is either
``{"raises": "<AWS error code>"}`` or a subset of the response: JSON-string fields (``output``,
``inspectionData.input``, ...) are compared as the JSON values they hold, ``absent`` lists response
keys that must not be there and ``inspectionData_absent`` inspectionData keys that must not be.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator.asl.teststate import InvalidDefinition, InvalidExecutionInput, run_test_state
from emulator.asl.validate import ValidationException, validate_definition

from .corpus import contains_json

CASES_DIR = Path(__file__).parent / "api_cases"
ERRORS = {"ValidationException": ValidationException, "InvalidDefinition": InvalidDefinition, "InvalidExecutionInput": InvalidExecutionInput}
# TestState request field -> run_test_state keyword
TEST_STATE_ARGS = {
    "definition": "definition", "input": "input", "inspectionLevel": "inspection_level", "variables": "variables",
    "stateName": "state_name", "mock": "mock", "context": "context", "stateConfiguration": "state_configuration",
    "roleArn": "role_arn", "revealSecrets": "reveal_secrets",
}
VALIDATE_ARGS = {"definition": "definition", "type": "type", "severity": "severity", "maxResults": "max_results"}
JSON_FIELDS = {"output", "input", "afterArguments", "afterInputPath", "afterParameters", "result", "afterResultSelector",
               "afterResultPath", "variables", "afterItemsPath", "afterItemSelector"}


def _load(name: str) -> list[dict]:
    return json.loads((CASES_DIR / f"{name}.json").read_text())


TEST_STATE_CASES = _load("teststate")
VALIDATE_CASES = _load("validate")


def test_api_corpus_is_well_formed():
    for name, cases in (("teststate", TEST_STATE_CASES), ("validate", VALIDATE_CASES)):
        ids = [case["name"] for case in cases]
        assert len(ids) == len(set(ids)), name
        for case in cases:
            assert case["comment"].strip() and "AWS" in case["comment"], f"{name}::{case['name']} must cite its AWS source"


def _decoded(response: dict) -> dict:
    out = {key: json.loads(value) if key in JSON_FIELDS else value for key, value in response.items()}
    if "inspectionData" in out:
        out["inspectionData"] = {k: json.loads(v) if k in JSON_FIELDS else v for k, v in out["inspectionData"].items()}
    return out


def _check(call, expected: dict) -> None:
    if "raises" in expected:
        with pytest.raises(ERRORS[expected["raises"]]):
            call()
        return
    response = call()
    decoded = _decoded(response)
    wanted = {k: v for k, v in expected.items() if k not in ("absent", "inspectionData_absent")}
    assert contains_json(decoded, wanted), f"{json.dumps(decoded)} lacks {json.dumps(wanted)}"
    for key in expected.get("absent", []):
        assert key not in response, f"{key} must be absent: {response}"
    for key in expected.get("inspectionData_absent", []):
        assert key not in response.get("inspectionData", {}), f"inspectionData.{key} must be absent: {response}"


@pytest.mark.parametrize("case", TEST_STATE_CASES, ids=[case["name"] for case in TEST_STATE_CASES])
def test_test_state(case: dict):
    kwargs = {TEST_STATE_ARGS[key]: value for key, value in case["request"].items()}
    clock = lambda: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    _check(lambda: run_test_state(**kwargs, clock=clock, rng=random.Random(1)), case["expected"])


@pytest.mark.parametrize("case", VALIDATE_CASES, ids=[case["name"] for case in VALIDATE_CASES])
def test_validate(case: dict):
    kwargs = {VALIDATE_ARGS[key]: value for key, value in case["request"].items()}
    expected = case["expected"]
    if "diagnostics" in expected and "raises" not in expected:
        # Diagnostics are compared one by one as subsets (messages are the emulator's own words).
        response = validate_definition(**kwargs)
        assert response["result"] == expected["result"], response
        assert len(response["diagnostics"]) == len(expected["diagnostics"]), response
        for got, want in zip(response["diagnostics"], expected["diagnostics"]):
            assert contains_json(got, want), f"{got} lacks {want}"
            assert got["message"], got
        if "truncated" in expected:
            assert response["truncated"] is expected["truncated"]
        return
    _check(lambda: validate_definition(**kwargs), expected)
