"""The REAL synthesized training state machine, deployed locally, run to each of its ends.

The app in app.py is synthesized in-process once for this module and deployed with the emulator.
Its Lambda functions (validate input, quality gate) run for real on the real sample CSV through
the local S3 server; SNS, S3 SDK calls and EventBridge are the emulator's. Only the SageMaker tasks
are stubbed, here in the test: fakes registered under the sagemaker:* keys write what the next
steps read (evaluation.json) and return the shapes the ResultSelectors expect.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.asl.errors import StatesError
from emulator.asl.ports import Integration, TaskOutcome, TaskRequest
from emulator.cloud.deploy import deploy
from emulator.runtime import Runtime

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ABALONE = PROJECT_ROOT / "data" / "abalone.csv"


@pytest.fixture(scope="module")
def pipeline_assembly(tmp_path_factory) -> Path:
    aws_cdk = pytest.importorskip("aws_cdk")
    sys.path.insert(0, str(PROJECT_ROOT))
    import app as pipeline_app

    outdir = tmp_path_factory.mktemp("pipeline") / "cdk.out"
    cdk_app = aws_cdk.App(outdir=str(outdir), context=pipeline_app.cdk_json_context())
    pipeline_app.build_app(cdk_app).synth()
    return outdir


class FakeSageMaker(Integration):
    """Every SageMaker call of the pipeline; ``fail`` queues errors per resource key."""

    def __init__(self, runtime: Runtime, rmse: float = 2.0):
        self.runtime = runtime
        self.rmse = rmse
        self.fail: dict[str, list[StatesError]] = {}
        self.calls: list[str] = []
        self.endpoint: dict | None = None

    def start(self, request: TaskRequest) -> Any:
        self.calls.append(request.key)
        queued = self.fail.get(request.key)
        if queued:
            raise queued.pop(0)
        action = request.key.split(":")[-1].removesuffix(".sync")
        return getattr(self, action)(request.parameters)

    def poll(self, handle: Any) -> TaskOutcome:
        return TaskOutcome(handle)

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:us-east-1:000000000000:{kind}/{name.lower()}"

    def createProcessingJob(self, p: dict) -> dict:
        for output in p.get("ProcessingOutputConfig", {}).get("Outputs", []):
            if output["OutputName"] == "evaluation":  # the evaluate job: the report the gate reads
                uri = output["S3Output"]["S3Uri"].rstrip("/") + "/evaluation.json"
                # what evaluate.py writes: the use case, the model's metrics and a naive baseline's
                report = {"target_column": "rings", "problem_type": "regression",
                          "metrics": {"rmse": self.rmse, "mae": 1.5, "r2": 0.5},
                          "baseline": {"strategy": "the train mean for every row", "metrics": {"rmse": 3.25}}}
                self.runtime.s3.put_bytes(uri, json.dumps(report).encode())
        return {"ProcessingJobName": p["ProcessingJobName"], "ProcessingJobStatus": "Completed"}

    def createHyperParameterTuningJob(self, p: dict) -> dict:
        return {
            "HyperParameterTuningJobName": p["HyperParameterTuningJobName"],
            "BestTrainingJob": {
                "TrainingJobName": "best-trial",
                "TunedHyperParameters": {"max_depth": "4", "eta": "0.1"},
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:rmse", "Value": 2.1},
            },
            "TrainingJobStatusCounters": {"Completed": 8, "InProgress": 0, "Stopped": 0},
        }

    def createTrainingJob(self, p: dict) -> dict:
        name = p["TrainingJobName"]
        artifacts = f"{p['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
        return {"TrainingJobName": name, "TrainingJobStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": artifacts},
                "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 2.1, "Timestamp": 0}],
                "HyperParameters": p.get("HyperParameters", {})}

    def createModel(self, p: dict) -> dict:
        return {"ModelArn": self.arn("model", p["ModelName"])}

    def createModelPackage(self, p: dict) -> dict:
        return {"ModelPackageArn": self.arn("model-package", f"{p['ModelPackageGroupName']}/1")}

    def createTransformJob(self, p: dict) -> dict:
        return {"TransformJobName": p["TransformJobName"], "TransformJobStatus": "Completed",
                "TransformOutput": p["TransformOutput"]}

    def createEndpointConfig(self, p: dict) -> dict:
        return {"EndpointConfigArn": self.arn("endpoint-config", p["EndpointConfigName"])}

    def describeEndpoint(self, p: dict) -> dict:
        if self.endpoint is None:
            raise StatesError("SageMaker.SageMakerException", f'Could not find endpoint "{p["EndpointName"]}".')
        return self.endpoint

    def createEndpoint(self, p: dict) -> dict:
        self.endpoint = {"EndpointName": p["EndpointName"], "EndpointArn": self.arn("endpoint", p["EndpointName"]),
                         "EndpointStatus": "InService", "EndpointConfigName": p["EndpointConfigName"]}
        return {"EndpointArn": self.endpoint["EndpointArn"]}

    def updateEndpoint(self, p: dict) -> dict:
        assert self.endpoint is not None
        self.endpoint["EndpointConfigName"] = p["EndpointConfigName"]
        return {"EndpointArn": self.endpoint["EndpointArn"]}


SAGEMAKER_KEYS = (
    "sagemaker:createProcessingJob.sync", "sagemaker:createHyperParameterTuningJob.sync",
    "sagemaker:createTrainingJob.sync", "sagemaker:createModel", "aws-sdk:sagemaker:createModelPackage",
    "sagemaker:createTransformJob.sync", "sagemaker:createEndpointConfig", "aws-sdk:sagemaker:describeEndpoint",
    "sagemaker:createEndpoint", "sagemaker:updateEndpoint",
)


class Pipeline:
    def __init__(self, runtime: Runtime, rmse: float = 2.0):
        self.runtime = runtime
        self.machine = runtime.deployment.state_machines[0]
        self.sagemaker = FakeSageMaker(runtime, rmse)
        self.integrations = runtime.integrations
        for key in SAGEMAKER_KEYS:  # exact keys win over the real SageMaker integrations
            self.integrations.register(key, self.sagemaker)
        self.bucket, self.prefix = runtime.events.upload_trigger()
        self.results: list = []

    def run(self, value: Any, name: str):
        result = self.runtime.launch(self.machine, value, name)
        self.results.append(result)
        return result

    def upload_sample(self) -> str:
        uri = f"s3://{self.bucket}/{self.prefix}abalone.csv"
        self.runtime.s3.put_file(uri, ABALONE)
        return uri

    def outbox(self) -> list[dict]:
        return self.runtime.sns.read_outbox(self.runtime.deployment.topics[0].name)


@pytest.fixture
def pipeline(tmp_path, pipeline_assembly):
    deployment = deploy(pipeline_assembly, tmp_path / "state")
    runtime = Runtime.open(tmp_path / "state", PROJECT_ROOT, deployment=deployment, time_scale=0)
    yield Pipeline(runtime)
    runtime.close()


def states_entered(result) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result.history if e["type"].endswith("StateEntered")]


def test_success_through_the_s3_trigger(pipeline):
    uri = pipeline.upload_sample()
    bus = pipeline.runtime.events
    bus.start_execution = lambda arn, text, rule: pipeline.run(json.loads(text), "from-trigger")
    deliveries = bus.object_created(pipeline.runtime.s3, uri)
    assert len(deliveries) == 1
    result = deliveries[0].result
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["gate"]["passed"] is True and result.output["gate"]["value"] == 2.0
    assert result.output["problem_type"] == "regression"  # decided by the real validate Lambda on the CSV
    assert result.output["endpoint"]["EndpointStatus"] == "InService"
    entered = states_entered(result)
    for state in ("Validate input", "Preprocess", "Tune hyperparameters", "Train model", "Evaluate model",
                  "Quality gate", "Create endpoint", "Record champion", "Notify success"):
        assert state in entered
    # Record champion (aws-sdk:s3:copyObject, real) promoted the evaluation report.
    champion = [u for u in pipeline.runtime.s3.list(f"s3://{pipeline.bucket}/") if "champion" in u]
    assert champion and json.loads(pipeline.runtime.s3.get_bytes(champion[0]))["metrics"]["rmse"] == 2.0
    messages = pipeline.outbox()
    assert [m["Subject"] for m in messages] == ["ML pipeline succeeded"]
    assert json.loads(messages[0]["Message"])["status"] == "SUCCEEDED"


def test_quality_gate_failure(pipeline):
    pipeline.sagemaker.rmse = 3.5  # no better than the naive baseline's 3.25 (cdk.json: quality_threshold auto)
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "gate-fails")
    assert result.status == "FAILED"
    assert result.error == "ModelQualityBelowThreshold"
    assert "rmse 3.5 does not meet the threshold" in result.cause and "at most 2.925" in result.cause
    assert "naive baseline (the train mean for every row) scores rmse 3.25" in result.cause
    assert "Create model" not in states_entered(result)
    assert "sagemaker:createModel" not in pipeline.sagemaker.calls
    assert [m["Subject"] for m in pipeline.outbox()] == ["ML pipeline failed"]


def test_bad_input_fails_at_validation_before_any_job(pipeline):
    missing = f"s3://{pipeline.bucket}/{pipeline.prefix}nothing-here.csv"
    result = pipeline.run({"input_s3_uri": missing}, "bad-input")
    assert result.status == "FAILED"
    assert pipeline.sagemaker.calls == []
    entered = states_entered(result)
    assert entered[:3] == ["Collect input", "Apply defaults", "Validate input"]
    assert "Preprocess" not in entered
    # "Validate input" names the function ARN as its Resource: Lambda's own history events.
    failed = [e["lambdaFunctionFailedEventDetails"] for e in result.history if e["type"] == "LambdaFunctionFailed"]
    assert len(failed) == 1
    cause = json.loads(failed[0]["cause"])
    assert cause["errorType"] == failed[0]["error"] == result.error
    assert "nothing-here.csv" in cause["errorMessage"]
    message = json.loads(pipeline.outbox()[0]["Message"])
    assert message["status"] == "FAILED" and message["error"] == result.error


def test_transient_error_is_retried_to_success(pipeline):
    pipeline.sagemaker.fail["sagemaker:createTrainingJob.sync"] = [
        StatesError("SageMaker.AmazonSageMakerException", "Rate exceeded (Service: SageMaker, Status Code: 400)")]
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "transient")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert pipeline.sagemaker.calls.count("sagemaker:createTrainingJob.sync") == 2
    failures = [e for e in result.history if e["type"] == "TaskFailed"]
    # The transient one, then "Find endpoint" (no endpoint yet: caught, goes on to "Create endpoint").
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == [
        "SageMaker.AmazonSageMakerException", "SageMaker.SageMakerException"]
    assert [m["Subject"] for m in pipeline.outbox()] == ["ML pipeline succeeded"]


def test_non_retryable_error_is_caught_and_notified(pipeline):
    reason = json.dumps({"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: boom"})
    pipeline.sagemaker.fail["sagemaker:createTrainingJob.sync"] = [StatesError("States.TaskFailed", reason)]
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "caught")
    assert result.status == "FAILED"
    assert result.error == "States.TaskFailed" and "AlgorithmError: boom" in result.cause
    assert pipeline.sagemaker.calls.count("sagemaker:createTrainingJob.sync") == 1  # not retried
    entered = states_entered(result)
    assert entered[-2:] == ["Notify failure", "Pipeline failed"]
    messages = pipeline.outbox()
    assert [m["Subject"] for m in messages] == ["ML pipeline failed"]
    body = json.loads(messages[0]["Message"])
    assert body["error"] == "States.TaskFailed" and "AlgorithmError: boom" in body["cause"]
    assert body["execution"] == result.execution_arn
