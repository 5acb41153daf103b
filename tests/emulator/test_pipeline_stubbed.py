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
        self.package_updates: list[dict] = []
        self.before_endpoint_config = lambda: None  # a hook: what happens between the gate and the deploy

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
                # every candidate scores the same here but the forest a little worse on every resample
                forest = "random_forest" in p["AppSpecification"]["ContainerArguments"]
                rmse = self.rmse + (0.5 if forest else 0.0)
                report = {"target_column": "rings", "problem_type": "regression",
                          "metrics": {"rmse": rmse, "mae": 1.5, "r2": 0.5},
                          "baseline": {"strategy": "the train mean for every row", "metrics": {"rmse": 3.25}},
                          "bootstrap": {"metric": "rmse", "ci95": [rmse - 0.1, rmse + 0.1]},
                          "model": {"family": "random_forest" if forest else "xgboost", "size_bytes": 1000, "latency_ms": 1.0}}
                self.runtime.s3.put_bytes(uri, json.dumps(report).encode())
                values = [rmse + 0.01 * ((i % 7) - 3) for i in range(50)]
                self.runtime.s3.put_bytes(uri.replace("evaluation.json", "bootstrap.json"),
                                          json.dumps({"metric": "rmse", "values": values}).encode())
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
                "TrainingTimeInSeconds": 3,
                "HyperParameters": p.get("HyperParameters", {})}

    def createModel(self, p: dict) -> dict:
        return {"ModelArn": self.arn("model", p["ModelName"])}

    def createModelPackage(self, p: dict) -> dict:
        return {"ModelPackageArn": self.arn("model-package", f"{p['ModelPackageGroupName']}/1")}

    def createTransformJob(self, p: dict) -> dict:
        return {"TransformJobName": p["TransformJobName"], "TransformJobStatus": "Completed",
                "TransformOutput": p["TransformOutput"]}

    def createEndpointConfig(self, p: dict) -> dict:
        self.before_endpoint_config()
        return {"EndpointConfigArn": self.arn("endpoint-config", p["EndpointConfigName"])}

    def describeEndpoint(self, p: dict) -> dict:
        if self.endpoint is None:
            raise StatesError("SageMaker.SageMakerException", f'Could not find endpoint "{p["EndpointName"]}".')
        return self.endpoint

    def createEndpoint(self, p: dict) -> dict:
        self.endpoint = {"EndpointName": p["EndpointName"], "EndpointArn": self.arn("endpoint", p["EndpointName"]),
                         "EndpointStatus": "InService", "EndpointConfigName": p["EndpointConfigName"]}
        return {"EndpointArn": self.endpoint["EndpointArn"]}

    def updateModelPackage(self, p: dict) -> dict:
        self.package_updates.append(p)
        return {"ModelPackageArn": p["ModelPackageArn"]}

    def updateEndpoint(self, p: dict) -> dict:
        assert self.endpoint is not None
        self.endpoint["EndpointConfigName"] = p["EndpointConfigName"]
        return {"EndpointArn": self.endpoint["EndpointArn"]}


SAGEMAKER_KEYS = (
    "sagemaker:createProcessingJob.sync", "sagemaker:createHyperParameterTuningJob.sync",
    "sagemaker:createTrainingJob.sync", "sagemaker:createModel", "aws-sdk:sagemaker:createModelPackage",
    "sagemaker:createTransformJob.sync", "sagemaker:createEndpointConfig", "aws-sdk:sagemaker:describeEndpoint",
    "sagemaker:createEndpoint", "sagemaker:updateEndpoint", "aws-sdk:sagemaker:updateModelPackage",
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
                  "Quality gate", "Create endpoint", "Take deploy lock", "Check champion again",
                  "Record first champion", "Release deploy lock", "Notify success"):
        assert state in entered
    # both candidates registered: the winner (xgboost: the forest is worse on every resample) and the loser
    assert result.output["winner"] == "xgboost"
    assert pipeline.sagemaker.calls.count("aws-sdk:sagemaker:createModelPackage") == 2
    # Record champion (aws-sdk:s3:copyObject, real) promoted the winner's evaluation report.
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
    assert entered[:4] == ["Input is an object?", "Collect input", "Apply defaults", "Validate input"]
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
    assert pipeline.sagemaker.calls.count("sagemaker:createTrainingJob.sync") == 3  # two candidates, one retry
    failures = [e for e in result.history if e["type"] == "TaskFailed"]
    # The transient one, "Find champion run" (no champion yet: caught, the gate has no champion to
    # score), then "Find endpoint" (no endpoint yet: caught, goes on to "Create endpoint").
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == [
        "SageMaker.AmazonSageMakerException", "S3.NoSuchKeyException", "SageMaker.SageMakerException"]
    assert [m["Subject"] for m in pipeline.outbox()] == ["ML pipeline succeeded"]


