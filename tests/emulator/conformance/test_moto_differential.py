"""Differential tests: the same task-free corpus cases under moto's ASL interpreter and ours.

moto (5.2.5) executes state machines when ``execute_state_machine`` is on. For each eligible case we
check moto against the case's expected (spec/AWS) answer and against our interpreter: status and
output, or status and error name. Where moto departs from the spec/AWS the case carries
``"moto": {"xfail": "moto bug: ..."}`` and the moto side is marked xfail(strict=True): the corpus
keeps the spec's answer and the test names moto's bug instead of copying it. ``"moto": {"skip": "..."}`` leaves out cases moto cannot run at all (non-object input,
real waits).
"""

from __future__ import annotations

import json
import logging
import os
import time
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from emulator.asl import run_definition

from .corpus import Case, load_cases, same_json

DIFF_FEATURES = (
    "pass", "paths", "choice", "parallel", "map", "succeed_fail", "intrinsics", "context", "catch", "runtime_errors",
    "variables", "jsonata",
)
ROLE_ARN = "arn:aws:iam::123456789012:role/conformance"
POLL_LIMIT_SECONDS = 10.0


def _eligible(case: Case) -> bool:
    return not case.tasks and "definition_error" not in case.expected and "skip" not in case.moto


def _param(case: Case):
    marks = []
    if "xfail" in case.moto:
        marks.append(pytest.mark.xfail(strict=True, reason=case.moto["xfail"]))
    return pytest.param(case, id=case.id, marks=marks)


CASES = [case for case in load_cases(DIFF_FEATURES) if _eligible(case)]


@pytest.fixture(scope="module")
def sfn():
    """One moto Step Functions backend for the module; each case creates and deletes its machine."""
    # moto logs a full component dump for every failed execution; keep test output readable.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    fake_credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with mock.patch.dict(os.environ, fake_credentials), mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}}
    ):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def run_on_moto(client, case: Case) -> dict:
    """Status, output (parsed) and error of the case's execution under moto."""
    machine = client.create_state_machine(
        name=case.state_machine_name, definition=json.dumps(case.definition), roleArn=ROLE_ARN
    )
    try:
        execution = client.start_execution(
            stateMachineArn=machine["stateMachineArn"], name=case.execution_name, input=json.dumps(case.input)
        )
        deadline = time.monotonic() + POLL_LIMIT_SECONDS
        while True:
            described = client.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    finally:
        # Frees the name: several cases share the default state machine name.
        client.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    return {"status": described["status"], "output": _decode(described.get("output")), "error": described.get("error")}


def _decode(output: str | None):
    if output is None:
        return None
    try:
        return json.loads(output)
    except ValueError:
        # moto returns a bare string result without JSON quotes; that is API serialisation, not ASL semantics.
        return output


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_moto_agrees(sfn, case: Case):
    ours = run_definition(
        case.definition,
        case.input,
        execution_name=case.execution_name,
        state_machine_name=case.state_machine_name,
        time_scale=0.0,
    )
    theirs = run_on_moto(sfn, case)
    expected = case.expected
    assert theirs["status"] == expected["status"], f"moto={theirs} expected={expected}"
    if "output" in expected:
        assert same_json(theirs["output"], expected["output"]), f"moto={theirs['output']} expected={expected}"
    else:
        assert theirs["error"] == expected["error"], f"moto={theirs} expected={expected}"
    # moto follows the spec here, so our interpreter must agree with it.
    assert theirs["status"] == ours.status, f"moto={theirs} ours={ours.status} {ours.error} {ours.output}"
    if ours.status == "SUCCEEDED":
        assert same_json(theirs["output"], ours.output), f"moto={theirs['output']} ours={ours.output}"
    else:
        assert theirs["error"] == ours.error, f"moto={theirs} ours={ours.error}: {ours.cause}"
