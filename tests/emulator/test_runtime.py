"""The composition root: one launcher for every execution, records on the wall clock."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

from emulator.storage.executions import read_execution


def test_a_launched_execution_records_wall_clock_times(mini_runtime):
    """A Wait of an hour, played at time scale 0, must not put the stop time an hour in the future."""
    mini_runtime.time_scale = 0.0
    machine = dataclasses.replace(mini_runtime.deployment.state_machines[0], definition=json.dumps(
        {"StartAt": "Hour", "States": {"Hour": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    before = datetime.now().astimezone() - timedelta(milliseconds=1)  # records keep milliseconds
    result = mini_runtime.launch(machine, {}, "an-hour")
    after = datetime.now().astimezone()
    assert result.status == "SUCCEEDED"
    status = read_execution(mini_runtime.execution_dir(machine.name, "an-hour"))["status"]
    start, stop = (datetime.fromisoformat(status[key]) for key in ("startDate", "stopDate"))
    assert before <= start <= stop <= after
    assert all(before <= datetime.fromisoformat(e["timestamp"]) <= after for e in result.history)


def test_the_observer_sees_every_event_of_a_launched_execution(mini_runtime):
    mini_runtime.time_scale = 0.0
    seen: dict[str, list[str]] = {}
    mini_runtime.observer = lambda machine, name: (lambda event: seen.setdefault(name, []).append(event["type"]))
    machine = dataclasses.replace(mini_runtime.deployment.state_machines[0], definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    mini_runtime.launch(machine, {}, "observed")
    assert seen["observed"][0] == "ExecutionStarted" and seen["observed"][-1] == "ExecutionSucceeded"


def test_under_serve_an_upload_through_the_s3_api_starts_the_pipeline(mini_deployment):
    """Issue 11: on AWS a PutObject under raw/ starts the state machine; the local S3 API does too."""
    import time
    from pathlib import Path

    import boto3

    from emulator.runtime import Runtime

    runtime = Runtime.open(Path(mini_deployment.state_dir), Path(__file__).resolve().parents[2],
                           deployment=mini_deployment, time_scale=0.0, uploads_trigger=True)
    try:
        s3 = boto3.client("s3", endpoint_url=runtime.s3_endpoint_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.put_object(Bucket="ministack-databuckete3889a50", Key="raw/upload.csv", Body=b"a,b\n1,2\n")
        machine = runtime.machines.machines[0]
        deadline = time.monotonic() + 60
        while True:
            listed = runtime.stepfunctions.list_executions(stateMachineArn=machine.arn)["executions"]
            if listed and listed[0]["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.1)
        described = runtime.stepfunctions.describe_execution(executionArn=listed[0]["executionArn"])
        assert json.loads(described["input"])["input_s3_uri"] == "s3://ministack-databuckete3889a50/raw/upload.csv"
        s3.put_object(Bucket="ministack-databuckete3889a50", Key="elsewhere/x.csv", Body=b"a\n")  # no rule matches
        time.sleep(0.5)
        assert len(runtime.stepfunctions.list_executions(stateMachineArn=machine.arn)["executions"]) == 1
    finally:
        runtime.close()