def test_a_failing_candidate_is_caught_in_its_iteration_and_the_other_deploys(pipeline):
    reason = json.dumps({"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: boom"})
    pipeline.sagemaker.fail["sagemaker:createTrainingJob.sync"] = [StatesError("States.TaskFailed", reason)]
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "one-fails")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert pipeline.sagemaker.calls.count("sagemaker:createTrainingJob.sync") == 2  # not retried
    board = result.output["leaderboard"]
    failed = [row for row in board if row["status"] == "Failed"]
    assert len(failed) == 1 and failed[0]["error"] == "States.TaskFailed" and "AlgorithmError: boom" in failed[0]["cause"]
    assert result.output["winner"] == next(row["name"] for row in board if row["status"] == "Succeeded")
    assert any("boom" in line for line in result.output["leaderboard_table"])
    assert [m["Subject"] for m in pipeline.outbox()] == ["ML pipeline succeeded"]


def test_all_candidates_failing_is_named_and_notified(pipeline):
    reason = json.dumps({"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: boom"})
    pipeline.sagemaker.fail["sagemaker:createTrainingJob.sync"] = [StatesError("States.TaskFailed", reason)] * 2
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "all-fail")
    assert result.status == "FAILED"
    assert result.error == "AllCandidatesFailed"
    assert "xgboost (xgboost): States.TaskFailed" in result.cause and "random_forest (random_forest)" in result.cause
    entered = states_entered(result)
    assert entered.count("Candidate failed") == 2 and "Quality gate" not in entered
    assert entered[-2:] == ["Notify failure", "Pipeline failed"]
    messages = pipeline.outbox()
    assert [m["Subject"] for m in messages] == ["ML pipeline failed"]
    body = json.loads(messages[0]["Message"])
    assert body["error"] == "AllCandidatesFailed" and "boom" in body["cause"]
    assert body["execution"] == result.execution_arn


THROTTLED = "Rate exceeded (Service: SageMaker, Status Code: 400, Request ID: 5b1c)"


@pytest.mark.parametrize("value", ["s3://bucket/raw/abalone.csv", ["s3://bucket/raw/abalone.csv"], [], 42, True])
def test_an_input_that_is_not_a_json_object_is_refused_by_name_and_notified(pipeline, value):
    result = pipeline.run(value, "not-an-object")
    assert result.status == "FAILED"
    assert result.error == "InvalidExecutionInput"
    assert "must be a JSON object" in result.cause and '{"input_s3_uri": "s3://' in result.cause
    assert pipeline.sagemaker.calls == [] and "Validate input" not in states_entered(result)
    messages = pipeline.outbox()
    assert [m["Subject"] for m in messages] == ["ML pipeline failed"]
    assert json.loads(messages[0]["Message"])["error"] == "InvalidExecutionInput"


def test_a_throttled_endpoint_lookup_is_retried_not_taken_for_a_missing_endpoint(pipeline):
    first = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "creates")
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    # The endpoint exists now: a throttled lookup must neither fail the run nor create it again.
    pipeline.sagemaker.fail["aws-sdk:sagemaker:describeEndpoint"] = [
        StatesError("SageMaker.SageMakerException", THROTTLED), StatesError("SageMaker.SageMakerException", THROTTLED)]
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample(), "no_worse_than_champion": False}, "throttled-lookup")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    entered = states_entered(result)
    assert entered.count("Find endpoint") == 3
    assert "Update endpoint" in entered and "Create endpoint" not in entered


# ---- one deployment at a time: the deploy lock, the champion checked again, recorded by compare-and-swap

LOCK = "champion/ml-pipeline-endpoint/deploy.lock"
CHAMPION = "champion/ml-pipeline-endpoint/evaluation.json"


def s3_uri(pipeline, key: str) -> str:
    return f"s3://{pipeline.bucket}/{key}"


def test_a_lock_left_by_an_ended_execution_is_taken_over_and_released(pipeline):
    dead = pipeline.run({"input_s3_uri": s3_uri(pipeline, "raw/missing.csv")}, "ended-holder")
    assert dead.status == "FAILED"
    pipeline.runtime.s3.put_bytes(s3_uri(pipeline, LOCK), dead.execution_arn.encode())
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "takes-over")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    entered = states_entered(result)
    assert entered.index("Read deploy lock") < entered.index("Take over deploy lock") < entered.index("Create endpoint")
    assert not pipeline.runtime.s3.exists(s3_uri(pipeline, LOCK))


