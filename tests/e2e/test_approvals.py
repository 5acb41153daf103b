"""Deploying safely, end to end offline, against a real `python -m emulator serve` process: the
synthesized template with approval_mode=manual waits at its approval state; approving through the
Step Functions API deploys; rejecting through the model registry with the AWS CLI fails the
execution with ModelRejected and leaves the endpoint as it was; an unanswered approval times out;
a `serve` killed while an execution waits resumes it on restart and the approval still deploys; an
alarm during the bake rolls the update back and the execution fails EndpointDeploymentRolledBack.

Budgets are tiny: no tuning, 60 rounds, waits scaled by 0.01 (a 300 s bake lasts 3 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from emulator.cli.endpoints import live_endpoints
from emulator.cloud.deploy import deploy
from emulator.services.cloudwatch import MetricStore
from emulator.services.s3.store import LocalS3
from emulator.services.sns import read_outbox
from emulator.storage.layout import Layout
from lambdas.registry_approval.handler import approval_request

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "ml-pipeline-endpoint"
SETTINGS = {
    "tuning_enabled": False,
    "candidates": [{"name": "xgboost", "family": "xgboost"}],  # one candidate: this test is about something else
    "hyperparameters": {"num_round": "60", "max_depth": "5", "eta": "0.1", "subsample": "0.8",
                        "colsample_bytree": "0.8", "min_child_weight": "1", "early_stopping_rounds": "10"},
}
AWS_ENV = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


class Serve:
    """`python -m emulator serve` on a state folder, as a user starts it; clients on its URLs."""

    def __init__(self, state_dir: Path, log: Path):
        self.state_dir, self.layout = state_dir, Layout.at(state_dir)
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--project", str(PROJECT_ROOT), "--state-dir", str(state_dir),
             "serve", "--time-scale", "0.01"],
            cwd=PROJECT_ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while (found := live_endpoints(self.layout)) is None or found[0].get("SageMaker") is None:
            assert self.process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
        self.urls = found[0]
        config = Config(retries={"max_attempts": 2})
        self.sfn = boto3.client("stepfunctions", endpoint_url=self.urls["Step Functions"], region_name="us-east-1",
                                aws_access_key_id="local", aws_secret_access_key="local", config=config)
        self.sagemaker = boto3.client("sagemaker", endpoint_url=self.urls["SageMaker"], region_name="us-east-1",
                                      aws_access_key_id="local", aws_secret_access_key="local", config=config)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class Deployment:
    def __init__(self, assembly: Path, root: Path):
        self.state_dir = root / "state"
        self.deployment = deploy(assembly, self.state_dir)
        self.machine = self.deployment.state_machines[0].arn
        bucket = self.deployment.outputs["MlPipeline"]["DataBucketName"]
        # staged beside raw/, so the upload trigger does not start an execution of its own
        self.data = f"s3://{bucket}/datasets/abalone.csv"
        LocalS3(self.layout.s3_root, "us-east-1").put_bytes(self.data, (PROJECT_ROOT / "data" / "abalone.csv").read_bytes())
        self.log = root / "serve.log"
        self.serve = Serve(self.state_dir, self.log)

    @property
    def layout(self) -> Layout:
        return Layout.at(self.state_dir)

    def start(self, name: str, **settings) -> str:
        execution_input = {"input_s3_uri": self.data, **SETTINGS, **settings}
        return self.serve.sfn.start_execution(stateMachineArn=self.machine, name=name,
                                              input=json.dumps(execution_input))["executionArn"]

    def wait_for_approval_request(self, arn: str, timeout: float = 240) -> str:
        """The task token of the approval request the execution published, once it waits on it."""
        deadline = time.monotonic() + timeout
        while True:
            described = self.serve.sfn.describe_execution(executionArn=arn)
            assert described["status"] == "RUNNING", (described, self.log.read_text()[-3000:])
            events = self.serve.sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=200)["events"]
            _, token = approval_request(events)
            if token:
                return token
            assert time.monotonic() < deadline, f"{arn} never asked for approval"
            time.sleep(0.2)

    def wait_for_end(self, arn: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while (described := self.serve.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, (described, self.log.read_text()[-3000:])
            time.sleep(0.2)
        return described

    def package(self, arn: str) -> dict:
        history = self.serve.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        registered = next(e for e in history if e["type"] == "TaskSucceeded"
                          and "ModelPackageArn" in e["taskSucceededEventDetails"]["output"])
        package_arn = json.loads(registered["taskSucceededEventDetails"]["output"])["ModelPackageArn"]
        return self.serve.sagemaker.describe_model_package(ModelPackageName=package_arn)

    def approval_messages(self, arn: str) -> list[dict]:
        topic = self.deployment.topics[0].name
        messages = [json.loads(m["Message"]) for m in read_outbox(self.layout, topic)]
        return [m for m in messages if m.get("execution") == arn and "task_token" in m]


@pytest.fixture(scope="module")
def world(assembly, tmp_path_factory):
    deployment = Deployment(assembly, tmp_path_factory.mktemp("world"))
    yield deployment
    deployment.serve.stop()


def test_manual_mode_waits_and_an_approval_through_step_functions_deploys(world):
    arn = world.start("approve-1", approval_mode="manual", approval_timeout_seconds=600)
    token = world.wait_for_approval_request(arn)
    assert world.package(arn)["ModelApprovalStatus"] == "PendingManualApproval"
    [request] = world.approval_messages(arn)
    assert request["task_token"] == token and request["evaluation"]["passed"] is True
    assert request["approve"]["model_registry"].startswith("aws sagemaker update-model-package --model-package-arn arn:aws:sagemaker:")
    assert request["approve"]["step_functions"].endswith(token) and request["approve"]["emulator"] == "python -m emulator approve approve-1"
    time.sleep(1.0)
    assert world.serve.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"  # it waits, nothing deployed
    assert world.serve.sagemaker.list_endpoints()["Endpoints"] == []

    world.serve.sfn.send_task_success(taskToken=token, output=json.dumps({"decision": "Approved", "reviewer": "ana"}))
    described = world.wait_for_end(arn)
    assert described["status"] == "SUCCEEDED", described
    assert world.package(arn)["ModelApprovalStatus"] == "Approved"
    endpoint = world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"].startswith("approve-1-")


def test_a_rejection_in_the_model_registry_through_the_aws_cli_fails_with_model_rejected(world):
    before = world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    arn = world.start("reject-1", approval_mode="manual", approval_timeout_seconds=600)
    world.wait_for_approval_request(arn)
    package = world.package(arn)["ModelPackageArn"]
    aws = Path(sys.executable).parent / "aws"
    cli = subprocess.run([str(aws), "sagemaker", "update-model-package", "--model-package-arn", package,
                          "--model-approval-status", "Rejected", "--approval-description", "worse on old shells",
                          "--endpoint-url", world.serve.urls["SageMaker"]],
                         env={**os.environ, **AWS_ENV}, capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 0, cli.stderr
    described = world.wait_for_end(arn, timeout=120)
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", "ModelRejected", "worse on old shells")
    assert world.package(arn)["ModelApprovalStatus"] == "Rejected"
    after = world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (after["EndpointConfigName"], after["LastModifiedTime"]) == (before["EndpointConfigName"], before["LastModifiedTime"])
    events = world.serve.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert "Mark rejected" in entered and "Score and deploy" not in entered


def test_an_unanswered_approval_times_out_and_rejects_the_model(world):
    arn = world.start("timeout-1", approval_mode="manual", approval_timeout_seconds=2)
    token = world.wait_for_approval_request(arn)
    described = world.wait_for_end(arn, timeout=60)
    assert (described["status"], described["error"]) == ("FAILED", "ApprovalTimedOut")
    assert "2 s" in described["cause"]
    assert world.package(arn)["ModelApprovalStatus"] == "Rejected"
    with pytest.raises(world.serve.sfn.exceptions.TaskTimedOut):
        world.serve.sfn.send_task_success(taskToken=token, output="true")


def test_killing_serve_while_an_execution_waits_then_approving_still_deploys(world):
    arn = world.start("restart-1", approval_mode="manual", approval_timeout_seconds=600)
    world.wait_for_approval_request(arn)
    world.serve.kill()
    status = json.loads((world.layout.execution_dir(world.deployment.state_machines[0].name, "restart-1") / "status.json").read_text())
    assert status["status"] == "RUNNING"  # killed, not ended: its record and token wait on disk
    world.serve.stop()
    world.serve = Serve(world.state_dir, world.log)
    deadline = time.monotonic() + 30
    while f"resumed {arn}" not in world.log.read_text():  # serve says so when it has resumed it
        assert time.monotonic() < deadline, world.log.read_text()[-3000:]
        time.sleep(0.1)
    assert world.serve.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    approved = subprocess.run([sys.executable, "-m", "emulator", "--state-dir", str(world.state_dir), "approve", "restart-1",
                               "--reason", "checked the report"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=60, check=False)
    assert approved.returncode == 0, approved.stderr
    described = world.wait_for_end(arn)
    assert described["status"] == "SUCCEEDED", (described, world.log.read_text()[-3000:])
    assert len(world.approval_messages(arn)) == 1  # the request was published once, before the restart
    endpoint = world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"].startswith("restart-1-")  # a blue/green update this time
    types = [e["type"] for e in world.serve.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]
    assert types.count("ExecutionStarted") == 1 and types[-1] == "ExecutionSucceeded"


def test_an_alarm_during_the_bake_rolls_back_and_the_champion_stays(world):
    """The endpoint's 5XX errors during the update's bake (written to the metric store as the invoke
    server writes them) put the template's alarm in ALARM: the update rolls back."""
    champion_uri = f"s3://{world.data.split('/')[2]}/champion/{ENDPOINT}/evaluation.json"
    s3 = LocalS3(world.layout.s3_root, "us-east-1")
    champion = s3.get_bytes(champion_uri)
    # S3 keeps whole seconds: a champion recorded in the second this run starts counts as a concurrent
    # run's, which a tie may not replace (NotBetterThanNewChampion); this run ties with it, so it starts later
    time.sleep(1.1)
    arn = world.start("rollback-1")  # auto approval
    deadline = time.monotonic() + 240
    while "PendingDeploymentSummary" not in world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT):
        assert world.serve.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", world.log.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    metrics = MetricStore(world.layout.cloudwatch_dir / "metrics.sqlite")
    metrics.put("AWS/SageMaker", "Invocation5XXErrors", {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}, 3.0)
    described = world.wait_for_end(arn)
    assert (described["status"], described["error"]) == ("FAILED", "EndpointDeploymentRolledBack"), described
    endpoint = world.serve.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"].startswith("restart-1-")
    assert "Automatic rollback" in endpoint["FailureReason"] and "MlPipeline-endpoint-5xx" in endpoint["FailureReason"]
    assert s3.get_bytes(champion_uri) == champion  # the rolled-back model did not become the champion
