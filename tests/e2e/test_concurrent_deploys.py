"""Four executions of the real template started at once through the local Step Functions API: one
deployment at a time per endpoint (the S3 deploy lock), the champion checked again inside it and
recorded by compare-and-swap. Every execution ends SUCCEEDED or refused by name, the endpoint serves
the best model, and exactly one newcomer is Approved in the registry (the others Rejected, with why).

The four train the same table with the same settings (tuning off, 30 rounds): their models tie, so
the first to deploy keeps the endpoint and the others are refused (a tie does not displace a model
another execution deployed after their gate).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime
from emulator.services.stepfunctions.server import StepFunctionsServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ABALONE = PROJECT_ROOT / "data" / "abalone.csv"
SETTINGS = {
    "tuning_enabled": False,
    "candidates": [{"name": "xgboost", "family": "xgboost"}],  # one candidate: this test is about something else
    "hyperparameters": {"num_round": "30", "max_depth": "4", "eta": "0.2", "early_stopping_rounds": "5"},
}
REFUSALS = {"NotBetterThanNewChampion"}


@pytest.fixture(scope="module")
def assembly(tmp_path_factory) -> Path:
    import aws_cdk

    sys.path.insert(0, str(PROJECT_ROOT))
    import app as pipeline_app

    outdir = tmp_path_factory.mktemp("concurrent") / "cdk.out"
    pipeline_app.build_app(aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())).synth()
    return outdir


@pytest.fixture
def runtime(assembly, tmp_path):
    deployment = deploy(assembly, tmp_path / "state")
    runtime = Runtime.open(tmp_path / "state", PROJECT_ROOT, deployment=deployment, time_scale=0.01)
    yield runtime
    runtime.close()


def test_four_executions_at_once_deploy_one_at_a_time_and_the_best_model_serves(runtime):
    server = StepFunctionsServer(runtime.stepfunctions).start()
    try:
        sfn = boto3.client("stepfunctions", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local",
                           config=Config(retries={"max_attempts": 1}))
        machine = runtime.deployment.state_machines[0].arn
        bucket, prefix = runtime.events.upload_trigger()
        uri = f"s3://{bucket}/{prefix}abalone.csv"
        runtime.s3.put_file(uri, ABALONE)
        arns = [sfn.start_execution(stateMachineArn=machine, name=f"at-once-{i}",
                                    input=json.dumps({"input_s3_uri": uri, **SETTINGS}))["executionArn"]
                for i in range(4)]
        deadline = time.monotonic() + 600
        ended = {}
        while len(ended) < len(arns):
            assert time.monotonic() < deadline, f"still running: {set(arns) - set(ended)}"
            for arn in set(arns) - set(ended):
                described = sfn.describe_execution(executionArn=arn)
                if described["status"] != "RUNNING":
                    ended[arn] = described
            time.sleep(0.5)
    finally:
        server.stop()

    outcomes = {arn: (d["status"], d.get("error")) for arn, d in ended.items()}
    assert all(status == "SUCCEEDED" or error in REFUSALS for status, error in outcomes.values()), outcomes
    succeeded = [json.loads(d["output"]) for d in ended.values() if d["status"] == "SUCCEEDED"]
    assert succeeded, outcomes

    # the endpoint serves the best model, and the champion record is that model's evaluation
    sagemaker = runtime.sagemaker
    endpoint = sagemaker.call("DescribeEndpoint", {"EndpointName": "ml-pipeline-endpoint"})
    assert endpoint["EndpointStatus"] == "InService"
    served = [s for s in succeeded if s["endpoint"]["EndpointConfigName"] == endpoint["EndpointConfigName"]]
    assert len(served) == 1, (endpoint["EndpointConfigName"], [s["endpoint"] for s in succeeded])
    best = min(s["gate"]["value"] for s in succeeded)
    assert served[0]["gate"]["value"] == best
    champion = json.loads(runtime.s3.get_bytes(f"s3://{bucket}/champion/ml-pipeline-endpoint/evaluation.json"))
    assert champion["metrics"]["rmse"] == best
    assert not runtime.s3.exists(f"s3://{bucket}/champion/ml-pipeline-endpoint/deploy.lock")

    # every refusal names the champion it lost to; exactly one newcomer Approved, the others Rejected
    for d in ended.values():
        if d["status"] == "FAILED":
            assert "recorded by another execution after this run's quality gate" in d["cause"], d["cause"]
    packages = sagemaker.call("ListModelPackages", {"ModelPackageGroupName": "ml-pipeline-models"})["ModelPackageSummaryList"]
    statuses = {}
    for summary in packages:
        described = sagemaker.call("DescribeModelPackage", {"ModelPackageName": summary["ModelPackageArn"]})
        statuses[summary["ModelPackageArn"]] = (described["ModelApprovalStatus"], described.get("ApprovalDescription", ""))
    assert len(statuses) == 4, statuses
    approved = [arn for arn, (status, _) in statuses.items() if status == "Approved"]
    assert approved == [served[0]["model_package"]], statuses
    rejected = [why for status, why in statuses.values() if status == "Rejected"]
    assert len(rejected) == 3 and all(why.startswith("Not deployed: rmse") for why in rejected), statuses