def test_a_lock_held_by_a_running_execution_is_waited_for_and_the_wait_is_bounded(pipeline):
    class AlwaysRunning(Integration):
        def start(self, request):
            return {"Status": "RUNNING", "ExecutionArn": request.parameters["ExecutionArn"]}

        def poll(self, handle):
            return TaskOutcome(handle)

    holder = "arn:aws:states:us-east-1:000000000000:execution:Other:still-deploying"
    pipeline.runtime.s3.put_bytes(s3_uri(pipeline, LOCK), holder.encode())
    pipeline.integrations.register("aws-sdk:sfn:describeExecution", AlwaysRunning())
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "waits")
    assert result.status == "FAILED" and result.error == "DeploymentLockTimeout", result.cause
    assert "still-deploying has held the deployment lock" in result.cause and "120 minutes" in result.cause
    entered = states_entered(result)
    assert entered.count("Wait for deploy lock") == 240 and "Create endpoint" not in entered
    assert pipeline.runtime.s3.get_bytes(s3_uri(pipeline, LOCK)).decode() == holder  # not ours: left alone
    assert json.loads(pipeline.outbox()[-1]["Message"])["error"] == "DeploymentLockTimeout"


def test_a_failed_deploy_releases_the_lock_it_holds(pipeline):
    first = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "creates")
    assert first.status == "SUCCEEDED"
    pipeline.sagemaker.fail["sagemaker:updateEndpoint"] = [
        StatesError("SageMaker.AmazonSageMakerException", "Cannot update in-progress endpoint")] * 5
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample(), "no_worse_than_champion": False}, "fails-deploying")
    assert result.status == "FAILED"
    entered = states_entered(result)
    assert "Take deploy lock" in entered and "Release lock on failure" in entered
    assert not pipeline.runtime.s3.exists(s3_uri(pipeline, LOCK))


def test_a_champion_recorded_after_the_gate_is_checked_again_and_a_worse_model_is_refused_and_rejected(pipeline):
    first = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "creates")
    assert first.status == "SUCCEEDED"
    before = pipeline.sagemaker.endpoint["EndpointConfigName"]

    def another_run_deploys_a_better_model():  # between this run's gate and its deploy
        record = json.loads(pipeline.runtime.s3.get_bytes(s3_uri(pipeline, CHAMPION)))
        record["metrics"]["rmse"] = 1.5
        pipeline.runtime.s3.put_bytes(s3_uri(pipeline, CHAMPION), json.dumps(record).encode())

    pipeline.sagemaker.before_endpoint_config = another_run_deploys_a_better_model
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "overtaken")
    assert result.status == "FAILED" and result.error == "NotBetterThanNewChampion"
    assert "worse than the deployed champion's 1.5" in result.cause and "after this run's quality gate" in result.cause
    assert pipeline.sagemaker.endpoint["EndpointConfigName"] == before  # never updated
    [update] = pipeline.sagemaker.package_updates
    assert update["ModelApprovalStatus"] == "Rejected" and update["ApprovalDescription"].startswith("Not deployed: rmse 2")
    assert json.loads(pipeline.runtime.s3.get_bytes(s3_uri(pipeline, CHAMPION)))["metrics"]["rmse"] == 1.5
    assert not pipeline.runtime.s3.exists(s3_uri(pipeline, LOCK))


def test_the_champion_record_is_replaced_only_if_unchanged_since_the_check(pipeline):
    first = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "creates")
    assert first.status == "SUCCEEDED"
    original = pipeline.sagemaker.updateEndpoint

    def written_outside_meanwhile(p):  # a person edits the record while the endpoint updates
        pipeline.runtime.s3.put_bytes(s3_uri(pipeline, CHAMPION), b'{"metrics": {"rmse": 9.0}}')
        return original(p)

    pipeline.sagemaker.updateEndpoint = written_outside_meanwhile
    pipeline.sagemaker.rmse = 1.9  # better than the champion: deployed, then the record is found changed
    result = pipeline.run({"input_s3_uri": pipeline.upload_sample()}, "cas")
    assert result.status == "FAILED" and result.error == "ChampionRecordChanged", result.cause
    assert json.loads(pipeline.runtime.s3.get_bytes(s3_uri(pipeline, CHAMPION)))["metrics"]["rmse"] == 9.0
    assert not pipeline.runtime.s3.exists(s3_uri(pipeline, LOCK))
