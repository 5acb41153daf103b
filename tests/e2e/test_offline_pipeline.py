"""The whole pipeline offline: the real synthesized template, real Lambdas, real SageMaker jobs
(preprocess, tuning trials, training, evaluation, batch transform) as local processes and a real
HTTP endpoint — each end the issue names.

Budgets are small to keep CI fast (60 rounds, 2 tuning trials, waits scaled by 1/1000); `make run`
uses the cdk.json defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import boto3
import pytest

from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ABALONE = PROJECT_ROOT / "data" / "abalone.csv"
SMALL = {
    "hyperparameters": {"num_round": "60", "max_depth": "5", "eta": "0.1", "subsample": "0.8",
                        "colsample_bytree": "0.8", "min_child_weight": "1", "early_stopping_rounds": "10"},
    "tuning_max_jobs": 2,
    "tuning_max_parallel_jobs": 2,
    # both candidates compete, the forest small (20 trees): tuned, like XGBoost, with the 2 trials above
    "candidates": [{"name": "xgboost", "family": "xgboost"},
                   {"name": "random_forest", "family": "random_forest",
                    "hyperparameters": {"n_estimators": "20", "max_depth": "8"}}],
}
XGBOOST_ONLY = [{"name": "xgboost", "family": "xgboost"}]


class Pipeline:
    """A local deployment of the template and the helpers the tests share."""

    def __init__(self, assembly: Path, state_dir: Path):
        self.deployment = deploy(assembly, state_dir)
        self.runtime = Runtime.open(state_dir, PROJECT_ROOT, deployment=self.deployment, time_scale=0.01)
        self.machine = self.deployment.state_machines[0]
        bucket, prefix = self.runtime.events.upload_trigger()
        self.bucket, self.raw_prefix = bucket, prefix
        self.results = []

    def upload(self, name: str, data: bytes) -> str:
        uri = f"s3://{self.bucket}/{self.raw_prefix}{name}"
        self.runtime.s3.put_bytes(uri, data)
        return uri

    def run(self, name: str, execution_input: dict, definition: dict | None = None):
        machine = dataclasses.replace(self.machine, definition=json.dumps(definition)) if definition else self.machine
        return self.runtime.launch(machine, execution_input, name)

    def sagemaker(self):
        return self.runtime.sagemaker

    def endpoint(self) -> dict:
        return self.sagemaker().call("DescribeEndpoint", {"EndpointName": "ml-pipeline-endpoint"})


def entered(result) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e]


@pytest.fixture(scope="module")
def pipeline(assembly, tmp_path_factory):
    pipe = Pipeline(assembly, tmp_path_factory.mktemp("state"))
    yield pipe
    pipe.runtime.close()


@pytest.fixture(scope="module")
def first_run(pipeline):
    """The sample CSV dropped under raw/: EventBridge starts the execution, which tunes and deploys."""
    results = []

    def start(state_machine_arn, input_text, rule):
        results.append(pipeline.run("first-run", {**json.loads(input_text), **SMALL}))

    uri = pipeline.upload("abalone.csv", ABALONE.read_bytes())
    pipeline.runtime.events.start_execution = start
    pipeline.runtime.events.object_created(pipeline.runtime.s3, uri)
    assert len(results) == 1, "the S3 upload did not start exactly one execution"
    return results[0]


def test_sample_run_succeeds_with_a_tuned_model_that_meets_the_gate(pipeline, first_run):
    assert first_run.status == "SUCCEEDED", (first_run.error, first_run.cause)
    out = first_run.output
    assert out["gate"]["passed"] is True and out["gate"]["value"] <= 2.6
    assert "Tune hyperparameters" in entered(first_run)
    assert out["endpoint"]["EndpointStatus"] == "InService"
    tuned = [e for e in first_run.history if e["type"] == "TaskSucceeded" and "HyperParameterTuningJob" in json.dumps(e)]
    assert tuned, "no tuning job finished"
    counters = json.loads(tuned[0]["taskSucceededEventDetails"]["output"])["TrainingJobStatusCounters"]
    assert counters["Completed"] + counters.get("Stopped", 0) == SMALL["tuning_max_jobs"]
    predictions = pipeline.runtime.s3.list(out["batch_predictions"])
    assert predictions and all(p.endswith(".out") for p in predictions)
    rows = pipeline.runtime.s3.get_bytes(predictions[0]).decode().strip().splitlines()
    assert len(rows) > 100 and all(float(r) > 0 for r in rows)
    topic = pipeline.deployment.topics[0].name
    published = [json.loads(m["Message"]) for m in pipeline.runtime.sns.read_outbox(topic)]
    assert any(m["status"] == "SUCCEEDED" and m["execution"] == first_run.execution_arn for m in published)
    assert ":000000000000:execution:" in first_run.execution_arn  # the deployment's account


def test_the_endpoint_answers_boto3_sagemaker_runtime(pipeline, first_run):
    base = pipeline.runtime.invoke_server_url()
    client = boto3.client("sagemaker-runtime", endpoint_url=base, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    batch = pipeline.runtime.s3.list(first_run.output["batch_predictions"].replace("batch-predictions", "processed/batch"))
    row = pipeline.runtime.s3.get_bytes(batch[0]).decode().splitlines()[0]
    response = client.invoke_endpoint(EndpointName="ml-pipeline-endpoint", ContentType="text/csv", Body=row)
    rings = float(response["Body"].read().decode())
    assert 1 <= rings <= 30


def test_a_second_run_updates_the_existing_endpoint(pipeline, first_run):
    before = pipeline.endpoint()["EndpointConfigName"]
    uri = pipeline.upload("abalone-again.csv", ABALONE.read_bytes())
    result = pipeline.run("second-run", {"input_s3_uri": uri, **SMALL, "tuning_enabled": False,
                                         "no_worse_than_champion": False})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    states = entered(result)
    assert "Update endpoint" in states and "Create endpoint" not in states
    after = pipeline.endpoint()
    assert after["EndpointStatus"] == "InService" and after["EndpointConfigName"] != before


def test_an_impossible_threshold_fails_the_gate_and_leaves_the_endpoint_alone(pipeline, first_run):
    before = pipeline.endpoint()["EndpointConfigName"]
    uri = pipeline.upload("abalone-gate.csv", ABALONE.read_bytes())
    result = pipeline.run("impossible-gate", {"input_s3_uri": uri, **SMALL, "tuning_enabled": False,
                                              "quality_threshold": 0.01})
    assert result.status == "FAILED"
    assert result.error == "ModelQualityBelowThreshold"
    assert "does not meet the threshold (at most 0.01)" in result.cause
    assert "Create model" not in entered(result)
    assert pipeline.endpoint()["EndpointConfigName"] == before


def test_a_bad_csv_ends_at_validation_before_any_job(pipeline):
    uri = pipeline.upload("no-target.csv", b"sex,length,diameter\nM,0.45,0.36\nF,0.53,0.42\n")
    result = pipeline.run("bad-csv", {"input_s3_uri": uri, **SMALL})
    assert result.status == "FAILED"
    assert result.error == "TargetColumnMissing"
    assert "'rings' is not in" in result.cause
    assert "Preprocess" not in entered(result)
    jobs = pipeline.runtime.state_dir / "sagemaker" / "processing-jobs"
    assert not any("bad-csv" in p.name for p in jobs.glob("*")) if jobs.is_dir() else True


def test_a_wrongly_built_request_is_rejected_by_sagemaker_validation(pipeline):
    definition = copy.deepcopy(pipeline.machine.definition_json())
    train = definition["States"]["Train candidates"]["ItemProcessor"]["States"]["Train model"]["Parameters"]
    del train["HyperParameters.$"]
    train["HyperParameters"] = {"num_round": 60, "objective": "reg:squarederror"}  # an int where a string belongs
    uri = pipeline.upload("abalone-wrong.csv", ABALONE.read_bytes())
    result = pipeline.run("wrong-request", {"input_s3_uri": uri, **SMALL, "tuning_enabled": False,
                                            "candidates": XGBOOST_ONLY}, definition)
    assert result.status == "FAILED"
    # the one candidate failed (caught in its iteration, its cause kept), so no candidate is left
    assert result.error == "AllCandidatesFailed"
    assert "SageMaker.AmazonSageMakerException" in result.cause
    assert "ValidationException" in result.cause and "num_round" in result.cause
    assert "Evaluate model" not in entered(result)


def test_a_throttled_first_training_attempt_is_retried_to_success(pipeline, first_run):
    pipeline.sagemaker().inject_fault("CreateTrainingJob", "ThrottlingException", times=1)
    uri = pipeline.upload("abalone-throttle.csv", ABALONE.read_bytes())
    result = pipeline.run("throttled", {"input_s3_uri": uri, **SMALL, "tuning_enabled": False,
                                        "no_worse_than_champion": False, "candidates": XGBOOST_ONLY})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    train_events = [e for e in result.history if e["type"] in ("TaskFailed", "TaskSucceeded")
                    and "createTrainingJob" in json.dumps(e)]
    assert [e["type"] for e in train_events][:2] == ["TaskFailed", "TaskSucceeded"]
    assert "ThrottlingException" in json.dumps(train_events[0])
