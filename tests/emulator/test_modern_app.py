"""The modern CDK app (fixtures/modern_app.py), synthesized by the real CDK and run offline: JSONata at
the top level, assign= on a task, an sfn.DistributedMap over an S3 CSV with a result writer; and a
redrive end to end through boto3 against the local Step Functions API."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from emulator.services.stepfunctions.server import StepFunctionsServer

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ROWS = "id,amount\n1,10\n2,20\n3,30\n4,40\n5,50\n"


@pytest.fixture(scope="module")
def modern_assembly(tmp_path_factory) -> Path:
    sys.path.insert(0, str(FIXTURES))
    try:
        import modern_app
    finally:
        sys.path.remove(str(FIXTURES))
    return modern_app.synth(tmp_path_factory.mktemp("modern") / "cdk.out")


@pytest.fixture
def runtime(tmp_path, modern_assembly):
    from emulator.cloud.deploy import deploy
    from emulator.runtime import Runtime

    deployment = deploy(modern_assembly, tmp_path / "state")
    runtime = Runtime.open(Path(deployment.state_dir), PROJECT_ROOT, deployment=deployment)
    yield runtime
    runtime.close()


@pytest.fixture
def sfn(runtime):
    server = StepFunctionsServer(runtime.stepfunctions).start()
    yield boto3.client("stepfunctions", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    server.stop()


def _bucket(runtime) -> str:
    return runtime.deployment.buckets[0].name  # the stack has one bucket


def _wait(sfn, arn: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still running after {timeout}s"
        time.sleep(0.1)
    return described


def test_the_distributed_map_app_runs_offline(runtime, sfn):
    bucket = _bucket(runtime)
    runtime.s3.put_bytes(f"s3://{bucket}/rows/input.csv", ROWS.encode())
    machine = runtime.machines.get("modern-rows")

    result = runtime.launch(machine, {"run": "r1"}, "rows-1")

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # the Lambda's assign= (runId, rowsKey) and the Map's assign (manifest) reach the last state
    assert result.output["run"] == "r1" and result.output["rows"] == "rows/input.csv"
    manifest_key = result.output["manifest"]
    assert manifest_key.startswith("results/") and manifest_key.endswith("/manifest.json")
    manifest = json.loads(runtime.s3.get_bytes(f"s3://{bucket}/{manifest_key}"))
    run_id = manifest_key.split("/")[1]
    assert manifest["MapRunArn"].endswith(f":mapRun:modern-rows/Rows:{run_id}")
    assert manifest["ResultFiles"]["FAILED"] == [] and len(manifest["ResultFiles"]["SUCCEEDED"]) == 1
    succeeded = json.loads(runtime.s3.get_bytes(f"s3://{bucket}/{manifest['ResultFiles']['SUCCEEDED'][0]['Key']}"))
    outputs = [json.loads(entry["Output"]) for entry in succeeded]
    # five rows in batches of two: three child executions, each summing its rows, with the parent's runId
    assert [o["rows"] for o in outputs] == [2, 2, 1]
    assert sum(o["total"] for o in outputs) == 150 and {o["run"] for o in outputs} == {"r1"}
    assert all(":execution:modern-rows/Rows:" in entry["ExecutionArn"] for entry in succeeded)

    # the local API answers for the Map Run and its children as AWS does
    runs = sfn.list_map_runs(executionArn=result.execution_arn)["mapRuns"]
    assert [r["mapRunArn"] for r in runs] == [manifest["MapRunArn"]]
    described = sfn.describe_map_run(mapRunArn=manifest["MapRunArn"])
    assert described["status"] == "SUCCEEDED" and described["maxConcurrency"] == 2
    assert described["itemCounts"]["succeeded"] == 5 and described["executionCounts"]["succeeded"] == 3
    children = sfn.list_executions(mapRunArn=manifest["MapRunArn"])["executions"]
    assert len(children) == 3 and all(c["mapRunArn"] == manifest["MapRunArn"] for c in children)
    child = sfn.describe_execution(executionArn=children[0]["executionArn"])
    assert child["status"] == "SUCCEEDED" and child["stateMachineArn"].endswith(":stateMachine:modern-rows/Rows")
    history = sfn.get_execution_history(executionArn=children[0]["executionArn"])["events"]
    assert [e["type"] for e in history] == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_map_run(mapRunArn=manifest["MapRunArn"].replace(run_id, "0" * 36))


def test_a_missing_csv_fails_the_map_with_item_reader_failed(runtime):
    result = runtime.launch(runtime.machines.get("modern-rows"), {"run": "r2"}, "rows-2")
    assert result.status == "FAILED" and result.error == "States.ItemReaderFailed"
    assert "NoSuchKey" in result.cause


def _effects(runtime, execution: str, step: str) -> list[str]:
    return runtime.s3.list_keys(_bucket(runtime), f"effects/{execution}/{step}/")


def test_redrive_through_boto3_reruns_only_the_failed_step(runtime, sfn):
    machine = runtime.machines.get("modern-redrive")
    arn = sfn.start_execution(stateMachineArn=machine.arn, name="deploy-1", input="{}")["executionArn"]
    failed = _wait(sfn, arn)
    assert failed["status"] == "FAILED" and failed["error"] == "TransientError"
    assert failed["redriveStatus"] == "REDRIVABLE" and failed["redriveCount"] == 0
    assert len(_effects(runtime, "deploy-1", "tune")) == 1 and len(_effects(runtime, "deploy-1", "train")) == 1
    first_history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    # the operator fixes what the deploy step needs, then redrives the same execution
    runtime.s3.put_bytes(f"s3://{_bucket(runtime)}/flags/endpoint-ready", b"ok")
    redriven = sfn.redrive_execution(executionArn=arn)
    assert isinstance(redriven["redriveDate"], datetime)
    done = _wait(sfn, arn)

    assert done["status"] == "SUCCEEDED" and done["executionArn"] == arn
    assert done["redriveCount"] == 1 and "redriveDate" in done and done["startDate"] == failed["startDate"]
    assert done["redriveStatus"] == "NOT_REDRIVABLE" and "SUCCEEDED" in done["redriveStatusReason"]
    output = json.loads(done["output"])
    assert output["deploy"] == {"ok": True} and output["tune"]["trace"] and output["train"]["trace"]
    # the history goes on from where it stopped; after ExecutionRedriven only Deploy runs
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    assert [e["type"] for e in history[:len(first_history)]] == [e["type"] for e in first_history]
    redrive_event = history[len(first_history)]
    assert redrive_event["type"] == "ExecutionRedriven" and redrive_event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    entered = [e["stateEnteredEventDetails"]["name"] for e in history[len(first_history):] if e["type"] == "TaskStateEntered"]
    assert entered == ["Deploy"]
    # and the side effects prove it: each long step left one trace, from the first attempt
    assert _effects(runtime, "deploy-1", "tune") == [output["tune"]["trace"]]
    assert _effects(runtime, "deploy-1", "train") == [output["train"]["trace"]]
    assert sfn.list_executions(stateMachineArn=machine.arn, redriveFilter="REDRIVEN")["executions"][0]["redriveCount"] == 1

    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable, match="SUCCEEDED"):
        sfn.redrive_execution(executionArn=arn)


def test_redrive_eligibility_follows_aws(runtime, sfn):
    machine = runtime.machines.get("modern-redrive")
    arn = sfn.start_execution(stateMachineArn=machine.arn, name="deploy-old", input="{}")["executionArn"]
    assert _wait(sfn, arn)["status"] == "FAILED"
    folder = runtime.layout.execution_dir(machine.name, "deploy-old")
    status = json.loads((folder / "status.json").read_text())
    status["stopDate"] = (datetime.now(UTC) - timedelta(days=15)).isoformat()
    (folder / "status.json").write_text(json.dumps(status))
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable, match="redrivable period exceeded"):
        sfn.redrive_execution(executionArn=arn)
    assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "NOT_REDRIVABLE"
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.redrive_execution(executionArn=arn.replace("deploy-old", "never-ran"))


def test_the_redrive_command(runtime, capsys):
    from emulator.cli.main import main

    machine = runtime.machines.get("modern-redrive")
    assert runtime.launch(machine, {}, "deploy-cli").status == "FAILED"
    runtime.s3.put_bytes(f"s3://{_bucket(runtime)}/flags/endpoint-ready", b"ok")
    state_dir = str(runtime.layout.root)
    runtime.close()  # the command opens its own runtime on the same state folder

    code = main(["--project", str(PROJECT_ROOT), "--state-dir", state_dir, "redrive", "deploy-cli"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "redrive deploy-cli" in out
    assert main(["--project", str(PROJECT_ROOT), "--state-dir", state_dir, "redrive", "deploy-cli"]) == 2
    assert "cannot be redriven" in capsys.readouterr().err
