"""Callback tasks (.waitForTaskToken) end to end through the local Step Functions API: the token
reaches the service, SendTaskSuccess/Failure/Heartbeat answer it with AWS's errors, TimeoutSeconds
and HeartbeatSeconds end the wait, and a wait outlives the process that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from emulator.asl.ports import Integration, TaskOutcome, TaskRequest
from emulator.integrations.callback import WaitForTaskToken
from emulator.services.sns import read_outbox
from emulator.services.stepfunctions.machines import StateMachineSpec
from emulator.services.stepfunctions.server import StepFunctionsServer
from emulator.services.stepfunctions.tokens import TaskTokens
from emulator.storage.layout import Layout

TOPIC = "arn:aws:sns:us-east-1:000000000000:mini-alerts"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def callback_machine(timeout: int | None = None, heartbeat: int | None = None, resource: str = "sns:publish",
                     name: str = "callbacks") -> StateMachineSpec:
    task = {"Type": "Task", "Resource": f"arn:aws:states:::{resource}.waitForTaskToken", "ResultPath": "$.answer",
            "Next": "Done"}
    if resource == "sns:publish":
        task["Parameters"] = {"TopicArn": TOPIC, "Subject": "approve?", "Message": {"token.$": "$$.Task.Token", "model.$": "$.model"}}
    else:
        task["Parameters"] = {"FunctionName": "mini-sleeper", "Payload": {"action": "context", "token.$": "$$.Task.Token"}}
    if timeout:
        task["TimeoutSeconds"] = timeout
    if heartbeat:
        task["HeartbeatSeconds"] = heartbeat
    definition = {"StartAt": "Before", "States": {
        "Before": {"Type": "Pass", "Result": "before", "ResultPath": "$.before", "Next": "Wait for answer"},
        "Wait for answer": task,
        "Done": {"Type": "Pass", "End": True}}}
    arn = f"arn:aws:states:us-east-1:000000000000:stateMachine:{name}"
    return StateMachineSpec("MiniStack", "Callbacks", name, arn, "arn:aws:iam::000000000000:role/callbacks",
                            json.dumps(definition), "")


@pytest.fixture
def api(mini_runtime):
    mini_runtime.machines.machines.append(callback_machine())
    server = StepFunctionsServer(mini_runtime.stepfunctions).start()
    client = boto3.client("stepfunctions", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local",
                          config=Config(retries={"max_attempts": 1}))
    yield client
    server.stop()


def start(api, runtime, machine: StateMachineSpec, name: str, model: str = "m-1") -> str:
    if machine not in runtime.machines.machines:
        runtime.machines.machines.append(machine)
    return api.start_execution(stateMachineArn=machine.arn, name=name, input=json.dumps({"model": model}))["executionArn"]


def wait_for_token(runtime, arn: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in runtime.tokens.waiting():
            if record["executionArn"] == arn:
                return record["token"]
        time.sleep(0.05)
    raise AssertionError(f"{arn} never waited on a task token")


def wait_for_sent(runtime, token: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (runtime.tokens.read(token) or {}).get("requestSent"):
        assert time.monotonic() < deadline, "the request carrying the token was never sent"
        time.sleep(0.05)


def wait_for_message(layout, topic: str, timeout: float = 20) -> dict:
    """The token is recorded before the task's request is sent (as on AWS), so the message may trail it."""
    deadline = time.monotonic() + timeout
    while not (messages := read_outbox(layout, topic)):
        assert time.monotonic() < deadline, f"nothing was published to {topic}"
        time.sleep(0.05)
    return messages[-1]


