"""The Lambda integration runs the real handler of the synthesized mini app in its own process."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from emulator.asl.errors import StatesError

INVOKE = "arn:aws:states:::lambda:invoke"



@pytest.fixture
def reader(mini_runtime):
    return mini_runtime.deployment.function("MiniStack-ReaderF7BF189D")


def test_invoke_reads_s3_through_plain_boto3(run_task, mini_runtime, reader):
    bucket = reader.environment["BUCKET"]
    mini_runtime.s3.put_bytes(f"s3://{bucket}/raw/a.csv", b"h1,h2\n1,2\n")
    output = run_task(mini_runtime, INVOKE, {"FunctionName": reader.arn, "Payload": {"key": "raw/a.csv"}})
    assert output["Payload"] == {"size": 10, "first_line": "h1,h2"}
    assert output["StatusCode"] == 200 and output["ExecutedVersion"] == "$LATEST"
    request_id = output["SdkResponseMetadata"]["RequestId"]
    assert output["SdkHttpMetadata"]["HttpHeaders"]["x-amzn-RequestId"] == request_id
    assert output["SdkHttpMetadata"]["HttpStatusCode"] == 200
    # The handler's print went to the execution's log file, framed like CloudWatch.
    log = (Path(mini_runtime.state_dir) / "executions" / "mini-training" / "exec-1" / "logs"
           / f"{reader.name}.log").read_text()
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert "read 10 bytes" in log and f"REPORT RequestId: {request_id}" in log


def test_handler_writes_through_boto3(run_task, mini_runtime, reader):
    run_task(mini_runtime, INVOKE, {"FunctionName": f"{reader.name}:$LATEST",
                                    "Payload": {"action": "put", "key": "out/x.json", "body": {"a": 1}}})
    bucket = reader.environment["BUCKET"]
    assert json.loads(mini_runtime.s3.get_bytes(f"s3://{bucket}/out/x.json")) == {"a": 1}


def test_bare_function_arn_gets_the_state_input_and_a_context(run_task, mini_runtime, reader):
    output = run_task(mini_runtime, reader.arn, {"action": "context"})
    assert output["function_name"] == reader.name
    assert output["arn"] == reader.arn
    assert output["memory"] == "256"
    assert 0 < output["remaining_ms"] <= 5000
    assert output["log_group"] == f"/aws/lambda/{reader.name}"
    assert output["env"] == {"BUCKET": reader.environment["BUCKET"], "TOPIC_ARN": reader.environment["TOPIC_ARN"],
                             "AWS_REGION": "us-east-1", "STAGE": "test"}


def test_exception_is_named_by_its_class_with_lambdas_cause(run_task, mini_runtime, reader):
    with pytest.raises(StatesError) as failure:
        run_task(mini_runtime, INVOKE, {"FunctionName": reader.name, "Payload": {"action": "fail", "why": "empty"}})
    assert failure.value.name == "InputValidationError"
    cause = json.loads(failure.value.cause)
    assert list(cause) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert cause["errorMessage"] == "bad input: empty" and cause["errorType"] == "InputValidationError"
    assert "handler.py" in cause["stackTrace"][0] and "raise InputValidationError" in cause["stackTrace"][0]


def test_function_timeout_is_enforced(run_task, mini_runtime):
    started = time.monotonic()
    with pytest.raises(StatesError) as failure:
        run_task(mini_runtime, INVOKE, {"FunctionName": "mini-sleeper", "Payload": {"action": "sleep", "seconds": 30}})
    assert time.monotonic() - started < 10
    assert failure.value.name == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(failure.value.cause)["errorMessage"]


def test_unknown_function_and_broken_handler(run_task, mini_runtime, reader):
    with pytest.raises(StatesError) as missing:
        run_task(mini_runtime, INVOKE, {"FunctionName": "nope", "Payload": {}})
    assert missing.value.name == "Lambda.ResourceNotFoundException"
    assert "function:nope" in missing.value.cause
    broken = dataclasses.replace(reader, name="broken", handler="handler.missing")
    mini_runtime.deployment.functions.append(broken)
    with pytest.raises(StatesError) as not_found:
        run_task(mini_runtime, INVOKE, {"FunctionName": "broken", "Payload": {}})
    assert not_found.value.name == "Runtime.HandlerNotFound"
    mini_runtime.deployment.functions.append(dataclasses.replace(reader, name="gone", handler="nomodule.handler"))
    with pytest.raises(StatesError) as import_error:
        run_task(mini_runtime, INVOKE, {"FunctionName": "gone", "Payload": {}})
    assert import_error.value.name == "Runtime.ImportModuleError"
    assert "Unable to import module 'nomodule'" in import_error.value.cause


def test_handler_cannot_import_the_project(run_task, mini_runtime, reader, tmp_path):
    """Only the asset folder is importable, as in Lambda: not emulator/, not the project."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(
        "import importlib.util\n"
        "def handler(event, context):\n"
        "    return [importlib.util.find_spec(m) is not None for m in ('emulator', 'stacks', 'boto3')]\n")
    mini_runtime.deployment.functions.append(dataclasses.replace(reader, name="probe", handler="probe.handler",
                                                                 code_dir=str(code)))
    assert run_task(mini_runtime, INVOKE, {"FunctionName": "probe"})["Payload"] == [False, False, True]


def test_event_invocation_answers_202_and_runs_on(run_task, mini_runtime, reader):
    output = run_task(mini_runtime, INVOKE, {"FunctionName": reader.name, "InvocationType": "Event",
                                             "Payload": {"action": "put", "key": "async/x.json", "body": 1}})
    assert output["StatusCode"] == 202 and output["Payload"] == ""
    uri = f"s3://{reader.environment['BUCKET']}/async/x.json"
    deadline = time.monotonic() + 20
    while not mini_runtime.s3.exists(uri):
        assert time.monotonic() < deadline, "the Event invocation never ran"
        time.sleep(0.05)
    assert run_task(mini_runtime, INVOKE, {"FunctionName": reader.name, "InvocationType": "DryRun"})["StatusCode"] == 204
