"""The Step Functions API on localhost, driven by an unchanged boto3 client against the mini stack."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config

from emulator.services.stepfunctions.server import StepFunctionsServer

BUCKET = "ministack-databuckete3889a50"


@pytest.fixture
def sfn(mini_runtime):
    mini_runtime.time_scale = 0.0
    server = StepFunctionsServer(mini_runtime.stepfunctions).start()
    yield boto3.client("stepfunctions", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local",
                       config=Config(retries={"max_attempts": 1}, inject_host_prefix=False))  # TestState: sync-<host>
    server.stop()


def machine_arn(sfn) -> str:
    machines = sfn.list_state_machines()["stateMachines"]
    assert [m["name"] for m in machines] == ["mini-training"]
    return machines[0]["stateMachineArn"]


def wait_for_end(sfn, arn: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, described
        time.sleep(0.05)
    return described


def test_start_describe_list_and_history_of_an_execution(sfn, mini_runtime):
    mini_runtime.s3.put_bytes(f"s3://{BUCKET}/raw/data.csv", b"a,b\n1,2\n")
    arn = machine_arn(sfn)
    described_machine = sfn.describe_state_machine(stateMachineArn=arn)
    assert json.loads(described_machine["definition"])["StartAt"] == "Read"

    started = sfn.start_execution(stateMachineArn=arn, name="api-1", input=json.dumps({"key": "raw/data.csv"}))
    assert started["executionArn"] == "arn:aws:states:us-east-1:000000000000:execution:mini-training:api-1"
    described = wait_for_end(sfn, started["executionArn"])
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["read"] == {"size": 8}
    assert described["stopDate"] >= described["startDate"] == started["startDate"]

    listed = sfn.list_executions(stateMachineArn=arn, statusFilter="SUCCEEDED")["executions"]
    assert [e["name"] for e in listed] == ["api-1"]
    events = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
    assert "LambdaFunctionSucceeded" in [e["type"] for e in events] or "TaskSucceeded" in [e["type"] for e in events]
    newest_first = sfn.get_execution_history(executionArn=started["executionArn"], reverseOrder=True, maxResults=2)
    assert newest_first["events"][0]["type"] == "ExecutionSucceeded" and "nextToken" in newest_first


def test_a_failed_execution_reports_its_error_and_cause(sfn):
    arn = sfn.start_execution(stateMachineArn=machine_arn(sfn), name="api-bad", input='{"key": "missing.csv"}')["executionArn"]
    described = wait_for_end(sfn, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "PipelineFailed" and described["cause"] == "see the notification"


def test_stop_execution_aborts_a_running_one(sfn):
    arn = sfn.start_execution(stateMachineArn=machine_arn(sfn), name="api-stop",
                              input=json.dumps({"action": "sleep", "seconds": 4}))["executionArn"]
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=arn)
    described = sfn.describe_execution(executionArn=arn)
    assert described["status"] == "ABORTED"
    assert sfn.get_execution_history(executionArn=arn)["events"][-1]["type"] == "ExecutionAborted"


def test_errors_are_the_modelled_exceptions(sfn):
    arn = machine_arn(sfn)
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn="arn:aws:states:us-east-1:000000000000:execution:mini-training:nope")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn="arn:aws:states:us-east-1:000000000000:stateMachine:other")
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_execution(executionArn="not-an-arn")
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input="{not json")
    with pytest.raises(sfn.exceptions.InvalidName):
        sfn.start_execution(stateMachineArn=arn, name="has spaces")
    sfn.start_execution(stateMachineArn=arn, name="twice", input='{"key": "missing.csv"}')
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="twice", input='{"key": "other.csv"}')


def test_concurrent_starts_of_one_name_run_it_once(sfn):
    from concurrent.futures import ThreadPoolExecutor

    arn, body = machine_arn(sfn), json.dumps({"action": "sleep", "seconds": 2})
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: sfn.start_execution(stateMachineArn=arn, name="once", input=body), range(4)))
    assert len({a["executionArn"] for a in answers}) == 1
    execution = answers[0]["executionArn"]
    assert len([e for e in sfn.get_execution_history(executionArn=execution)["events"] if e["type"] == "ExecutionStarted"]) == 1
    sfn.stop_execution(executionArn=execution)
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_shutdown_leaves_no_execution_running(mini_runtime):
    mini_runtime.time_scale = 0.0
    api = mini_runtime.stepfunctions
    machine = mini_runtime.deployment.state_machines[0].arn
    arn = api.call("StartExecution", {"stateMachineArn": machine, "name": "left",
                                      "input": json.dumps({"action": "sleep", "seconds": 4})})["executionArn"]
    assert api.call("DescribeExecution", {"executionArn": arn})["status"] == "RUNNING"
    api.stop_all()
    assert api.call("DescribeExecution", {"executionArn": arn})["status"] == "ABORTED"


def test_names_follow_the_aws_rule_and_never_leave_the_executions_folder(sfn):
    arn = machine_arn(sfn)
    assert sfn.start_execution(stateMachineArn=arn, name="run.v2@team+1", input='{"key": "missing.csv"}')["executionArn"].endswith(":run.v2@team+1")
    for bad in ("..", "a/b", "a b"):
        with pytest.raises(sfn.exceptions.InvalidName):
            sfn.start_execution(stateMachineArn=arn, name=bad)
    # over the model's length limit: AWS's front end refuses it before the name rule
    with pytest.raises(sfn.exceptions.ValidationException, match="less than or equal to 80"):
        sfn.start_execution(stateMachineArn=arn, name="x" * 81)
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(executionArn="arn:aws:states:us-east-1:000000000000:execution:mini-training:..")


def test_stop_execution_keeps_its_error_and_cause(sfn, mini_runtime):
    arn = machine_arn(sfn)
    execution = sfn.start_execution(stateMachineArn=arn, name="stopped-why",
                                    input=json.dumps({"action": "sleep", "seconds": 4}))["executionArn"]
    sfn.stop_execution(executionArn=execution, error="Operator.Cancelled", cause="wrong table uploaded")
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "ABORTED"
    assert (described["error"], described["cause"]) == ("Operator.Cancelled", "wrong table uploaded")
    last = sfn.get_execution_history(executionArn=execution, reverseOrder=True)["events"][0]
    assert last["type"] == "ExecutionAborted"
    assert last["executionAbortedEventDetails"] == {"error": "Operator.Cancelled", "cause": "wrong table uploaded"}


def test_validate_and_test_state_through_boto3(sfn):
    ok = sfn.validate_state_machine_definition(definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    assert ok["result"] == "OK" and ok["diagnostics"] == []
    bad = sfn.validate_state_machine_definition(definition=json.dumps(
        {"StartAt": "Nope", "States": {"P": {"Type": "Pass", "End": True}}}))
    assert bad["result"] == "FAIL" and bad["diagnostics"][0]["severity"] == "ERROR"
    tested = sfn.test_state(definition=json.dumps({"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, 2)"},
                                                   "Next": "After"}),
                            roleArn="arn:aws:iam::000000000000:role/r", input='{"a": 40}')
    assert tested["status"] == "SUCCEEDED" and json.loads(tested["output"]) == {"sum": 42}
    assert tested["nextState"] == "After"
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition='{"Type": "Nope"}', roleArn="arn:aws:iam::000000000000:role/r", input="{}")