def wait_for_end(api, arn: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (described := api.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, described
        time.sleep(0.05)
    return described


def test_the_token_reaches_the_topic_and_send_task_success_resumes_with_its_output(api, mini_runtime):
    arn = start(api, mini_runtime, callback_machine(), "ok-1")
    token = wait_for_token(mini_runtime, arn)
    message = json.loads(wait_for_message(mini_runtime.layout, "mini-alerts")["Message"])
    assert message == {"token": token, "model": "m-1"}
    assert api.describe_execution(executionArn=arn)["status"] == "RUNNING"
    api.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
    described = wait_for_end(api, arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["answer"] == {"approved": True}
    types = [e["type"] for e in api.get_execution_history(executionArn=arn)["events"]]
    assert types.count("TaskSucceeded") == 1 and "TaskSubmitted" not in types
    # answered once: any later answer is AWS's TaskTimedOut ("Provided task does not exist anymore")
    with pytest.raises(api.exceptions.TaskTimedOut, match="does not exist anymore"):
        api.send_task_success(taskToken=token, output="{}")


def test_send_task_failure_fails_the_task_with_its_error_and_cause(api, mini_runtime):
    arn = start(api, mini_runtime, callback_machine(), "fail-1")
    token = wait_for_token(mini_runtime, arn)
    api.send_task_failure(taskToken=token, error="ModelRejected", cause="precision too low")
    described = wait_for_end(api, arn)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "ModelRejected", "precision too low")
    failed = [e for e in api.get_execution_history(executionArn=arn)["events"] if e["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "ModelRejected"


def test_the_api_errors_of_send_task(api, mini_runtime):
    with pytest.raises(api.exceptions.InvalidToken):
        api.send_task_success(taskToken="not a token!", output="{}")
    with pytest.raises(api.exceptions.TaskDoesNotExist):
        api.send_task_success(taskToken="0" * 36, output="{}")
    with pytest.raises(api.exceptions.TaskDoesNotExist):
        api.send_task_heartbeat(taskToken="0" * 36)
    arn = start(api, mini_runtime, callback_machine(), "errors-1")
    token = wait_for_token(mini_runtime, arn)
    with pytest.raises(api.exceptions.InvalidOutput, match="not JSON"):
        api.send_task_success(taskToken=token, output="{not json")
    with pytest.raises(api.exceptions.ClientError, match="ValidationException") as caught:  # AWS's front end: the model's limit
        api.send_task_success(taskToken=token, output=json.dumps("x" * 300_000))
    assert "262144" in str(caught.value)[-200:]
    assert api.describe_execution(executionArn=arn)["status"] == "RUNNING"  # a refused answer changes nothing
    api.stop_execution(executionArn=arn)
    assert wait_for_end(api, arn)["status"] == "ABORTED"
    with pytest.raises(api.exceptions.TaskTimedOut):  # the execution stopped waiting
        api.send_task_success(taskToken=token, output="{}")


def test_timeout_seconds_ends_the_wait_with_states_timeout(api, mini_runtime):
    arn = start(api, mini_runtime, callback_machine(timeout=1, name="timeout"), "timeout-1")
    token = wait_for_token(mini_runtime, arn)
    described = wait_for_end(api, arn)
    assert (described["status"], described["error"]) == ("FAILED", "States.Timeout")
    assert "TaskTimedOut" in [e["type"] for e in api.get_execution_history(executionArn=arn)["events"]]
    with pytest.raises(api.exceptions.TaskTimedOut):
        api.send_task_success(taskToken=token, output="{}")


def test_heartbeats_keep_a_task_alive_and_their_absence_times_it_out(api, mini_runtime):
    machine = callback_machine(heartbeat=1, name="heartbeat")
    alive = start(api, mini_runtime, machine, "beats-1")
    token = wait_for_token(mini_runtime, alive)
    for _ in range(8):  # 2.4 s: more than twice HeartbeatSeconds, with a heartbeat every 0.3 s
        api.send_task_heartbeat(taskToken=token)
        time.sleep(0.3)
    assert api.describe_execution(executionArn=alive)["status"] == "RUNNING"
    api.send_task_success(taskToken=token, output='{"done": 1}')
    assert wait_for_end(api, alive)["status"] == "SUCCEEDED"

    silent = start(api, mini_runtime, machine, "beats-2")
    wait_for_token(mini_runtime, silent)
    described = wait_for_end(api, silent)
    assert (described["status"], described["error"]) == ("FAILED", "States.HeartbeatTimeout")


def test_lambda_invoke_wait_for_task_token_invokes_once_then_waits(api, mini_runtime):
    arn = start(api, mini_runtime, callback_machine(resource="lambda:invoke", name="lambda-callback"), "lambda-1")
    token = wait_for_token(mini_runtime, arn)
    time.sleep(0.3)
    assert api.describe_execution(executionArn=arn)["status"] == "RUNNING"  # the function returned; the task waits
    scheduled = [e for e in api.get_execution_history(executionArn=arn)["events"] if e["type"] == "TaskScheduled"]
    assert token in scheduled[0]["taskScheduledEventDetails"]["parameters"]
    api.send_task_success(taskToken=token, output='"yes"')
    described = wait_for_end(api, arn)
    assert described["status"] == "SUCCEEDED" and json.loads(described["output"])["answer"] == "yes"


def test_a_definition_that_does_not_pass_the_token_fails_the_task(api, mini_runtime):
    machine = callback_machine(name="no-token")
    definition = json.loads(machine.definition)
    definition["States"]["Wait for answer"]["Parameters"]["Message"] = {"model.$": "$.model"}
    machine.definition = json.dumps(definition)
    described = wait_for_end(api, start(api, mini_runtime, machine, "no-token-1"))
    assert described["status"] == "FAILED" and "$$.Task.Token" in described["cause"]


_WAITER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from emulator.runtime import Runtime
    from test_callback_tasks import callback_machine
    runtime = Runtime.open(Path({state!r}), Path({root!r}))
    runtime.launch(callback_machine(), {{"model": "m-9"}}, "resumed-1")
""")


def test_a_wait_outlives_its_killed_process_and_resumes_on_the_same_token(mini_runtime, mini_deployment):
    """The process running the execution is killed while it waits; another resumes it from its
    record on disk: the request is not sent again, the old token is answered, the history is one."""
    script = _WAITER.format(root=str(PROJECT_ROOT), tests=str(Path(__file__).parent), state=mini_deployment.state_dir)
    waiter = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    machine = callback_machine()
    mini_runtime.machines.machines.append(machine)
    arn = f"arn:aws:states:us-east-1:000000000000:execution:{machine.name}:resumed-1"
    try:
        token = wait_for_token(mini_runtime, arn, timeout=60)
        wait_for_sent(mini_runtime, token)  # killed after the request went out: it is not sent again
    finally:
        os.killpg(waiter.pid, signal.SIGKILL)
        waiter.wait(10)
    # answered while no process waits on it: the answer is kept for the execution resumed later
    mini_runtime.stepfunctions.send_task_success(taskToken=token, output='{"approved": true}')
    assert mini_runtime.resume_waiting() == [arn]
    assert mini_runtime.resume_waiting() == []  # resumed once: its waiter is this process now
    described = wait_for_describe(mini_runtime, arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["answer"] == {"approved": True}
    assert len(read_outbox(Layout.at(mini_deployment.state_dir), "mini-alerts")) == 1  # published once
    events = mini_runtime.stepfunctions.get_execution_history(executionArn=arn)["events"]
    types = [e["type"] for e in events]
    assert types.count("ExecutionStarted") == 1 and types.count("TaskStateEntered") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


def wait_for_describe(runtime, arn: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (described := runtime.stepfunctions.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, described
        time.sleep(0.05)
    return described


def test_shutting_down_leaves_a_waiting_execution_running_on_disk(api, mini_runtime):
    """`serve` stopping (SIGTERM) aborts running executions but not one waiting on a token: the
    next `serve` resumes it."""
    arn = start(api, mini_runtime, callback_machine(), "shutdown-1")
    token = wait_for_token(mini_runtime, arn)
    began = time.monotonic()
    mini_runtime.stepfunctions.stop_all(timeout=5)
    assert time.monotonic() - began < 2  # not joined: it is left as it is
    assert api.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert mini_runtime.tokens.read(token)["status"] == "WAITING"
    api.send_task_success(taskToken=token, output="{}")  # here it still runs: let it end
    assert wait_for_end(api, arn)["status"] == "SUCCEEDED"


class _CountingPublish(Integration):
    def __init__(self):
        self.sent = []

    def start(self, request: TaskRequest) -> str:
        self.sent.append(request.parameters)
        return "sent"

    def poll(self, handle: str) -> TaskOutcome:
        return TaskOutcome({})


def test_a_request_its_dead_process_never_sent_is_sent_by_the_resumed_execution(tmp_path):
    """Killed between registering the token and sending the request: the resumed execution sends it
    (once), else nobody would ever learn the token and the execution would wait until its timeout."""
    tokens = TaskTokens(Layout.at(tmp_path).stepfunctions_records)
    publish = _CountingPublish()
    waiter = WaitForTaskToken(publish, tokens)
    request = TaskRequest(resource="arn:aws:states:::sns:publish.waitForTaskToken", key="sns:publish.waitForTaskToken",
                          parameters={"Message": {"token": "tok-1"}}, state_name="Ask", task_token="tok-1",
                          execution_arn="arn:aws:states:us-east-1:000000000000:execution:m:run-1", execution_name="run-1")
    tokens.register("tok-1", execution_arn=request.execution_arn, state_name="Ask", resource=request.resource)
    assert waiter.start(request) == "tok-1" and len(publish.sent) == 1  # the dead process's token, sent now
    assert tokens.read("tok-1")["requestSent"]
    waiter.start(request)  # resumed again after the request went out
    assert len(publish.sent) == 1
