"""The Step Functions API answers malformed requests with 400 and its error shape, never 500 with
Python's text; requests are checked against botocore's stepfunctions model; input is limited."""

from __future__ import annotations

import json

import pytest
from rawhttp import raw_request

from emulator.services.stepfunctions.server import StepFunctionsServer


@pytest.fixture
def api(mini_runtime):
    mini_runtime.time_scale = 0.0
    server = StepFunctionsServer(mini_runtime.stepfunctions).start()
    yield server, mini_runtime.machines.machines[0].arn
    server.stop()


def post(url: str, operation: str, body: bytes, headers: str = "") -> tuple[int | None, dict | bytes]:
    request = (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSStepFunctions.{operation}\r\n"
               f"Content-Type: application/x-amz-json-1.0\r\n{headers or f'Content-Length: {len(body)}'}\r\n\r\n").encode()
    status, answer = raw_request(url, request + body)
    payload = answer.split(b"\r\n\r\n", 1)[1] if answer else b""
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, answer


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null", b"{not json"])
def test_a_body_that_is_not_a_json_object_is_400(api, body):
    server, _ = api
    status, answer = post(server.url, "ListExecutions", body)
    assert status == 400, answer
    assert answer["__type"] == "SerializationException"


def test_a_non_string_input_is_400_validation(api):
    server, machine = api
    status, answer = post(server.url, "StartExecution", json.dumps({"stateMachineArn": machine, "input": {"a": 1}}).encode())
    assert status == 400, answer
    assert answer["__type"] == "ValidationException"
    assert "'input'" in answer["message"] and "Traceback" not in answer["message"]


@pytest.mark.parametrize("value", ["ten", 1.5, -1, 1001, True])
def test_a_bad_max_results_is_400_validation(api, value):
    server, machine = api
    status, answer = post(server.url, "ListExecutions", json.dumps({"stateMachineArn": machine, "maxResults": value}).encode())
    assert status == 400, answer
    assert answer["__type"] == "ValidationException", answer
    assert "maxResults" in answer["message"]


def test_start_execution_input_over_256_kib_is_refused(api, mini_runtime):
    server, machine = api
    big = json.dumps({"pad": "x" * (300 * 1024)})
    status, answer = post(server.url, "StartExecution", json.dumps({"stateMachineArn": machine, "input": big}).encode())
    assert status == 400, answer
    assert answer["__type"] == "ValidationException"
    assert "262144" in answer["message"]
    assert not list(mini_runtime.layout.executions_root.rglob("status.json"))  # nothing was started
    # multi-byte characters count as UTF-8 bytes, as AWS counts them
    wide = json.dumps({"pad": "é" * (140 * 1024)})
    status, answer = post(server.url, "StartExecution", json.dumps({"stateMachineArn": machine, "input": wide}).encode())
    assert status == 400 and "262144" in answer["message"], answer


def test_unknown_members_and_missing_required_ones_are_named(api):
    server, _ = api
    status, answer = post(server.url, "DescribeExecution", json.dumps({"executionArnn": "x"}).encode())
    assert status == 400 and answer["__type"] == "ValidationException"
    assert "executionArn" in answer["message"] and "executionArnn" in answer["message"]


@pytest.mark.parametrize("header", ["Content-Length: abc", "Content-Length: -1"])
def test_a_bad_content_length_is_400(api, header):
    server, _ = api
    status, answer = post(server.url, "ListStateMachines", b"{}", header)
    assert status == 400, answer
